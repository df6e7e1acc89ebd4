package storage

import (
	"context"
	"io/fs"

	"github.com/spf13/afero"
)

// BatchRemover is the optional fast-path removal interface a backend may
// implement (S3's DeleteObjects, for example). RemoveFiles removes the named
// files and returns one error per path, in order: nil where the file was
// removed, an error matching [fs.ErrNotExist] where it was already gone, and
// any other error where it was not removed. Implementations must:
//
//   - remove only non-directories, refusing directories with [ErrNotRegular];
//   - never follow a symbolic link in any path segment (a link in the last
//     segment is removed itself, never its target);
//   - stop at a cancelled ctx, reporting ctx.Err() for each path not tried.
type BatchRemover interface {
	RemoveFiles(ctx context.Context, paths []string) []error
}

// RemoveFiles removes the named files with the backend's [BatchRemover] when
// it has one, and otherwise one by one: it checks ctx before each, refuses
// directories with [ErrNotRegular] where the backend can tell (afero.Lstater),
// then calls Remove. Errors are *PathError values.
func RemoveFiles(ctx context.Context, fsys afero.Fs, paths []string) []error {
	if br, ok := fsys.(BatchRemover); ok {
		return br.RemoveFiles(ctx, paths)
	}
	errs := make([]error, len(paths))
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(paths); j++ {
				errs[j] = err
			}
			break
		}
		errs[i] = removeFile(fsys, p)
	}
	return errs
}

func removeFile(fsys afero.Fs, p string) error {
	fi, err := lstat(fsys, p)
	if err != nil {
		return wrap("remove", p, err)
	}
	if fi.IsDir() {
		return &PathError{Op: "remove", Path: p, Err: ErrNotRegular}
	}
	return wrap("remove", p, fsys.Remove(p))
}

func lstat(fsys afero.Fs, p string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(p)
		return fi, err
	}
	return fsys.Stat(p)
}

// Lstat returns the FileInfo of p without following a final symbolic link
// where the backend can tell links apart (afero.Lstater), and Stat otherwise.
func Lstat(fsys afero.Fs, p string) (fs.FileInfo, error) {
	fi, err := lstat(fsys, p)
	return fi, wrap("stat", p, err)
}
