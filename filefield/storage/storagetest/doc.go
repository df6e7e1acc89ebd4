// Package storagetest holds test helpers for mediaclean's storage layer
// and for users' own tests: a conformance suite any afero.Fs can run, and
// a filesystem wrapper that records operations and injects faults.
//
// # Conformance
//
// [TestFS] runs the suite as subtests; [CheckFS] returns every
// misbehaviour as one joined error. The suite covers what mediaclean relies
// on: Stat and Open of a missing file give fs.ErrNotExist; a key that is a
// prefix of another ("uploads/1" beside "uploads/12.jpg") does not exist;
// Remove of a missing file gives fs.ErrNotExist; O_EXCL refuses an existing
// file; Rename replaces an existing target; listing while deleting visits
// each entry once and neither panics nor hangs; names with spaces, "+", "%"
// and non-ASCII round-trip; every character a stored path may hold
// survives a rename next to the decoys a wrong encoding would hit
// ("a b" beside "a+b" and "a%2Bb"); Chtimes round-trips; and the fast
// paths (List, RemoveFiles) agree with the portable ones.
//
// Known divergences are declared in [Divergences], never skipped: the
// suite checks that a declared divergence is still there.
// [MemMapFsDivergences] lists those of afero.MemMapFs.
//
// # Fault injection
//
// [FaultFs] fails the Nth operation, or the Nth of one kind (create, write,
// sync, close, rename, remove, ...), with a chosen error (ENOSPC by
// default), and records every operation. [NewSpyFs] gives one that only
// records.
package storagetest
