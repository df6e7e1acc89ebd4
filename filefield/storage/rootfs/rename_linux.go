package rootfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// renameNoReplace moves the regular file oldBase in the directory open as
// od to newBase in nd, atomically refusing to replace anything there:
// renameat2 with RENAME_NOREPLACE, or, on filesystems without it, a hard
// link (which fails if newBase exists) and an unlink.
func renameNoReplace(_ *os.Root, _, _ string, od *os.Root, oldBase string, nd *os.Root, newBase string) error {
	of, err := od.Open(".")
	if err != nil {
		return err
	}
	defer of.Close()
	nf, err := nd.Open(".")
	if err != nil {
		return err
	}
	defer nf.Close()
	ofd, nfd := int(of.Fd()), int(nf.Fd())
	var st unix.Stat_t
	if err := unix.Fstatat(ofd, oldBase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "move", Path: oldBase, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return storage.ErrNotRegular
	}
	err = unix.Renameat2(ofd, oldBase, nfd, newBase, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_NOREPLACE here: link (never replaces), then unlink.
		if err = unix.Linkat(ofd, oldBase, nfd, newBase, 0); err == nil {
			err = unix.Unlinkat(ofd, oldBase, 0)
		}
	}
	if err != nil {
		return &os.PathError{Op: "move", Path: oldBase, Err: err}
	}
	return nil
}
