package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Features reports a local disk's: names list cheaply, and nothing destructive
// follows a link.
func (r *Fs) Features() storage.Features {
	return storage.Features{CheapNames: true, NoFollow: true, ChecksOnRemove: true}
}

// MoveFile implements [storage.Mover]: it moves the regular file oldname to
// newname through verified handles on both directories, creating
// newname's missing directories one segment at a time, following no
// symbolic link in either path, and never replacing newname: on Linux
// with renameat2(RENAME_NOREPLACE), atomically.
func (r *Fs) MoveFile(oldname, newname string) error {
	o, n := slash(oldname), slash(newname)
	if o == "." || n == "." {
		return &storage.PathError{Op: "move", Path: oldname, Err: storage.ErrUnsafePath}
	}
	od, err := r.openDir(path.Dir(o))
	if err != nil {
		return err
	}
	defer r.closeDir(od)
	nd, err := r.openDirCreate(path.Dir(n))
	if err != nil {
		return err
	}
	defer r.closeDir(nd)
	return renameNoReplace(r.root, o, n, od, o[strings.LastIndexByte(o, '/')+1:], nd, n[strings.LastIndexByte(n, '/')+1:])
}

// openDirCreate is openDir, creating missing segments as it goes.
func (r *Fs) openDirCreate(dir string) (*os.Root, error) {
	cur := r.root
	if dir == "." || dir == "" {
		return cur, nil
	}
	for seg := range strings.SplitSeq(dir, "/") {
		next, err := openSub(cur, seg, nil)
		if errors.Is(err, fs.ErrNotExist) {
			if merr := cur.Mkdir(seg, 0o755); merr != nil && !errors.Is(merr, fs.ErrExist) {
				err = merr
			} else {
				next, err = openSub(cur, seg, nil)
			}
		}
		r.closeDir(cur)
		if err != nil {
			return nil, wrap("mkdir", dir, err)
		}
		cur = next
	}
	return cur, nil
}
