//go:build !linux

package storage

import (
	"io/fs"
	"os"
)

// fileID identifies a directory entry for the check that the directory a
// walk opens is the one it listed.
type fileID struct{ fi fs.FileInfo }

// readDirHandle reads the directory open as d once, with Readdir(-1).
// Each entry's path is prefix plus its name.
func readDirHandle(d *os.Root, prefix string) ([]dirEntry, error) {
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

// sameDir reports whether the directory open as sub is the one listed as
// id.
func sameDir(sub *os.Root, id fileID) bool {
	fi, err := sub.Stat(".")
	return err == nil && os.SameFile(id.fi, fi)
}
