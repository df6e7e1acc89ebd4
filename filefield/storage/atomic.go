package storage

import "github.com/spf13/afero"

// AtomicCreator is implemented by backends on which a file created with
// O_CREATE|O_EXCL appears whole, or not at all, when it is closed, and on
// which rename is a copy rather than an atomic move: object stores.
// filefield writes the final name directly on them, with no temporary name
// and no rename.
type AtomicCreator interface {
	CreatesAtomically() bool
}

// CreatesAtomically reports whether fsys is an [AtomicCreator] that says so.
func CreatesAtomically(fsys afero.Fs) bool {
	ac, ok := fsys.(AtomicCreator)
	return ok && ac.CreatesAtomically()
}

// Aborter is implemented by files of an [AtomicCreator] that can be
// discarded without storing them: a write that fails halfway is aborted
// rather than closed, since Close would store what was written so far.
type Aborter interface {
	Abort() error
}
