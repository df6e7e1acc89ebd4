//go:build !linux

package rootfs

import (
	"io/fs"
	"os"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// renameNoReplace moves the regular file oldBase in od to newBase in nd,
// refusing an existing newBase. Without renameat2 the check and the
// rename are two steps.
func renameNoReplace(root *os.Root, oldname, newname string, od *os.Root, oldBase string, nd *os.Root, newBase string) error {
	fi, err := od.Lstat(oldBase)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return storage.ErrNotRegular
	}
	if _, err := nd.Lstat(newBase); err == nil {
		return &os.PathError{Op: "move", Path: newBase, Err: fs.ErrExist}
	}
	return root.Rename(rel(oldname), rel(newname))
}
