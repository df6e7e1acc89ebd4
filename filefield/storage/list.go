package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/afero"
)

// Entry is one item of a listing.
type Entry struct {
	// Path is slash-separated and relative to the storage root.
	Path string `json:"path"`
	// Size in bytes; zero for directories.
	Size int64 `json:"size"`
	// ModTime is the modification time (LastModified on object stores).
	// Listings may leave it zero for entries that are neither regular files
	// nor directories (links, FIFOs, sockets): RootFs types those from the
	// directory record without a stat. ListNames may leave it, and Size,
	// zero for regular files too: such a file was not measured.
	ModTime time.Time `json:"mtime"`
	// Type holds the type bits of the entry's mode (fs.ModeDir,
	// fs.ModeSymlink, ...), zero for a regular file. It describes the entry
	// itself, never the target of a symbolic link.
	Type fs.FileMode `json:"type"`
}

// IsRegular reports whether the entry is a regular file.
func (e Entry) IsRegular() bool { return e.Type == 0 }

// IsDir reports whether the entry is a directory.
func (e Entry) IsDir() bool { return e.Type&fs.ModeDir != 0 }

// Lister is the optional fast-path listing interface a backend may
// implement. ListTree calls fn once for every entry below dir ("" or "." for
// the root, not dir itself) until fn returns an error, and returns that
// error. Implementations must:
//
//   - report each entry at most once, with size, mtime and type from the
//     listing itself (no extra request or system call per entry where the
//     backend's listing already has them);
//   - never descend into a symbolic link;
//   - skip the contents of a directory for which fn returned [fs.SkipDir],
//     returning nil for that error;
//   - check ctx between directories or pages and return ctx.Err() unwrapped;
//   - allow fn to remove the entry it was given.
//
// Directories may be reported before their contents or not at all (object
// stores have none); entries come in no particular order. fn is never called
// concurrently.
type Lister interface {
	ListTree(ctx context.Context, dir string, fn func(Entry) error) error
}

// List calls fn for every entry below dir, using the backend's [Lister] when
// it has one and [Walk] otherwise.
//
// Every listing skips quarantine areas (see [QuarantineDirName]): nothing
// inside one is reported, whatever the backend.
func List(ctx context.Context, fsys afero.Fs, dir string, fn func(Entry) error) error {
	fn = skipQuarantine(fn)
	if l, ok := fsys.(Lister); ok {
		return l.ListTree(ctx, dir, fn)
	}
	return Walk(ctx, fsys, dir, fn)
}

// skipQuarantine wraps a listing callback so that it never sees a
// quarantine area: the directory is skipped where the listing reports
// directories, and every path inside one where it does not (object
// stores list keys, not directories).
func skipQuarantine(fn func(Entry) error) func(Entry) error {
	return func(e Entry) error {
		if strings.Contains(e.Path, QuarantineDirName) && InQuarantine(e.Path) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return fn(e)
	}
}

// NameLister is the optional interface of backends whose listing needs an
// extra system call per file for size and mtime (a local disk: one fstatat
// each), where reading names alone is several times faster. ListNames is
// [Lister.ListTree] except that a regular file comes with zero Size and
// zero ModTime unless measure (when not nil) returns true for its path.
// measure may be called from several goroutines at once. Callers that need
// sizes later, for some files, ask [StatFiles].
type NameLister interface {
	ListNames(ctx context.Context, dir string, measure func(path string) bool, fn func(Entry) error) error
}

// ListNames calls fn for every entry below dir, cheaply: through the
// backend's [NameLister] when it has one, measuring the regular files
// measure wants (none if it is nil), else through [List], which measures
// every file. A regular file whose ModTime is zero was not measured: its
// Size is unknown too. Callers must not rely on measure being honoured
// beyond that: a file it wants may still come unmeasured, and one it does
// not want measured.
func ListNames(ctx context.Context, fsys afero.Fs, dir string, measure func(path string) bool, fn func(Entry) error) error {
	if l, ok := fsys.(NameLister); ok {
		return l.ListNames(ctx, dir, measure, skipQuarantine(fn))
	}
	return List(ctx, fsys, dir, fn)
}

// RangeLister is the optional interface of backends that can list a range
// of paths cheaply, in order (object stores: a listing from a start key).
// ListRange calls fn for at least every entry whose path p has
// first <= p <= last in byte order, and may report entries outside that
// range too; it otherwise behaves as [Lister.ListTree].
type RangeLister interface {
	ListRange(ctx context.Context, first, last string, fn func(Entry) error) error
}

// ListRange calls fn for every entry whose path lies between first and
// last inclusive, in byte order: through the backend's [RangeLister] when
// it has one, else by filtering a listing of the whole tree.
func ListRange(ctx context.Context, fsys afero.Fs, first, last string, fn func(Entry) error) error {
	fn = skipQuarantine(fn)
	inRange := func(e Entry) error {
		if e.Path < first || e.Path > last {
			return nil
		}
		return fn(e)
	}
	if l, ok := fsys.(RangeLister); ok {
		return l.ListRange(ctx, first, last, inRange)
	}
	return List(ctx, fsys, "", inRange)
}

// BatchStater is the optional interface of backends that stat many files
// faster together than one by one. StatFiles must behave as [StatFiles]
// documents.
type BatchStater interface {
	StatFiles(ctx context.Context, paths []string, fn func(i int, e Entry) error) error
}

// StatFiles calls fn with an Entry for each of paths that exists, without
// following a link at the end of the path, and with the path's index i. A
// path that does not exist is skipped; any other error ends the call with
// that error, as does an error from fn.
// fn is never called concurrently, and calls come in no particular order.
// Backends implementing [BatchStater] are fastest when the paths of a
// directory are adjacent.
func StatFiles(ctx context.Context, fsys afero.Fs, paths []string, fn func(i int, e Entry) error) error {
	if b, ok := fsys.(BatchStater); ok {
		return b.StatFiles(ctx, paths, fn)
	}
	for i, p := range paths {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		fi, err := Lstat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return wrap("stat", p, err)
		}
		if err := fn(i, EntryOf(p, fi)); err != nil {
			return err
		}
	}
	return nil
}

// Walk is the portable listing that [List] falls back to. It reads each
// directory once, whole, with Readdir(-1), and takes size, mtime and type
// from that listing (afero.Walk stats every entry again; paging with
// Readdir(n) while entries are removed panics on MemMapFs). Directories are
// reported before their contents and symbolic links are never followed.
//
// Directories deeper than a valid stored path can be are reported but not
// entered: nothing below them can be a stored path.
func Walk(ctx context.Context, fsys afero.Fs, dir string, fn func(Entry) error) error {
	if dir == "" {
		dir = "."
	}
	return walkDir(ctx, fsys, dir, skipQuarantine(fn))
}

func walkDir(ctx context.Context, fsys afero.Fs, dir string, fn func(Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	infos, err := readDir(fsys, dir)
	if err != nil {
		return wrap("list", dir, err)
	}
	for _, fi := range infos {
		e := EntryOf(Join(dir, fi.Name()), fi)
		if err := fn(e); err != nil {
			if errors.Is(err, fs.SkipDir) && e.IsDir() {
				continue
			}
			return err
		}
		if e.IsDir() && len(e.Path) < MaxPathLen {
			if err := walkDir(ctx, fsys, e.Path, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func readDir(fsys afero.Fs, dir string) ([]os.FileInfo, error) {
	f, err := fsys.Open(dir)
	if err != nil {
		return nil, err
	}
	infos, err := f.Readdir(-1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return infos, err
}

// EntryOf builds an Entry from a path and the FileInfo a listing returned.
func EntryOf(path string, fi fs.FileInfo) Entry {
	e := Entry{Path: path, ModTime: fi.ModTime(), Type: fi.Mode().Type()}
	if e.Type == 0 {
		e.Size = fi.Size()
	}
	return e
}
