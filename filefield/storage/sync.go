package storage

import (
	"errors"
	"syscall"

	"github.com/spf13/afero"
)

// syncDir flushes dir's entries to stable storage, so that a rename into
// it survives a crash: it opens dir and calls Sync. Backends that cannot
// sync a directory (EINVAL, errors.ErrUnsupported) are not an error: there
// is nothing more the caller could do.
func syncDir(fsys afero.Fs, dir string) error {
	f, err := fsys.Open(dir)
	if err != nil {
		return wrap("syncdir", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return wrap("syncdir", dir, err)
}
