package storagetest

import (
	"path"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// WriteFile writes data to p in fsys, creating parent directories, and sets
// its modification time to mtime (unless mtime is zero): the way tests make
// old files without waiting. It fails tb on any error.
func WriteFile(tb testing.TB, fsys afero.Fs, p string, data []byte, mtime time.Time) {
	tb.Helper()
	if err := fsys.MkdirAll(path.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := afero.WriteFile(fsys, p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	if !mtime.IsZero() {
		if err := fsys.Chtimes(p, mtime, mtime); err != nil {
			tb.Fatal(err)
		}
	}
}

// Files returns the paths of every non-directory entry in fsys, sorted:
// all of them, quarantine areas included (which every storage listing
// skips), read with Readdir and following no link. It fails tb on any
// error.
func Files(tb testing.TB, fsys afero.Fs) []string {
	tb.Helper()
	var out []string
	var walk func(dir string)
	walk = func(dir string) {
		f, err := fsys.Open(dir)
		if err != nil {
			tb.Fatal(err)
		}
		infos, err := f.Readdir(-1)
		f.Close()
		if err != nil {
			tb.Fatal(err)
		}
		for _, fi := range infos {
			p := path.Join(dir, fi.Name())
			if fi.IsDir() {
				walk(p)
			} else {
				out = append(out, p)
			}
		}
	}
	walk(".")
	slices.Sort(out)
	return out
}
