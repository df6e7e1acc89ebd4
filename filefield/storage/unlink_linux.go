package storage

import (
	"os"
	"syscall"
)

// unlinkFile removes the non-directory base inside the directory open as
// dir, with one unlinkat(2) on the directory's descriptor: no path lookup,
// no link followed, and no stat first, since unlinkat without AT_REMOVEDIR
// refuses directories itself (EISDIR).
func unlinkFile(_ *os.Root, dir *os.File, base string) error {
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	if err := rc.Control(func(fd uintptr) { uerr = syscall.Unlinkat(int(fd), base) }); err != nil {
		return err
	}
	if uerr == syscall.EISDIR {
		return ErrNotRegular
	}
	if uerr != nil {
		return &os.PathError{Op: "unlinkat", Path: base, Err: uerr}
	}
	return nil
}
