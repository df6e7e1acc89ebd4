//go:build !linux

package storage

import "os"

// unlinkFile removes the regular file base inside the directory open as
// root, refusing anything else.
func unlinkFile(root *os.Root, _ *os.File, base string) error {
	fi, err := root.Lstat(base)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
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
