package storage

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/spf13/afero"
)

// RemoveEmptyDirs removes each of dirs and then its parents, deepest first,
// as long as they are empty, stopping below stop (a directory that is kept
// along with everything above it; "" or "." for the root, which is never
// removed). A directory is removed only when a listing finds it empty and
// Lstat shows a real directory, not a link; on RootFs, Remove of a
// directory is rmdir, which refuses a directory that filled up in between.
// It returns the number removed.
func RemoveEmptyDirs(ctx context.Context, fsys afero.Fs, dirs []string, stop string) int {
	stop = strings.Trim(stop, "/")
	set := map[string]bool{}
	for _, d := range dirs {
		for ; d != stop && !set[d]; d = Dir(d) {
			if stop != "" && !strings.HasPrefix(d, stop+"/") {
				break // not below stop: never touched
			}
			set[d] = true
		}
	}
	all := make([]string, 0, len(set))
	for d := range set {
		all = append(all, d)
	}
	// Deepest first, so parents are tried after their children.
	depth := func(d string) int {
		if d == "." || d == "" {
			return -1
		}
		return strings.Count(d, "/")
	}
	slices.SortFunc(all, func(a, b string) int { return cmp.Or(cmp.Compare(depth(b), depth(a)), cmp.Compare(a, b)) })
	removed := 0
	for _, d := range all {
		if ctx.Err() != nil || !isDirToRemove(fsys, d) {
			continue
		}
		if err := removeDir(fsys, d); err == nil {
			removed++
		}
	}
	return removed
}

func isDirToRemove(fsys afero.Fs, d string) bool {
	if d == "." || d == "" {
		if guardRoot {
			return false // the root check: never the root
		}
	} else if ValidPath(d) != nil {
		return false
	}
	if fi, err := lstat(fsys, d); err != nil || !fi.IsDir() {
		return false
	}
	f, err := fsys.Open(d)
	if err != nil {
		return false
	}
	names, err := f.Readdirnames(1)
	f.Close()
	// Only io.EOF means empty. Any other error keeps the directory: on a
	// backend whose Remove drops non-empty directories (MemMapFs), taking
	// a failed read for "empty" loses files.
	return errors.Is(err, io.EOF) && len(names) == 0
}

// DirRemover is the optional interface of backends that can remove an
// empty directory and nothing else, atomically (rmdir, unlinkat with
// AT_REMOVEDIR). RemoveEmptyDirs uses it when present, so that a file
// swapped in for the directory after the emptiness check is never removed.
type DirRemover interface {
	RemoveDir(name string) error
}

func removeDir(fsys afero.Fs, d string) error {
	if dr, ok := fsys.(DirRemover); ok {
		return dr.RemoveDir(d)
	}
	return fsys.Remove(d)
}
