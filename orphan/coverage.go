package orphan

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// uncoveredElsewhere returns, for a run limited to Options.Range, the
// cover keys outside the range that the single run's coverage guard
// would refuse: directories with a file that is old, not excluded and not
// declared unreferenced, while no valid reference points into them.
// Every shard so refuses what the single run refuses, not only the shard
// whose range holds the directory. Since no reference points into such a
// directory, each of its files is unreferenced; one is enough.
//
// With Options.Listing, which is read whole anyway, it reads the listing
// once more. Otherwise it reads the directories above the cover keys one
// by one (CoverageDepth levels: on an object store one delimited listing
// each) and lists only the cover keys no reference points into, each up
// to the first such file. It returns nil for an unlimited run.
func (f *Finder) uncoveredElsewhere(ctx context.Context, covered map[string]bool, now time.Time) ([]string, error) {
	if f.opts.Range.all() || !f.guards.coverage {
		return nil, nil
	}
	c := &coverCheck{f: f, covered: covered, now: now, found: map[string]bool{}}
	if f.opts.Listing != nil {
		err := storage.List(ctx, f.listFs(), storage.ListOptions{}, func(e storage.Entry) error {
			c.file(e)
			return nil
		})
		return sortedKeys(c.found), err
	}
	keys, err := c.walkDirs(ctx)
	if err != nil {
		return nil, err
	}
	errFound := errors.New("found")
	for _, d := range keys {
		err := storage.List(ctx, f.fs, storage.ListOptions{Dir: d, Measure: func(string) bool { return true }}, func(e storage.Entry) error {
			if c.file(e) {
				return errFound // one is enough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errFound) {
			return nil, err
		}
	}
	return sortedKeys(c.found), nil
}

// coverCheck collects the cover keys outside a run's range that the
// coverage guard refuses.
type coverCheck struct {
	f       *Finder
	covered map[string]bool
	now     time.Time
	found   map[string]bool
}

// file records the cover key of the listed entry e if e marks it
// uncovered: a regular file outside the range, not excluded, old, and
// not declared unreferenced, in a cover key no reference points into.
func (c *coverCheck) file(e storage.Entry) bool {
	f, p := c.f, e.Path
	if !e.Type.IsRegular() || f.opts.Range.Contains(p) {
		return false // this run's own plan decides what is in its range
	}
	k, ok := f.coverKey(p)
	if !ok || c.covered[k] || c.found[k] || f.excludedIn(p, false) != "" || f.young(e.ModTime, c.now) ||
		storage.MatchAny(f.opts.Unreferenced, p) {
		return false
	}
	c.found[k] = true
	return true
}

// walkDirs reads the directories above the cover keys, level by level,
// checking the files in them, and returns the directories at
// CoverageDepth whose cover keys no reference points into.
func (c *coverCheck) walkDirs(ctx context.Context) ([]string, error) {
	dirs := c.f.scanRoots()
	for depth := 0; depth < c.f.opts.CoverageDepth && len(dirs) > 0; depth++ {
		var next []string
		for _, d := range dirs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			infos, err := readDir(c.f.fs, d)
			if err != nil {
				return nil, err
			}
			for _, fi := range infos {
				p := path.Join(d, fi.Name())
				switch {
				case fi.IsDir() && storage.ValidPath(p) == nil && path.Base(p) != storage.QuarantineDirName:
					next = append(next, p)
				case fi.Mode().IsRegular():
					c.file(storage.Entry{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}) // Type 0: a regular file
				}
			}
		}
		dirs = next
	}
	var keys []string
	for _, d := range dirs {
		if k, ok := c.f.coverKey(d + "/x"); ok && !c.covered[k] && !c.found[k] {
			keys = append(keys, d)
		}
	}
	return keys, nil
}

// readDir reads the entries of the directory d ("" for the root), without
// following links: a missing directory has none.
func readDir(fsys afero.Fs, d string) ([]fs.FileInfo, error) {
	if d == "" {
		d = "."
	}
	infos, err := afero.ReadDir(fsys, d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return infos, err
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// mergeSorted returns the sorted union of the sorted lists a and b.
func mergeSorted(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	return slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(a), b...))))
}
