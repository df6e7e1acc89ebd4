package storage

import (
	"context"
	"errors"
	"io/fs"

	"github.com/spf13/afero"
)

// Remover is the optional fast path of backends that remove files in
// batches (S3's DeleteObjects), or more safely than afero's Remove can say
// (RootFs); [Delete] uses it. RemoveFiles removes the files of targets,
// using each one's Path and ETag only, and returns one error per target,
// in order: nil where the file was removed, an error matching
// [fs.ErrNotExist] where it was already gone, one matching [ErrChanged]
// where the object no longer had the target's ETag, and any other error
// where it was not removed. RemoveDir removes the empty directory name and
// nothing else: not a file or link swapped in under that name, not a
// directory that filled up since it was found empty. Implementations
// must:
//
//   - remove only regular files, refusing anything else (directories,
//     links, FIFOs, sockets, devices) with [ErrNotRegular];
//   - never follow a symbolic link in any path segment (a link in the last
//     segment is removed itself, never its target);
//   - remove a target that has an ETag only if the object still has that
//     entity tag, checked in the removal request itself, wherever the
//     backend can ([Features].ConditionalDeletes says how), refusing it
//     with [ErrChanged] otherwise; where it cannot, remove it as the
//     fallback does;
//   - stop at a cancelled ctx, reporting ctx.Err() for each path not tried.
//
// Like the rules on links, the ETag condition changes nothing when no one
// else writes meanwhile: the results equal the fallback's, and only a file
// replaced between the caller's check and the act is treated differently
// (kept).
type Remover interface {
	RemoveFiles(ctx context.Context, targets []Target) []error
	RemoveDir(name string) error
}

// RemoveFiles removes the targets' files with the backend's [Remover]
// when it has one, and otherwise one by one (Lstat, then Remove if it is
// a regular file, and for a target with Check, of its size and time),
// checking ctx before each; that fallback cannot check
// an ETag, which afero does not report. Errors are *PathError values. It
// applies none of [Delete]'s checks: it is the fast path Delete calls,
// exported for wrappers that forward it.
func RemoveFiles(ctx context.Context, fsys afero.Fs, targets []Target) []error {
	if len(targets) == 0 {
		return nil
	}
	if br, ok := fsys.(Remover); ok {
		return br.RemoveFiles(ctx, targets)
	}
	errs := make([]error, len(targets))
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(targets); j++ {
				errs[j] = err
			}
			break
		}
		errs[i] = removeFile(fsys, t)
	}
	return errs
}

// removeFile removes t's file if Lstat shows a regular file, and, for a
// target with Check, one of its size and time.
func removeFile(fsys afero.Fs, t Target) error {
	p := t.Path
	fi, err := lstat(fsys, p)
	if err != nil {
		return wrap("remove", p, err)
	}
	if !fi.Mode().IsRegular() {
		return &PathError{Op: "remove", Path: p, Err: ErrNotRegular}
	}
	if t.Check && Changed(t, fi.Size(), fi.ModTime()) {
		return &PathError{Op: "remove", Path: p, Err: ErrChanged}
	}
	return wrap("remove", p, fsys.Remove(p))
}

// Mover is the optional interface of backends that move a file safely by
// themselves. MoveFile renames the regular file oldname to newname,
// creating newname's missing parent directories, and must:
//
//   - never replace an existing newname (of any type, a dangling link
//     included), failing with an error matching [fs.ErrExist];
//   - follow no symbolic link in any segment of either path;
//   - refuse anything but a regular file with [ErrNotRegular], and a
//     missing oldname with [fs.ErrNotExist].
type Mover interface {
	MoveFile(oldname, newname string) error
}

// ETagMover is the optional interface of backends whose moves can be
// conditional on an entity tag, as their deletions are
// ([Features].ConditionalDeletes). MoveFileIf moves as MoveFile does, but
// only an object that still has etag: one rewritten since is kept where
// it is, with [ErrChanged], and no copy of it is left at newname. Where
// the backend cannot make its deletion conditional, it moves as MoveFile
// does. Like the Remover's condition, it changes nothing when no one else
// writes meanwhile.
type ETagMover interface {
	MoveFileIf(oldname, newname, etag string) error
}

// moveTarget moves t's file to t.MoveTo, conditionally on t.ETag where the
// backend can ([ETagMover]), else with [MoveFile].
func moveTarget(fsys afero.Fs, t Target) error {
	if m, ok := fsys.(ETagMover); ok && t.ETag != "" {
		return wrap("move", t.Path, m.MoveFileIf(t.Path, t.MoveTo, t.ETag))
	}
	return MoveFile(fsys, t.Path, t.MoveTo)
}

// MoveFile moves oldname to newname through the backend's [Mover], or
// else checks with Lstat that oldname is a regular file and newname does
// not exist, creates newname's directory and renames: a newname created
// between the check and the rename is replaced on such backends.
// It applies none of [Delete]'s checks: it is the fast path Delete
// calls, exported for wrappers that forward it.
func MoveFile(fsys afero.Fs, oldname, newname string) error {
	if m, ok := fsys.(Mover); ok {
		return wrap("move", oldname, m.MoveFile(oldname, newname))
	}
	fi, err := lstat(fsys, oldname)
	if err != nil {
		return wrap("move", oldname, err)
	}
	if !fi.Mode().IsRegular() {
		return &PathError{Op: "move", Path: oldname, Err: ErrNotRegular}
	}
	if _, err := lstat(fsys, newname); err == nil {
		return &PathError{Op: "move", Path: newname, Err: fs.ErrExist}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrap("move", newname, err)
	}
	if err := fsys.MkdirAll(dirOf(newname), 0o755); err != nil {
		return wrap("move", newname, err)
	}
	return wrap("move", oldname, fsys.Rename(oldname, newname))
}

// Lstat returns the FileInfo of p without following a link at its end,
// where fsys can tell (afero.Lstater), and Stat's otherwise.
func Lstat(fsys afero.Fs, p string) (fs.FileInfo, error) { return lstat(fsys, p) }

func lstat(fsys afero.Fs, p string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(p)
		return fi, err
	}
	return fsys.Stat(p)
}
