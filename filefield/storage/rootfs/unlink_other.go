//go:build !linux

package rootfs

import (
	"os"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// unlinkFile removes the regular file base inside the directory open as
// root, refusing anything else, and with check, a file whose size and
// time check refuses (storage.ErrChanged).
func unlinkFile(root *os.Root, _ *os.File, base string, check func(size int64, mtime time.Time) bool) error {
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return storage.ErrNotRegular
	}
	if check != nil && !check(fi.Size(), fi.ModTime()) {
		return storage.ErrChanged
	}
	return root.Remove(base)
}

// rmdirAt removes the empty directory base inside the directory open as
// root, refusing anything else.
func rmdirAt(root *os.Root, _ *os.File, base string) error {
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return storage.ErrChanged
	}
	return root.Remove(base)
}
