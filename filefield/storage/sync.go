package storage

import (
	"errors"
	"syscall"

	"github.com/spf13/afero"
)

// DirSyncer is the optional interface of backends that can flush a
// directory's entries to stable storage, so that a rename into it survives a
// crash.
type DirSyncer interface {
	SyncDir(dir string) error
}

// SyncDir flushes dir's entries where the backend allows it: through
// [DirSyncer] when implemented, otherwise by opening dir and calling Sync.
// Backends that cannot sync a directory (EINVAL, errors.ErrUnsupported) are
// not an error: there is nothing more the caller could do.
func SyncDir(fsys afero.Fs, dir string) error {
	if ds, ok := fsys.(DirSyncer); ok {
		return wrap("syncdir", dir, ds.SyncDir(dir))
	}
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
