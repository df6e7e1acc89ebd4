package rootfs

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// StatFiles implements [storage.Stater]. Each run of adjacent paths in one
// directory is stat'ed through one verified handle on that directory (no
// link followed on the way, one fstatat per name on Linux), by several
// workers at once as in ListFiles; fn is called from the calling goroutine.
func (r *Fs) StatFiles(ctx context.Context, paths []string, fn func(i int, e storage.Entry) error) error {
	groups, err := statGroups(paths)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan statGroup)
	results := make(chan statResult)
	workers := min(len(groups), syscallWorkers())
	free := make(chan []stat, workers+1)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var names []string
			for g := range jobs {
				var buf []stat
				select {
				case buf = <-free:
				default:
				}
				var res statResult
				res, names = r.statGroup(paths, g, buf, names)
				select {
				case results <- res:
				case <-ctx.Done():
				}
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		for _, g := range groups {
			select {
			case jobs <- g:
			case <-ctx.Done():
				return
			}
		}
	})
	for range groups {
		if err = ctx.Err(); err != nil {
			break
		}
		var res statResult
		select {
		case res = <-results:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err = cmp.Or(err, res.err); err != nil {
			break
		}
		for _, s := range res.stats {
			if err = fn(s.i, storage.Entry{Path: paths[s.i], Size: s.size, ModTime: time.Unix(s.sec, int64(s.nsec)), Type: s.typ}); err != nil {
				break
			}
		}
		select { // back to the workers: a large batch would otherwise leave a result per file for the collector
		case free <- res.stats[:0]:
		default:
		}
		if err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	return err
}

// statGroup is a run of adjacent paths in one directory: paths[lo:hi].
type statGroup struct {
	dir    string
	lo, hi int
}

// statGroups splits paths into runs by directory, refusing a path whose
// last segment could be a directory's own name ("", ".", "..").
func statGroups(paths []string) ([]statGroup, error) {
	var groups []statGroup
	for i, p := range paths {
		p = slash(p)
		if base := p[strings.LastIndexByte(p, '/')+1:]; base == "." || base == ".." || base == "" {
			return nil, &storage.PathError{Op: "stat", Path: p, Err: storage.ErrUnsafePath}
		}
		d := path.Dir(p)
		if n := len(groups); n > 0 && groups[n-1].dir == d {
			groups[n-1].hi = i + 1
			continue
		}
		groups = append(groups, statGroup{dir: d, lo: i, hi: i + 1})
	}
	return groups, nil
}

// stat is one file's result: 32 bytes, where a time.Time would take 24
// alone.
type stat struct {
	i    int
	size int64
	sec  int64
	nsec int32
	typ  fs.FileMode
}

type statResult struct {
	stats []stat
	err   error
}

// statGroup stats one group's files through a verified handle on their
// directory, appending to buf and using names as scratch (both reused
// from group to group; names is returned). A directory that is gone took
// its files with it.
func (r *Fs) statGroup(paths []string, g statGroup, buf []stat, names []string) (statResult, []string) {
	res := statResult{stats: slices.Grow(buf[:0], g.hi-g.lo)}
	d, err := r.openDir(g.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return res, names
	}
	if err == nil {
		names = names[:0]
		for _, p := range paths[g.lo:g.hi] {
			p = slash(p)
			names = append(names, p[strings.LastIndexByte(p, '/')+1:])
		}
		err = statNames(d, names, func(j int, size int64, mod time.Time, typ fs.FileMode) {
			res.stats = append(res.stats, stat{g.lo + j, size, mod.Unix(), int32(mod.Nanosecond()), typ})
		})
		clear(names)
		r.closeDir(d)
	}
	if pe := (*os.PathError)(nil); errors.As(err, &pe) && !strings.Contains(pe.Path, "/") {
		res.err = wrap("stat", path.Join(g.dir, pe.Path), pe.Err)
	} else if err != nil {
		res.err = wrap("stat", g.dir, err)
	}
	return res, names
}
