package rootfs

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// unlinkFile removes the regular file base inside the directory open as
// dir, with an fstatat(AT_SYMLINK_NOFOLLOW) and an unlinkat(2) on the
// directory's descriptor: no path lookup, no link followed. Anything but a
// regular file (a link, a FIFO, a socket, a device, a directory) is
// refused with storage.ErrNotRegular, even one swapped in since it was
// listed; with check, a file whose size and time check refuses is kept
// with storage.ErrChanged.
func unlinkFile(_ *os.Root, dir *os.File, base string, check func(size int64, mtime time.Time) bool) error {
	rc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	var uerr error
	notRegular, changed := false, false
	if err := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if uerr = unix.Fstatat(int(fd), base, &st, unix.AT_SYMLINK_NOFOLLOW); uerr != nil {
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			notRegular = true
			return
		}
		if check != nil && !check(st.Size, time.Unix(st.Mtim.Unix())) {
			changed = true
			return
		}
		uerr = syscall.Unlinkat(int(fd), base)
	}); err != nil {
		return err
	}
	if changed {
		return storage.ErrChanged
	}
	if notRegular || uerr == syscall.EISDIR {
		return storage.ErrNotRegular
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
