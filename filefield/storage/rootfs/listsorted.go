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
	q := &readAhead{w: w, parent: d.root}
	for i := range d.infos {
		if de := &d.infos[i]; isKid(de) {
			q.kids = append(q.kids, &ahead{want: *de})
		}
	}
	defer q.drain()
	q.startMore()
	for i := range d.infos {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		de := &d.infos[i]
		e := storage.Entry{Path: de.path, Size: de.size, ModTime: de.mod, Type: de.typ}
		if err := fn(e); err != nil {
			if errors.Is(err, fs.SkipDir) && e.Type.IsDir() {
				if isKid(de) {
					q.skip()
				}
				continue
			}
			return err
		}
		if isKid(de) {
			if err := w.descend(q.take(), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// isKid reports whether the walk goes into the listed entry de.
func isKid(de *dirEntry) bool { return de.typ.IsDir() && len(de.path) < storage.MaxPathLen }

// descend emits the subdirectory sub, read, and closes it.
func (w *sortedWalk) descend(sub sortedDir, fn func(storage.Entry) error) error {
	if sub.err != nil {
		return sub.err
	}
	if sub.root == nil {
		return nil // removed since it was listed
	}
	defer sub.root.Close()
	return w.emit(sub, fn)
}

// readAhead holds the subdirectories of one directory, in order, reading
// them ahead while the walk's slots allow.
type readAhead struct {
	w      *sortedWalk
	parent *os.Root
	kids   []*ahead
	next   int // the first kid not started nor taken
	taken  int // kids before this one are done with
}

// startMore starts reading the kids after the last one started, while
// slots are free.
func (q *readAhead) startMore() {
	for ; q.next < len(q.kids); q.next++ {
		select {
		case q.w.slots <- struct{}{}:
		default:
			return
		}
		k := q.kids[q.next]
		k.started, k.done = true, make(chan struct{})
		go func() {
			defer close(k.done)
			k.res = q.w.read(q.parent, &k.want)
		}()
	}
}

// take returns the next kid, read: its read ahead, or read now.
func (q *readAhead) take() sortedDir {
	k := q.kids[q.taken]
	q.taken++
	defer q.startMore()
	if !k.started {
		q.next = max(q.next, q.taken)
		return q.w.read(q.parent, &k.want)
	}
	<-k.done
	<-q.w.slots
	return k.res
}

// skip drops the next kid, closing it if it was read ahead.
func (q *readAhead) skip() {
	if !q.kids[q.taken].started {
		q.taken++ // never read
		q.next = max(q.next, q.taken)
		return
	}
	if sub := q.take(); sub.root != nil {
		sub.root.Close()
	}
}

// drain waits for the reads still out, when the walk stopped early, and
// closes what they opened.
func (q *readAhead) drain() {
	for _, k := range q.kids[q.taken:] {
		if k.started {
			<-k.done
			<-q.w.slots
			if k.res.root != nil {
				k.res.root.Close()
			}
		}
	}
}
