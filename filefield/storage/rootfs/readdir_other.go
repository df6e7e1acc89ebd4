//go:build !linux

package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// fileID identifies a directory entry for the check that the directory a
// walk opens is the one it listed.
type fileID struct{ fi fs.FileInfo }

// readDirHandle reads the directory open as d once, with Readdir(-1).
// Each entry's path is prefix plus its name. Readdir stats every entry
// anyway, so skipStat changes nothing here.
func readDirHandle(d *os.Root, prefix string, _ func(string) bool) ([]dirEntry, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	infos, err := f.Readdir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, len(infos))
	for i, fi := range infos {
		out[i] = dirEntry{path: prefix + fi.Name(), name: fi.Name(), mod: fi.ModTime(), typ: fi.Mode().Type(), id: fileID{fi}}
		if out[i].typ == 0 {
			out[i].size = fi.Size()
		}
	}
	return out, nil
}

// statNames stats names inside the directory open as d without following
// links, calling fn for each that exists, with its index in names.
func statNames(d *os.Root, names []string, fn func(i int, size int64, mod time.Time, typ fs.FileMode)) error {
	for i, name := range names {
		fi, err := d.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		var size int64
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		fn(i, size, fi.ModTime(), fi.Mode().Type())
	}
	return nil
}

// sameDir reports whether the directory open as sub is the one listed as
// id.
func sameDir(sub *os.Root, id fileID) bool {
	fi, err := sub.Stat(".")
	return err == nil && os.SameFile(id.fi, fi)
}
