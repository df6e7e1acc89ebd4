package orphan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Merge mode (Options.Merge) holds neither the references nor the stored
// files in memory: the references' forms are sorted externally, in runs
// spilled to temporary files, and merged against a listing in byte order.
//
// A record of the sort is a form of a reference. A reference with one form
// in range (almost all) is that form alone. A reference with several is
// each form followed by a NUL, its 8-byte ordinal among such references
// and its first form: valid paths hold no NUL, so the records of one form
// stay together, and a multi-form reference is missing only if none of its
// forms is stored, which a second, smaller sort by ordinal decides.

// sortedRefs are a finder's references, sorted.
type sortedRefs struct {
	*extSorter
	multi uint64 // references with more than one form in range
}

// sortRefs streams the provider's references into an external sort of
// their forms in range, counting what loadRefs counts (but the missing
// ones, which only the merge can tell).
func (f *Finder) sortRefs(ctx context.Context) (*sortedRefs, refCounts, error) {
	s := &sortedRefs{extSorter: newExtSorter(ctx, f.opts.TempDir)}
	counts := refCounts{}
	covered := newCoverSet()
	var forms refForms
	var in []string // the forms in range
	var rec []byte
	var ambErr error
	defer func() {
		if r := recover(); r != nil {
			s.close() // a provider that panics leaves no sorter behind
			panic(r)
		}
	}()
	err := f.refs.References(ctx, func(ref string) error {
		if counts.n++; counts.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		f.normalise(ref, &forms)
		if forms.over {
			// Kept apart as well: a provider that swallows the error
			// still fails the run.
			ambErr = ambiguous(ref)
			return ambErr
		}
		if forms.cover == 0 {
			counts.invalid++ // as in hash mode: see refWorker.batch
		}
		if len(forms.paths) == 0 {
			return nil
		}
		in = f.inRange(&forms, covered, in[:0])
		return s.addForms(ctx, in, &rec)
	})
	if err == nil {
		err = ctx.Err()
	}
	if ambErr != nil {
		err = ambErr
	}
	if errors.Is(err, errSortStopped) || errors.Is(err, ErrAmbiguousReference) { // not the provider's failure
		s.close()
		return nil, refCounts{}, err
	}
	if err != nil && f.guards.provider {
		s.close()
		return nil, refCounts{}, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	s.sorted()
	counts.covered = covered.keys
	return s, counts, nil
}

// inRange appends to in the forms of a reference that lie in the finder's
// range, and adds the cover keys of the forms that count for coverage.
func (f *Finder) inRange(forms *refForms, covered *coverSet, in []string) []string {
	for i, p := range forms.paths {
		if i < forms.cover {
			if c, ok := f.coverKey(p); ok {
				covered.add(c)
			}
		}
		if f.opts.Range.Contains(p) {
			in = append(in, p)
		}
	}
	return in
}

// addForms adds one reference's forms in range to the sort: a single form
// as itself, several as multi-form records (see above), rec their buffer.
func (s *sortedRefs) addForms(ctx context.Context, in []string, rec *[]byte) error {
	switch len(in) {
	case 0:
		return nil
	case 1:
		return s.add(ctx, in[0])
	}
	for _, p := range in {
		r := append(append(append((*rec)[:0], p...), 0), make([]byte, 8)...)
		binary.BigEndian.PutUint64(r[len(p)+1:], s.multi)
		r = append(r, in[0]...)
		*rec = r
		if err := s.add(ctx, string(r)); err != nil {
			return err
		}
	}
	s.multi++
	return nil
}

// refCursor walks sorted references alongside a sorted list of paths,
// counting the references whose forms are all missing.
type refCursor struct {
	refs   *sortedRefs
	ctx    context.Context
	form   string // of the current record
	rec    string
	ok     bool
	err    error
	multis *extSorter // ordinal, found flag and first form of each multi-form record; nil when there are none
	// Missing single-form references, in order, up to maxListed.
	missing      []string
	missingCount int
}

func (f *Finder) newRefCursor(ctx context.Context, refs *sortedRefs) *refCursor {
	c := &refCursor{refs: refs, ctx: ctx}
	if refs.multi > 0 {
		c.multis = newExtSorter(ctx, f.opts.TempDir)
	}
	c.advance()
	return c
}

func (c *refCursor) advance() {
	c.rec, c.ok, c.err = c.refs.next()
	c.form = c.rec
	if i := strings.IndexByte(c.rec, 0); i >= 0 {
		c.form = c.rec[:i]
	}
}

// seek moves past every record before p and reports whether one names p,
// moving past those too. Records before p name files that are not stored.
func (c *refCursor) seek(p string) (found bool, err error) {
	for c.ok && c.form < p {
		if err := c.done(false); err != nil {
			return false, err
		}
	}
	for c.ok && c.form == p {
		found = true
		if err := c.done(true); err != nil {
			return false, err
		}
	}
	return found, c.err
}

// done settles the current record, stored or not, and moves on.
func (c *refCursor) done(stored bool) error {
	if len(c.rec) == len(c.form) {
		if !stored {
			if c.missingCount++; len(c.missing) < maxListed {
				c.missing = append(c.missing, c.form)
			}
		}
	} else {
		// NUL, ordinal, first form: keep ordinal and first form, and
		// put the flag between them.
		tail := c.rec[len(c.form)+1:]
		flag := "\x00"
		if stored {
			flag = "\x01"
		}
		if err := c.multis.add(c.ctx, tail[:8]+flag+tail[8:]); err != nil {
			return err
		}
	}
	c.advance()
	return nil
}

// finish settles the records after the last path, then the multi-form
// references, and returns the missing references as loadRefs would: the
// count, and the first maxListed of them in order.
func (c *refCursor) finish() (count int, missing []string, err error) {
	for c.ok {
		if err := c.done(false); err != nil {
			return 0, nil, err
		}
	}
	if c.err != nil {
		return 0, nil, c.err
	}
	count, missing = c.missingCount, c.missing
	if c.multis == nil {
		return count, missing, nil
	}
	c.multis.sorted()
	var more []string
	group, anyStored, first := "", false, ""
	settle := func() {
		if group != "" && !anyStored {
			count++
			more = appendListed(more, first)
		}
	}
	for {
		rec, ok, err := c.multis.next()
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			break
		}
		if rec[:8] != group {
			settle()
			group, anyStored, first = rec[:8], false, rec[9:]
		}
		anyStored = anyStored || rec[8] == 1
	}
	settle()
	return count, firstListed(append(missing, more...)), nil
}

func (c *refCursor) close() {
	c.refs.close()
	if c.multis != nil {
		c.multis.close()
	}
}

// mergeRoots returns the directories to list in the order of their paths:
// a directory compared as its name followed by "/".
func (f *Finder) mergeRoots() []string {
	return slices.SortedFunc(slices.Values(f.scanRoots()), func(a, b string) int {
		return strings.Compare(a+"/", b+"/")
	})
}

// listMerged is Find's listing in merge mode: the references sorted first,
// then storage listed in byte order and merged against them. It returns
// the unreferenced candidates, as candidates.unreferenced does, and what
// the references counted.
func (f *Finder) listMerged(ctx context.Context, plan *Plan, measure func(string) bool, keep func(reason, path string, size int64)) ([]Orphan, refCounts, error) {
	refs, counts, err := f.sortRefs(ctx)
	if err != nil {
		return nil, refCounts{}, err
	}
	cur := f.newRefCursor(ctx, refs)
	defer cur.close()
	onReferenced := f.onReferenced(ctx)
	orphans := []Orphan{}
	var referenced storage.Count
	last, started := "", false
	roots, filter := f.listRoots(true)
	for _, dir := range roots {
		inside := func(e storage.Entry) bool { return !f.outside(e, filter) }
		err := f.listInOrder(ctx, f.opts.Range.listOptions(dir, measure), inside, func(e storage.Entry) error {
			if started && e.Path <= last {
				return &storage.PathError{Op: "list", Path: e.Path, Err: fmt.Errorf("%w: after %q", storage.ErrUnsorted, last)}
			}
			last, started = e.Path, true
			if !e.Type.IsRegular() {
				keep(KeptNotRegular, e.Path, 0)
				return nil
			}
			plan.Scanned.Add(e.Size)
			if e.ModTime.IsZero() {
				plan.Unmeasured++
			}
			found, err := cur.seek(e.Path)
			if err != nil {
				return err
			}
			if reason := f.excludedByName(e.Path); reason != "" {
				keep(reason, e.Path, e.Size)
				if reason == KeptUnrecognised && len(plan.Unrecognised) < maxListed {
					plan.Unrecognised = append(plan.Unrecognised, e.Path)
				}
				return nil
			}
			if found {
				referenced.Add(e.Size)
				if onReferenced != nil {
					onReferenced(e.Path, e.Size)
				}
				return nil
			}
			o := Orphan{Path: e.Path, Size: e.Size, ModTime: e.ModTime}
			if len(e.ETag) <= maxETag {
				o.ETag = e.ETag
			}
			orphans = append(orphans, o)
			return nil
		})
		if err != nil {
			return nil, refCounts{}, err
		}
	}
	if counts.missingCount, counts.missing, err = cur.finish(); err != nil {
		return nil, refCounts{}, err
	}
	if referenced.Files > 0 {
		plan.Kept[KeptReferenced] = referenced
	}
	return slices.Clip(orphans), counts, nil
}

// referencedMerged is Apply's reference check in merge mode: it reports
// which of the paths (sorted, each once) a reference names, holding one
// bit per path.
func (f *Finder) referencedMerged(ctx context.Context, paths []string) (func(i int) bool, refCounts, error) {
	refs, counts, err := f.sortRefs(ctx)
	if err != nil {
		return nil, refCounts{}, err
	}
	defer refs.close()
	used := make([]uint64, (len(paths)+63)/64)
	rec, ok, err := refs.next()
	for i, p := range paths {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, refCounts{}, err
			}
		}
		for ; ok && err == nil; rec, ok, err = refs.next() {
			form, _, _ := strings.Cut(rec, "\x00")
			if form > p {
				break
			}
			if form == p {
				used[i/64] |= 1 << (i % 64)
			}
		}
		if err != nil {
			return nil, refCounts{}, err
		}
	}
	return func(i int) bool { return used[i/64]&(1<<(i%64)) != 0 }, counts, nil
}

// listInOrder lists in byte order for merge mode: storage lists that way
// itself (storage.ListOptions.Sorted); an Options.Listing, such as an
// inventory report in the order of its data files, is sorted externally
// first, its entries encoded as records. Only the entries keep accepts
// reach fn, and only they are sorted: the sort holds the scanned
// directories, not the whole listing.
func (f *Finder) listInOrder(ctx context.Context, opts storage.ListOptions, keep func(storage.Entry) bool, fn func(storage.Entry) error) error {
	if f.opts.Listing == nil {
		opts.Sorted = true
		return storage.List(ctx, f.listFs(), opts, func(e storage.Entry) error {
			if !keep(e) {
				return nil
			}
			return fn(e)
		})
	}
	s := newExtSorter(ctx, f.opts.TempDir)
	defer s.close()
	var rec []byte
	err := storage.List(ctx, f.listFs(), opts, func(e storage.Entry) error {
		if !keep(e) {
			return nil
		}
		var err error
		if rec, err = appendEntry(rec[:0], e); err != nil {
			return err
		}
		return s.add(ctx, string(rec))
	})
	if err != nil {
		return err
	}
	s.sorted()
	for {
		rec, ok, err := s.next()
		if err != nil || !ok {
			return err
		}
		e, err := parseEntry(rec)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// An entry as a record of the sort: its path, a NUL (which no stored path
// holds, and which sorts before every other byte, so records sort by
// path), then its size, mtime (seconds and nanoseconds since 1970, or
// the zero time's flag) and type, 8, 8, 4 and 4 bytes big-endian, a byte
// of flags and its ETag.
const entryFixed = 1 + 8 + 8 + 4 + 4 + 1

// appendEntry appends e's record to b; a path holding a NUL is refused.
func appendEntry(b []byte, e storage.Entry) ([]byte, error) {
	if strings.IndexByte(e.Path, 0) >= 0 {
		return b, &storage.PathError{Op: "list", Path: e.Path, Err: storage.ErrUnsafePath}
	}
	b = append(append(b, e.Path...), 0)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
	var flags byte
	var sec int64
	var nsec int32
	if e.ModTime.IsZero() {
		flags |= 1
	} else {
		sec, nsec = e.ModTime.Unix(), int32(e.ModTime.Nanosecond())
	}
	b = binary.BigEndian.AppendUint64(b, uint64(sec))
	b = binary.BigEndian.AppendUint32(b, uint32(nsec))
	b = binary.BigEndian.AppendUint32(b, uint32(e.Type))
	b = append(b, flags)
	return append(b, e.ETag...), nil
}

// parseEntry reads a record appendEntry made.
func parseEntry(rec string) (storage.Entry, error) {
	i := strings.IndexByte(rec, 0)
	if i < 0 || len(rec)-i < entryFixed {
		return storage.Entry{}, fmt.Errorf("orphan: sorting the listing: a damaged record %q", rec)
	}
	fixed := rec[i:]
	e := storage.Entry{
		Path: rec[:i],
		Size: int64(binary.BigEndian.Uint64([]byte(fixed[1:9]))),
		Type: fs.FileMode(binary.BigEndian.Uint32([]byte(fixed[21:25]))),
		ETag: fixed[entryFixed:],
	}
	if fixed[25]&1 == 0 {
		sec, nsec := int64(binary.BigEndian.Uint64([]byte(fixed[9:17]))), int32(binary.BigEndian.Uint32([]byte(fixed[17:21])))
		e.ModTime = time.Unix(sec, int64(nsec))
	}
	return e, nil
}
