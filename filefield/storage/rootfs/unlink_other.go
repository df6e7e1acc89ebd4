//go:build !linux

package rootfs

import (
	"os"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// unlinkFile removes the regular file base inside the directory open as
// root, refusing anything else.
func unlinkFile(root *os.Root, _ *os.File, base string) error {
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return storage.ErrNotRegular
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
