package rootfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// listSorted is ListFiles with opts.Sorted: a depth-first walk that
// passes each directory's entries to fn sorted as storage.CompareSiblings
// orders them, and a directory's contents right after it, so that the
// paths come out in byte order. Directories are still read through their
// parent's handle with the checks of the parallel walk, and up to
// syscallWorkers() of them are read ahead by other goroutines while fn
// works through the ones before: a directory read ahead and not yet
// reached holds one slot, so at most that many are held in memory besides
// the directories on the current path.
func (r *Fs) listSorted(ctx context.Context, dir string, skipStat func(string) bool, fn func(storage.Entry) error) error {
	dir = slash(dir)
	d, err := r.openDir(dir)
	if err != nil {
		return wrap("list", dir, err)
	}
	if d != r.root {
		defer d.Close()
	}
	w := &sortedWalk{ctx: ctx, skipStat: skipStat, slots: make(chan struct{}, syscallWorkers())}
	top := w.readOpen(d, dir)
	if top.err != nil {
		return top.err
	}
	err = w.emit(top, fn)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

type sortedWalk struct {
	ctx      context.Context
	skipStat func(string) bool
	slots    chan struct{} // one per directory being read ahead
}

// sortedDir is a directory read and sorted; root is nil for one removed
// since its parent was read.
type sortedDir struct {
	root  *os.Root
	infos []dirEntry
	err   error
}

// ahead is a subdirectory to read, maybe read ahead.
type ahead struct {
	want    dirEntry
	started bool
	done    chan struct{}
	res     sortedDir
}

// readOpen reads and sorts the directory open as d, at path p.
func (w *sortedWalk) readOpen(d *os.Root, p string) sortedDir {
	prefix := ""
	if p != "." && p != "" {
		prefix = p + "/"
	}
	infos, err := readDirHandle(d, prefix, w.skipStat)
	if err != nil {
		return sortedDir{err: wrap("list", p, err)}
	}
	slices.SortFunc(infos, func(a, b dirEntry) int {
		return storage.CompareSiblings(a.name, a.typ.IsDir(), b.name, b.typ.IsDir())
	})
	return sortedDir{root: d, infos: infos}
}

// read opens the listed subdirectory want of parent and reads it. The
// caller closes the result's root.
func (w *sortedWalk) read(parent *os.Root, want *dirEntry) sortedDir {
	sub, err := openListed(parent, want)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return sortedDir{} // removed since it was listed
		}
		return sortedDir{err: wrap("list", want.path, err)}
	}
	res := w.readOpen(sub, want.path)
	if res.err != nil {
		sub.Close()
	}
	return res
}

// emit calls fn for the entries of d in order, walking into each
// subdirectory as it comes, and reads the later subdirectories ahead
// while slots are free. It returns only when every read it started is
// over, their handles closed.
func (w *sortedWalk) emit(d sortedDir, fn func(storage.Entry) error) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	var kids []*ahead
	for i := range d.infos {
		if de := &d.infos[i]; de.typ.IsDir() && len(de.path) < storage.MaxPathLen {
			kids = append(kids, &ahead{want: *de})
		}
	}
	next := 0 // the first kid not started nor taken
	startMore := func() {
		for ; next < len(kids); next++ {
			select {
			case w.slots <- struct{}{}:
			default:
				return
			}
			k := kids[next]
			k.started, k.done = true, make(chan struct{})
			go func() {
				defer close(k.done)
				k.res = w.read(d.root, &k.want)
			}()
		}
	}
	taken := 0 // kids before this one are done with
	defer func() {
		// Stopped early: wait for the reads still out and close what
		// they opened.
		for _, k := range kids[taken:] {
			if k.started {
				<-k.done
				<-w.slots
				if k.res.root != nil {
					k.res.root.Close()
				}
			}
		}
	}()
	take := func() sortedDir {
		k := kids[taken]
		taken++
		if !k.started {
			next = max(next, taken)
			return w.read(d.root, &k.want)
		}
		<-k.done
		<-w.slots
		return k.res
	}
	startMore()
	for i := range d.infos {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		de := &d.infos[i]
		e := storage.Entry{Path: de.path, Size: de.size, ModTime: de.mod, Type: de.typ}
		isKid := e.Type.IsDir() && len(e.Path) < storage.MaxPathLen
		if err := fn(e); err != nil {
			if errors.Is(err, fs.SkipDir) && e.Type.IsDir() {
				if isKid {
					if !kids[taken].started {
						taken++ // never read
						next = max(next, taken)
					} else if sub := take(); sub.root != nil {
						sub.root.Close()
					}
					startMore()
				}
				continue
			}
			return err
		}
		if !isKid {
			continue
		}
		sub := take()
		startMore()
		if sub.err != nil {
			return sub.err
		}
		if sub.root == nil {
			continue
		}
		err := w.emit(sub, fn)
		sub.root.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
