package rootfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Fs is the symlink-safe local backend: an [afero.Fs] over a directory,
// built on [os.Root]. Nothing done through it reads, writes, renames or
// removes anything outside its root, whether the name says ".." or a
// symbolic link points out: os.Root refuses such paths. On top of that, its
// destructive operations (Remove, RemoveFiles, a Rename within one
// directory) and its listing never follow a symbolic link at all, not even
// one that stays inside the root: they open each directory segment by
// segment, refuse links, and check that the directory opened is the one
// that was inspected.
//
// afero.BasePathFs, by contrast, checks names as text only and follows links
// out of its base; see the package documentation.
//
// Names are slash-separated and relative to the root; a leading "/" is
// ignored, so "/a" and "a" name the same file. Fs is safe for concurrent
// use. Close it when done.
type Fs struct {
	root *os.Root
}

var (
	_ afero.Fs        = (*Fs)(nil)
	_ afero.Lstater   = (*Fs)(nil)
	_ storage.Lister  = (*Fs)(nil)
	_ storage.Stater  = (*Fs)(nil)
	_ storage.Remover = (*Fs)(nil)
	_ storage.Mover   = (*Fs)(nil)
)

// New opens dir, which must exist, as the root of a Fs.
func New(dir string) (*Fs, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, wrap("open root", dir, err)
	}
	return &Fs{root: r}, nil
}

// Close releases the root directory handle.
func (r *Fs) Close() error { return r.root.Close() }

// Root returns the underlying os.Root.
func (r *Fs) Root() *os.Root { return r.root }

// rel turns an afero name into a name relative to the root.
func rel(name string) string {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return "."
	}
	return filepath.FromSlash(name)
}

// slash cleans an afero name into the slash form used in entries and errors.
func slash(name string) string {
	name = strings.Trim(name, "/")
	if name == "" {
		return "."
	}
	return name
}

// Name returns "Fs".
func (r *Fs) Name() string { return "Fs" }

// Create creates or truncates the named file.
func (r *Fs) Create(name string) (afero.File, error) {
	return r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Mkdir creates a directory.
func (r *Fs) Mkdir(name string, perm os.FileMode) error {
	return r.root.Mkdir(rel(name), perm)
}

// MkdirAll creates a directory and any missing parents.
func (r *Fs) MkdirAll(name string, perm os.FileMode) error {
	return r.root.MkdirAll(rel(name), perm)
}

// Open opens the named file for reading.
func (r *Fs) Open(name string) (afero.File, error) {
	f, err := r.root.Open(rel(name))
	if err != nil {
		return nil, err
	}
	return f, nil
}

// OpenFile opens the named file with the given flags.
func (r *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	f, err := r.root.OpenFile(rel(name), flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Remove removes the named file or empty directory without following a
// symbolic link in any segment of name: a link as the last segment is
// removed itself.
func (r *Fs) Remove(name string) error {
	return r.inParent("remove", name, func(d *os.Root, base string) error { return d.Remove(base) })
}

// inParent calls fn with a verified handle on name's directory (opened
// segment by segment, no link followed) and name's last segment. The root
// itself is refused.
func (r *Fs) inParent(op, name string, fn func(d *os.Root, base string) error) error {
	p := slash(name)
	if p == "." {
		return &storage.PathError{Op: op, Path: name, Err: storage.ErrUnsafePath}
	}
	d, err := r.openDir(path.Dir(p))
	if err != nil {
		return err
	}
	defer r.closeDir(d)
	return fn(d, p[strings.LastIndexByte(p, '/')+1:])
}

// RemoveDir removes the empty directory name, and nothing else: not a file
// or link swapped in under that name, not a non-empty directory. It
// follows no symbolic link in any segment.
func (r *Fs) RemoveDir(name string) error {
	return r.inParent("rmdir", name, func(d *os.Root, base string) error {
		f, err := d.Open(".")
		if err != nil {
			return err
		}
		defer f.Close()
		return rmdirAt(d, f, base)
	})
}

// RemoveAll removes name and everything below it, within the root.
func (r *Fs) RemoveAll(name string) error {
	if slash(name) == "." {
		return &storage.PathError{Op: "removeall", Path: name, Err: storage.ErrUnsafePath}
	}
	return r.root.RemoveAll(rel(name))
}

// Rename renames oldname to newname. Within one directory it does so
// through a verified handle on that directory, following no link.
func (r *Fs) Rename(oldname, newname string) error {
	o, n := slash(oldname), slash(newname)
	if dir := path.Dir(o); dir == path.Dir(n) && o != "." && n != "." {
		d, err := r.openDir(dir)
		if err != nil {
			return err
		}
		defer r.closeDir(d)
		return d.Rename(o[strings.LastIndexByte(o, '/')+1:], n[strings.LastIndexByte(n, '/')+1:])
	}
	return r.root.Rename(rel(oldname), rel(newname))
}

// Stat returns the FileInfo of the named file, following links inside the
// root.
func (r *Fs) Stat(name string) (os.FileInfo, error) { return r.root.Stat(rel(name)) }

// LstatIfPossible returns the FileInfo of the named file without following
// a final symbolic link.
func (r *Fs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	fi, err := r.root.Lstat(rel(name))
	return fi, true, err
}

// Chmod changes the mode of the named file.
func (r *Fs) Chmod(name string, mode os.FileMode) error { return r.root.Chmod(rel(name), mode) }

// Chown changes the owner of the named file.
func (r *Fs) Chown(name string, uid, gid int) error { return r.root.Chown(rel(name), uid, gid) }

// Chtimes changes the access and modification times of the named file.
func (r *Fs) Chtimes(name string, atime, mtime time.Time) error {
	return r.root.Chtimes(rel(name), atime, mtime)
}

// openDir opens the directory dir (a slash path, "." for the root) segment
// by segment. It refuses a segment that is a symbolic link, and checks that
// each directory opened is the one that Lstat saw, so a directory swapped
// for a link between the two steps is refused too.
func (r *Fs) openDir(dir string) (*os.Root, error) {
	cur := r.root
	if dir == "." || dir == "" {
		return cur, nil
	}
	for seg := range strings.SplitSeq(dir, "/") {
		next, err := openSub(cur, seg, nil)
		r.closeDir(cur)
		if err != nil {
			return nil, wrap("open", dir, err)
		}
		cur = next
	}
	return cur, nil
}

// openSub opens the directory seg inside parent. want is what a listing saw
// for seg; when nil, openSub takes an Lstat itself.
func openSub(parent *os.Root, seg string, want fs.FileInfo) (*os.Root, error) {
	if seg == "" || seg == "." || seg == ".." {
		return nil, storage.ErrUnsafePath
	}
	if want == nil {
		fi, err := parent.Lstat(seg)
		if err != nil {
			return nil, err
		}
		want = fi
	}
	if want.Mode()&fs.ModeSymlink != 0 {
		return nil, storage.ErrSymlink
	}
	if !want.IsDir() {
		return nil, errors.New("not a directory")
	}
	sub, err := parent.OpenRoot(seg)
	if err != nil {
		return nil, err
	}
	got, err := sub.Stat(".")
	if err != nil || !os.SameFile(want, got) {
		sub.Close()
		return nil, storage.ErrChanged
	}
	return sub, nil
}

func (r *Fs) closeDir(d *os.Root) {
	if d != r.root {
		d.Close()
	}
}

// RemoveFiles implements [storage.Remover]. Files are removed by name through
// a verified handle on their directory, opened once per directory; on Linux
// each removal is an fstatat and an unlinkat on that handle. A target with
// Check is removed only if that fstatat finds its size and time
// (storage.Changed; Features.ChecksOnRemove), else refused with
// storage.ErrChanged. Files on disk have no entity tags: a target's ETag
// is not checked (Features.ConditionalDeletes is "").
func (r *Fs) RemoveFiles(ctx context.Context, targets []storage.Target) []error {
	errs := make([]error, len(targets))
	dirs := make(map[string]*openedDir)
	defer func() {
		for _, d := range dirs {
			d.close(r)
		}
	}()
	for i, t := range targets {
		if err := ctx.Err(); err != nil {
			for j := i; j < len(targets); j++ {
				errs[j] = err
			}
			break
		}
		errs[i] = r.removeFile(dirs, t)
	}
	return errs
}

// openedDir is a verified directory kept open for a batch of removals.
type openedDir struct {
	root *os.Root
	file *os.File // the directory itself, for unlinkat
}

func (d *openedDir) close(r *Fs) {
	d.file.Close()
	r.closeDir(d.root)
}

func (r *Fs) removeFile(dirs map[string]*openedDir, t storage.Target) error {
	p := slash(t.Path)
	if p == "." {
		return &storage.PathError{Op: "remove", Path: p, Err: storage.ErrUnsafePath}
	}
	dir, base := path.Dir(p), p[strings.LastIndexByte(p, '/')+1:]
	d, ok := dirs[dir]
	if !ok {
		root, err := r.openDir(dir)
		if err != nil {
			return wrap("remove", p, err)
		}
		f, err := root.Open(".")
		if err != nil {
			r.closeDir(root)
			return wrap("remove", p, err)
		}
		d = &openedDir{root: root, file: f}
		dirs[dir] = d
	}
	var check func(size int64, mtime time.Time) bool
	if t.Check {
		check = func(size int64, mtime time.Time) bool { return !storage.Changed(t, size, mtime) }
	}
	return wrap("remove", p, unlinkFile(d.root, d.file, base, check))
}

// wrap returns err as a *storage.PathError for op and path, unless it
// already is one, dropping the os package's own path wrapper, whose path
// is a host path the caller did not ask about.
func wrap(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *storage.PathError
	if errors.As(err, &pe) {
		return err
	}
	var ope *fs.PathError
	if errors.As(err, &ope) {
		err = ope.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		err = le.Err
	}
	return &storage.PathError{Op: op, Path: path, Err: err}
}
