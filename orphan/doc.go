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
// [Finder.Apply] deletes it (or moves it into a [Quarantine]), after
// checking the guards again with figures of its own and re-checking every
// file just before acting. Every deletion and move goes through
// storage.Delete, the one deletion pipeline.
//
// # Guards (each returns its own sentinel and deletes nothing)
//
//   - [ErrProvider]: the provider failed, stopped midway, or ctx was
//     cancelled. The SQL provider of package sqlrefs also fails when one
//     of its queries returns no path while another returns some (a wrong
//     column or table), unless its Options.AllowEmpty is set.
//   - [ErrAmbiguousReference]: a reference names more than 1024 stored
//     paths (its forms with and without each query, fragment, escape and
//     ".." detour: a row of hundreds of '?' and '#'), or more than 1024
//     places to cut it at (16 for one longer than 16 KiB, whose cuts
//     would each be read whole again); leaving one out could lose the
//     file it means.
//   - [ErrNoReferences]: no valid reference while storage holds files,
//     unless Options.AllowEmpty.
//   - [ErrUncovered]: a directory (each top directory of the scan, or
//     Options.CoverageDepth deeper) holds files older than the grace
//     period and not one valid reference points into it (read as itself,
//     not cut at a '?' or '#'): the usual sign of a missing reference
//     query. Options.Unreferenced declares
//     directories that are expected to be so; Options.Force overrides.
//   - [ErrDeleteLimit], [ErrFractionLimit] (default: more than half the
//     scanned files), [ErrBytesLimit]: the plan is over a limit, unless
//     Options.Force.
//
// Apply trusts no figure a plan carries: it streams the references again,
// counts the orphans and their bytes itself, and counts the scanned files
// afresh unless the plan came from the same Finder's Find in this
// process. A plan is a list of candidates.
//
// Files not older than Options.MinAge (default one day; future times are
// young) are never orphans, so an upload whose row has not committed yet
// survives: set it longer than an upload may wait for its row (an app
// that stores the file in one request and writes the row in a later one
// loses any upload whose row comes after it). Apply keeps a file that changed (size, mtime, type) or gained
// a reference since Find. Names that are not valid stored paths or match
// no Options.Shapes are reported as unrecognised and never deleted.
//
// # Quarantine
//
// With Options.Quarantine, Apply moves orphans into
// "DIR/.mediaclean-quarantine/RUN/" with a manifest, written ahead of the
// moves. Every listing skips that area, so no later Finder or sweep sees
// it, whatever its options; [Quarantine.Restore] and [Quarantine.Purge]
// are the only ways out.
//
// # Cost
//
// On backends that list names faster than sizes (rootfs.Fs: a stat
// costs more than reading the directory record), Find lists names only,
// streams the references, and then stats just the files that can be
// orphans: unreferenced and not excluded. Referenced and excluded files
// are counted but not measured; [Plan.Unmeasured] says how many, and
// Options.MeasureAll measures everything at one stat per file. Object
// stores and MemMapFs list sizes for free, so nothing changes there.
//
// References are kept as 64-bit hashes (hash/maphash, random seed per run)
// sorted and bucketed by their top bits: 8 bytes per distinct reference
// plus about one byte of index, and 8 more while the set is built.
// A collision can only make an orphan look referenced, which keeps a file.
// The provider is read on the calling goroutine while one worker per CPU
// (up to eight) normalises and hashes. Storage is streamed: every scanned
// path is held as an 8-byte hash (for the missing-file report) and every
// candidate as its path bytes plus 8 bytes (24 if the listing measured
// it). Measured peak heap, garbage included, with as many files as
// references, half of them referenced: 110 to 134 bytes per reference
// at 1M, 167 to 187 at 100k (examples/bench, T3, 2026-12-02; sampled heap
// in use, garbage included, so it moves with the collector's timing).
//
// # Merge mode
//
// With Options.Merge, memory no longer grows with the references or the
// stored files. Find first streams the references, normalised, into an
// external sort (runs of 64 Ki paths, at most 8 MiB, sorted in memory and
// appended to one temporary file in Options.TempDir, then merged on a
// goroutine of its own, with 2 MiB of read buffers shared by the runs),
// and then lists storage in byte order (storage.ListOptions.Sorted: object
// stores list that way; a local disk is walked depth first, each directory
// sorted with a directory compared as its name followed by "/") and merges
// the two streams: a listed file equal to a reference is referenced, one
// that is not is a candidate. Apply merges the references the same way
// against the plan's paths. The plan still holds every orphan. Plans,
// guards and reports are those of hash mode, and tests check that they are
// equal, shard by shard too. A listing or a sort that gives a path out of
// byte order fails the run with storage.ErrUnsorted; a provider is never
// trusted to give its references in order. The temporary files are
// unlinked as soon as they are created (on Unix), so even a killed run
// leaves none. Because the references are read before storage is listed, a
// row committed during the run with a file uploaded before the run started
// is protected by the grace period and by Apply's second reading of the
// references, not by the order of the two steps.
//
// # Re-checks
//
// Apply checks each file just before acting: still there, a regular file
// of the same size, the same mtime to the second (object stores report
// milliseconds in listings and whole seconds in HEAD responses), still
// unreferenced. On a local disk, each batch of up to 1000 files is stat'ed
// together just before it is acted on, and nothing else is. On S3, plans
// over 100 files are checked batch by batch against a listing of the
// batch's key range (one request per 1000 adjacent keys), not a HEAD
// each.
//
// # From an earlier listing
//
// Options.Listing makes Find read a listing made earlier instead of
// listing storage: an S3 Inventory report (package
// filefield/storage/s3fs/inventory), which costs no request to the
// bucket. The listing must be younger than the grace period (else
// [ErrStaleListing]), which bounds how old a plan's view of storage can
// be; a file uploaded after the listing is not in it, so never a
// candidate. The plan records the listing's time in Plan.Listed. The
// guards count what the listing lists. Since a listing shows storage as
// it was, Apply always re-checks each file of such a plan against live
// storage (size, time, ETag, as above) and keeps what changed.
//
// # Caveats
//
// A reference provider that silently returns a subset (a query with a
// wrong WHERE clause) cannot be told from a real one; the fraction limit is
// the net for that. References are compared with listed names byte for
// byte after normalisation: on a case-insensitive filesystem a reference
// differing only in case, and a reference through a directory link inside
// the root, do not keep their file. On backends other than rootfs.Fs, a directory
// swapped for a symbolic link between the re-check and the removal can
// redirect a removal.
package orphan
