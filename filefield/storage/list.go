package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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
	// directory record without a stat. A listing with ListOptions.Measure
	// may leave it, and Size, zero for regular files too: such a file was
	// not measured.
	ModTime time.Time `json:"mtime"`
	// Type holds the type bits of the entry's mode (fs.ModeDir,
	// fs.ModeSymlink, ...), zero for a regular file: Type.IsRegular() and
	// Type.IsDir() tell. It describes the entry itself, never the target
	// of a symbolic link.
	Type fs.FileMode `json:"type"`
	// ETag is an object's entity tag, as an object store's listing gives
	// it; empty on backends without them (a local disk) and in the
	// portable listing. A rewritten object gets a new one, even at the
	// same size and second.
	ETag string `json:"etag,omitempty"`
}

// ListOptions say what [List] lists. The zero value lists the whole tree,
// every file measured.
type ListOptions struct {
	// Dir is the directory to list below: "" or "." for the root.
	Dir string
	// From and To, when To is set, narrow the listing to the paths p with
	// From <= p <= To in byte order: a key range, which object stores
	// list from their start key.
	From, To string
	// Measure, when set, says which regular files need a size and a time:
	// on backends where listing names is much cheaper (Features.CheapNames)
	// the others come unmeasured, with a zero Size and ModTime. Callers
	// must accept either: a file it wants is measured, one it does not may
	// be.
	Measure func(path string) bool
	// Sorted asks for the entries in byte order of their paths, the
	// order of a merge against another sorted stream: each directory's
	// entries sorted by name, a directory compared as its name followed
	// by "/" (so "a-b" and "a.b" come before "a/x", and "a0" after), and
	// a directory's contents right after the directory (see
	// [CompareSiblings]). Object stores list in that order anyway; a local
	// disk walks one directory at a time instead of many. List checks the
	// order of the non-directory entries it passes on and fails with
	// [ErrUnsorted] at the first one out of order.
	Sorted bool
}

// Lister is the optional fast path of backends with a listing of their
// own. ListFiles calls fn once for every entry below opts.Dir (not for
// the directory itself) until fn returns an error, and returns that error;
// it may report entries outside [opts.From, opts.To], which List filters
// out. Implementations must:
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
// stores have none); entries come in no particular order unless
// opts.Sorted asks for byte order, which implementations must then give.
// fn is never called concurrently.
type Lister interface {
	ListFiles(ctx context.Context, opts ListOptions, fn func(Entry) error) error
}

// List calls fn for every entry opts selects: through the backend's
// [Lister] when it has one, else by reading each directory once with
// Readdir(-1) (never afero.Walk, which stats every entry again, nor
// Readdir(n) paging, which panics on MemMapFs when entries are removed in
// between), following no link. Directories deeper than a valid stored path
// can be are reported but not entered.
//
// Every listing skips quarantine areas (see [QuarantineDirName]): nothing
// inside one is reported, whatever the backend.
func List(ctx context.Context, fsys afero.Fs, opts ListOptions, fn func(Entry) error) error {
	fn = skipQuarantine(fn)
	if opts.Sorted {
		fn = checkOrder(fn)
	}
	if opts.To != "" {
		inner := fn
		fn = func(e Entry) error {
			if e.Path < opts.From || e.Path > opts.To {
				return nil
			}
			return inner(e)
		}
	}
	if l, ok := fsys.(Lister); ok {
		return l.ListFiles(ctx, opts, fn)
	}
	dir := strings.Trim(opts.Dir, "/")
	if dir == "" {
		dir = "."
	}
	return walkDir(ctx, fsys, dir, opts.Sorted, fn)
}

// checkOrder wraps a listing callback so that it fails with ErrUnsorted
// at the first non-directory entry that does not come after the one
// before it in byte order.
func checkOrder(fn func(Entry) error) func(Entry) error {
	last, started := "", false
	return func(e Entry) error {
		if !e.Type.IsDir() {
			if started && e.Path <= last {
				return &PathError{Op: "list", Path: e.Path, Err: fmt.Errorf("%w: after %q", ErrUnsorted, last)}
			}
			last, started = e.Path, true
		}
		return fn(e)
	}
}

// CompareSiblings compares two entries of one directory, a and b, each
// a directory or not, in the order of a sorted listing (see
// ListOptions.Sorted): by name, a directory's name followed by "/", so
// that the full paths of the files below come out in byte order.
func CompareSiblings(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	// One name is a prefix of the other (or they are equal): compare the
	// next byte of each, "/" after a directory's name, none after a
	// file's.
	next := func(s string, dir bool) int {
		switch {
		case len(s) > n:
			return int(s[n])
		case dir:
			return '/'
		}
		return -1
	}
	return next(a, aDir) - next(b, bDir)
}

// skipQuarantine wraps a listing callback so that it never sees a
// quarantine area: the directory is skipped where the listing reports
// directories, and every path inside one where it does not (object
// stores list keys, not directories).
func skipQuarantine(fn func(Entry) error) func(Entry) error {
	return func(e Entry) error {
		if strings.Contains(e.Path, QuarantineDirName) && InQuarantine(e.Path) {
			if e.Type.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return fn(e)
	}
}

func walkDir(ctx context.Context, fsys afero.Fs, dir string, sorted bool, fn func(Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	infos, err := readDir(fsys, dir)
	if err != nil {
		return wrap("list", dir, err)
	}
	if sorted {
		slices.SortFunc(infos, func(a, b os.FileInfo) int {
			return CompareSiblings(a.Name(), a.IsDir(), b.Name(), b.IsDir())
		})
	}
	for _, fi := range infos {
		e := entryOf(join(dir, fi.Name()), fi)
		if err := fn(e); err != nil {
			if errors.Is(err, fs.SkipDir) && e.Type.IsDir() {
				continue
			}
			return err
		}
		if e.Type.IsDir() && len(e.Path) < MaxPathLen {
			if err := walkDir(ctx, fsys, e.Path, sorted, fn); err != nil {
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

// entryOf builds an Entry from a path and the FileInfo a listing returned.
func entryOf(path string, fi fs.FileInfo) Entry {
	e := Entry{Path: path, ModTime: fi.ModTime(), Type: fi.Mode().Type()}
	if e.Type == 0 {
		e.Size = fi.Size()
	}
	return e
}

// Stater is the optional interface of backends that stat many files faster
// together than one by one (a local disk, with one directory handle for
// many names). StatFiles must behave as [Restat] documents, following no
// link in any segment.
type Stater interface {
	StatFiles(ctx context.Context, paths []string, fn func(i int, e Entry) error) error
}

// relistAbove is the number of files from which a re-check on a backend
// with cheap range listings lists their key range rather than stat each:
// on S3 a stat is a request, while a listing takes 1000 keys a request.
const relistAbove = 100

// Restat calls fn with the current Entry of each of paths that exists,
// without following a link at the end of the path, with the path's index
// i: the re-check of files decided on earlier. A path that does not exist
// is skipped; any other error ends the call with that error, as does an
// error from fn. fn is never called concurrently, and calls come in no
// particular order. The strategy is the storage layer's: a listing of the
// paths' key range where that is cheap ([Features].RangeListing) and they
// are many, the backend's [Stater], or one Lstat each.
func Restat(ctx context.Context, fsys afero.Fs, paths []string, fn func(i int, e Entry) error) error {
	if FeaturesOf(fsys).RangeListing && len(paths) > relistAbove {
		first, last := paths[0], paths[0]
		at := make(map[string][]int, len(paths))
		for i, p := range paths {
			first, last = min(first, p), max(last, p)
			at[p] = append(at[p], i)
		}
		return List(ctx, fsys, ListOptions{From: first, To: last}, func(e Entry) error {
			for _, i := range at[e.Path] {
				if err := fn(i, e); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if s, ok := fsys.(Stater); ok {
		return s.StatFiles(ctx, paths, fn)
	}
	for i, p := range paths {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		fi, err := lstat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return wrap("stat", p, err)
		}
		if err := fn(i, entryOf(p, fi)); err != nil {
			return err
		}
	}
	return nil
}
