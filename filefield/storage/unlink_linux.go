package storage

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
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

// rmdirAt removes the empty directory base inside the directory open as
// dir: unlinkat with AT_REMOVEDIR removes directories only, so a file
// swapped in under that name is refused, not removed.
func rmdirAt(_ *os.Root, dir *os.File, base string) error {
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	if err := rc.Control(func(fd uintptr) { uerr = unix.Unlinkat(int(fd), base, unix.AT_REMOVEDIR) }); err != nil {
		return err
	}
	if uerr != nil {
		return &os.PathError{Op: "rmdir", Path: base, Err: uerr}
	}
	return nil
}
