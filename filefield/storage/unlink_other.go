//go:build !linux

package storage

import "os"

// unlinkFile removes the non-directory base inside the directory open as
// root, refusing directories.
func unlinkFile(root *os.Root, _ *os.File, base string) error {
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return ErrNotRegular
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
		return ErrChanged
	}
	return root.Remove(base)
}
