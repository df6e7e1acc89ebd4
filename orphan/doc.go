// Package orphan finds and removes files that no record references: the
// seed's "cleanup_media --check-orphans" and its monthly audit, built so
// that a wrong database, a failed query or an upload in flight never makes
// it delete a live file.
//
// # Plan, then apply
//
// [Finder.Find] lists storage first, then streams the references from a
// [Provider] (a fixed list, lines of a file, several combined, or SQL
// queries with package sqlrefs), and returns a [Plan]: the orphans with
// size and mtime, totals, the directories holding the most, unrecognised
// names, and references whose files are missing. A Plan marshals to JSON.
// [Finder.Apply] deletes it (or moves it into a quarantine folder), after
// checking the limits and re-checking every file just before acting.
//
// # Guards (each returns its own sentinel and deletes nothing)
//
//   - [ErrProvider]: the provider failed, stopped midway, or ctx was
//     cancelled (O2).
//   - [ErrNoReferences]: no references while storage holds files, unless
//     Options.AllowEmpty (O3).
//   - [ErrDeleteLimit], [ErrFractionLimit] (default: more than half the
//     scanned files), [ErrBytesLimit]: the plan is over a limit, unless
//     Options.Force (O8).
//
// Files younger than Options.MinAge (default one day; future times are
// young) are never orphans, so an upload whose row has not committed yet
// survives (O4). Apply keeps a file that changed (size, mtime, type) or
// gained a reference since Find. Names that are not valid stored paths or
// match no Options.Shapes are reported as unrecognised and never deleted.
//
// # Memory
//
// References are kept as 64-bit hashes (hash/maphash, random seed per run)
// in a sorted slice: 8 bytes per reference plus slice growth, at most 16
// bytes per reference (O11). A collision can only make an orphan look
// referenced, which keeps a file. Storage is streamed; only candidates
// (files old enough, in scope) are held, as their path bytes plus 24 bytes
// each, and every scanned path as an 8-byte hash (for the missing-file
// report). Measured peak heap, garbage included: about 165 bytes per
// reference with as many files as references (examples/bench, T3).
//
// # Re-checks
//
// Apply checks each file just before acting: still there, a regular file
// of the same size, the same mtime to the second (object stores report
// milliseconds in listings and whole seconds in HEAD responses), still
// unreferenced. Plans over 100 files on a backend with a fast listing are
// checked against one fresh listing, not a stat each (on S3, a HEAD each).
//
// # Caveats
//
// A reference provider that silently returns a subset (a query with a
// wrong WHERE clause) cannot be told from a real one; the fraction limit is
// the net for that. On backends other than storage.RootFs, a directory
// swapped for a symbolic link between the re-check and the removal can
// redirect a removal.
package orphan
