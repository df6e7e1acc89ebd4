package storagetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// WriteFile writes data to p in fsys, creating parent directories, and sets
// its modification time to mtime (unless mtime is zero): the way tests make
// old files without waiting. It fails tb on any error.
func WriteFile(tb testing.TB, fsys afero.Fs, p string, data []byte, mtime time.Time) {
	tb.Helper()
	if err := fsys.MkdirAll(storage.Dir(p), 0o755); err != nil {
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

// Files returns the paths of every non-directory entry in fsys, sorted,
// using the portable walk. It fails tb on any error.
func Files(tb testing.TB, fsys afero.Fs) []string {
	tb.Helper()
	var out []string
	err := storage.Walk(context.Background(), fsys, "", func(e storage.Entry) error {
		if !e.IsDir() {
			out = append(out, e.Path)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(out)
	return out
}
