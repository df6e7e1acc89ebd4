package s3fs

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Parallel listing (Options.ListWorkers > 1).
//
// The first page is listed as a sequential listing would. If more pages
// follow, the rest of the range, after the first page's last key L up to
// the range's end, is cut at split points s1 < s2 < ... into the parts
// (L, s1], (s1, s2], ..., (sn, end]: each key of the range is in exactly
// one part whatever the split points are, so they only decide how even
// the parts are, never what is listed. A part is listed with StartAfter
// set to its start and ends at the first key past its end. Parts are
// started in order, at most ListWorkers at a time, and their pages are
// handed to fn in order: the first part's, then the second's, and so on.
// Each part buffers at most partPages pages ahead of fn.
//
// The split points are CommonPrefixes ("d017/") of delimiter listings at
// one depth below the listing's prefix, found by a planner walking the
// "directories" down to that depth in order, beginning at L. The depth is
// the shallowest at which L's directory holds at most half the first
// page, else L's deepest directory (see splitDepth); prefixes are grouped
// to make parts of about partPages pages, as the first page tells. A part
// reads one page past its end (the page that shows where it ends), so
// parts of several pages waste less.

const (
	// partPages is the pages a part buffers ahead of fn, and the size of
	// a part, in pages, that the planner aims at when it can tell. On T8
	// (100 pages, 20 ms a request, 8 workers) 4 took 125 requests and a
	// speedup of 2.5 to 2.75 (3.8 with the server's answers replayed), 8
	// took 113 and 2.7 to 3.0 (4.3), 16 took 107 and 2.9 to 3.2 (5.0):
	// fewer parts read fewer pages past their ends, and a part that may
	// run further ahead of fn waits less for the parts before it.
	partPages = 16
	// maxSplitDepth is the deepest level of directories split at.
	maxSplitDepth = 4
)

// errStopPlan ends the planner's walk at the end of the range.
var errStopPlan = errors.New("s3fs: end of planned range")

// listPart is one part of a parallel listing: its pages, in order, then
// the channel closed; err, when not nil after the close, says why the
// part ended early.
type listPart struct {
	pages chan []storage.Entry
	err   error
}

// listParallel is ListFiles with f.workers parts at a time. in is the
// sequential listing's first request, over keys below base; to (relative
// to the prefix, inclusive) ends the range when not empty. fn returns
// errEndOfRange at the end of the range.
func (f *Fs) listParallel(parent context.Context, in *s3.ListObjectsV2Input, base, to, name string, fn func(storage.Entry) error) error {
	p := &parallelList{f: f, parent: parent, base: base, name: name}
	p.ctx, p.cancel = context.WithCancel(parent)
	defer p.wg.Wait()
	defer p.cancel()

	// The first page, as a sequential listing lists it.
	var head []storage.Entry
	var last string
	more := false
	err := f.pages(p.ctx, in, name, func(es []storage.Entry, l string, m bool) error {
		head, last, more = es, l, m
		return errEndOfRange
	})
	if err != nil && !errors.Is(err, errEndOfRange) {
		return err
	}
	if more && last == "" {
		// An empty page that is not the last (allowed, if rare): no
		// start key to split after; list one page after another.
		return f.listObjects(p.ctx, in, name, fn)
	}
	lo := strings.TrimPrefix(last, f.prefix)
	if !more || (to != "" && lo >= to) {
		return deliver(head, fn)
	}
	// The planner finds split points after the first page, the parts
	// list between them.
	relBase := strings.TrimPrefix(base, f.prefix)
	depth, group := splitDepth(head, relBase, strings.TrimPrefix(last, base), f.partKeys)
	splits := p.startPlan(last, to, depth, group)
	if err := deliver(head, fn); err != nil {
		return err
	}
	return p.drain(lo, to, splits, fn)
}

// parallelList is one parallel listing: its planner and parts, and the
// first failure among them.
type parallelList struct {
	f           *Fs
	parent, ctx context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	base, name  string
	mu          sync.Mutex
	first       error
}

// fail records err, if it is the first failure, and stops the listing.
func (p *parallelList) fail(err error) {
	p.mu.Lock()
	if p.first == nil {
		p.first = err
	}
	p.mu.Unlock()
	p.cancel()
}

// failed returns the error a listing that failed returns: the caller's
// context's, once it is done, else the first failure.
func (p *parallelList) failed() error {
	if err := p.parent.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first != nil {
		return p.first
	}
	return p.ctx.Err()
}

// startPlan starts the planner, which sends split points after last, in
// order, and closes the channel it returns at the end.
func (p *parallelList) startPlan(last, to string, depth, group int) <-chan string {
	splits := make(chan string, 4*p.f.workers)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(splits)
		if depth == 0 {
			return
		}
		if err := p.f.plan(p.ctx, p.base, last, to, depth, group, splits); err != nil && !errors.Is(err, errStopPlan) {
			p.fail(err)
		}
	}()
	return splits
}

// startPart starts listing the part after the key after, up to end.
func (p *parallelList) startPart(after, end string) *listPart {
	part := &listPart{pages: make(chan []storage.Entry, partPages)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(part.pages)
		part.err = p.f.listRange(p.ctx, p.base, after, end, p.name, part.pages)
		if part.err != nil {
			p.fail(part.err)
		}
	}()
	return part
}

// drain starts a part for each split point, at most f.workers ahead, and
// hands the parts' pages to fn in order, the first part from lo on.
func (p *parallelList) drain(lo, to string, splits <-chan string, fn func(storage.Entry) error) error {
	var queue []*listPart
	planning := true
	for planning || len(queue) > 0 {
		var next <-chan string
		if planning && len(queue) < p.f.workers {
			next = splits
		}
		var pages <-chan []storage.Entry
		if len(queue) > 0 {
			pages = queue[0].pages
		}
		select {
		case <-p.ctx.Done():
			return p.failed()
		case s, ok := <-next:
			if !ok {
				planning = false
				queue = append(queue, p.startPart(lo, to))
				continue
			}
			queue = append(queue, p.startPart(lo, s))
			lo = s
		case es, ok := <-pages:
			if !ok {
				if queue[0].err != nil {
					return p.failed()
				}
				queue = queue[1:]
				continue
			}
			if p.ctx.Err() != nil {
				return p.failed()
			}
			if err := deliver(es, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// deliver calls fn with each of es, in order, and returns its first error.
func deliver(es []storage.Entry, fn func(storage.Entry) error) error {
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// listRange lists the keys below base after the key after and up to end
// (both relative to the prefix; end inclusive, or no end when empty) and
// sends them to out, a page at a time.
func (f *Fs) listRange(ctx context.Context, base, after, end, name string, out chan<- []storage.Entry) error {
	in := &s3.ListObjectsV2Input{Prefix: aws.String(base), StartAfter: aws.String(f.prefix + after)}
	err := f.pages(ctx, in, name, func(es []storage.Entry, last string, _ bool) error {
		stop := false
		if end != "" {
			if i := firstAfter(es, end); i < len(es) {
				es, stop = es[:i], true
			} else if strings.TrimPrefix(last, f.prefix) >= end {
				stop = true
			}
		}
		if len(es) > 0 {
			select {
			case out <- es:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if stop {
			return errEndOfRange
		}
		return nil
	})
	if errors.Is(err, errEndOfRange) {
		return nil
	}
	return err
}

// firstAfter returns the index of the first of es (in order) whose path
// is past end, or len(es).
func firstAfter(es []storage.Entry, end string) int {
	for i, e := range es {
		if e.Path > end {
			return i
		}
	}
	return len(es)
}

// splitDepth chooses the depth of the split points (directories below
// relBase, 1 for its direct subdirectories) from the first page's
// entries and its last key (relative to base), and how many prefixes of
// that depth make a part of about partKeys keys; depth 0 means none: the
// page has no directory beside the last key. The depth is the shallowest
// at which the page has directories beside the last key (in the same
// parent directory) and the last key's own directory, if it is in one
// there, holds at most half the page (so that the directories after it
// are likely small); else the deepest at which the page has directories
// beside it. The page's keys in that parent directory tell how many keys
// a prefix of that depth holds.
func splitDepth(es []storage.Entry, relBase, last string, partKeys int) (depth, group int) {
	depth, group = 0, 1
	for d := 1; d <= maxSplitDepth; d++ {
		parent, own := dirAt(last, d-1), dirAt(last, d)
		n, in, mine, prev := 0, 0, 0, ""
		for _, e := range es {
			k := strings.TrimPrefix(e.Path, relBase)
			if !strings.HasPrefix(k, parent) {
				continue
			}
			in++
			p := dirAt(k, d)
			if own != "" && p == own {
				mine++
			}
			if p != "" && p != prev {
				n++
				prev = p
			}
		}
		if n == 0 {
			return depth, group // no directory at this depth
		}
		// About in/n keys a prefix, partKeys a part.
		depth, group = d, max(1, partKeys*n/in)
		if 2*mine <= len(es) {
			return depth, group // the last key is a file here, or in a small directory
		}
	}
	return depth, group
}

// dirAt returns the first d segments of k with their trailing "/", or ""
// if k has no more than d segments.
func dirAt(k string, d int) string {
	i := 0
	for range d {
		j := strings.IndexByte(k[i:], '/')
		if j < 0 {
			return ""
		}
		i += j + 1
	}
	return k[:i]
}

// plan walks the directories below base, in order, down to depth, and
// sends to out every group-th prefix of that depth that sorts after last
// (a key) and not after to (relative to the prefix, when not empty), made
// relative to the prefix: the split points. Keys are full keys here.
func (f *Fs) plan(ctx context.Context, base, last, to string, depth, group int, out chan<- string) error {
	pl := &planner{f: f, ctx: ctx, last: last, depth: depth, group: group, out: out}
	if to != "" {
		pl.end = f.prefix + to
	}
	return pl.walk(base, 0)
}

// planner walks the directories after a listing's first page, down to
// depth, and sends every group-th of the deepest as a split point.
type planner struct {
	f            *Fs
	ctx          context.Context
	last, end    string // keys, with the prefix; end empty for none
	depth, group int
	n            int // directories counted at depth
	out          chan<- string
}

func (pl *planner) walk(dir string, d int) error {
	f := pl.f
	in := &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: aws.String(dir), Delimiter: aws.String("/"), MaxKeys: aws.Int32(pageSize), EncodingType: listEncoding}
	if strings.HasPrefix(pl.last, dir) {
		// The directories of the last key come first, walked here:
		// servers need not list a prefix that holds StartAfter
		// (versitygw does not).
		if own := dirAt(pl.last[len(dir):], 1); own != "" && d+1 < pl.depth {
			if err := pl.walk(dir+own, d+1); err != nil {
				return err
			}
		}
		in.StartAfter = aws.String(pl.last)
	}
	p := s3.NewListObjectsV2Paginator(f.client, in)
	for p.HasMorePages() {
		if err := pl.ctx.Err(); err != nil {
			return err
		}
		page, err := p.NextPage(pl.ctx)
		if err != nil {
			if cerr := pl.ctx.Err(); cerr != nil {
				return cerr
			}
			return &storage.PathError{Op: "list", Path: strings.TrimPrefix(dir, f.prefix), Err: err}
		}
		for _, cp := range page.CommonPrefixes {
			k, err := listedKey(page.EncodingType, cp.Prefix)
			if err != nil {
				return &storage.PathError{Op: "list", Path: strings.TrimPrefix(dir, f.prefix), Err: err}
			}
			if err := pl.dir(dir, k, d); err != nil {
				return err
			}
		}
	}
	return nil
}

// dir handles the directory k listed in dir, at depth d: walks into it,
// sends it as a split point, or skips it.
func (pl *planner) dir(dir, k string, d int) error {
	switch {
	case pl.end != "" && k > pl.end:
		return errStopPlan
	case !strings.HasPrefix(k, dir) || len(k) <= len(dir):
		return nil // not below dir: not a server's answer
	case k <= pl.last:
		return nil // before the rest of the range, or walked first
	case d+1 < pl.depth:
		return pl.walk(k, d+1)
	}
	if pl.n++; pl.n%pl.group != 0 {
		return nil
	}
	select {
	case pl.out <- strings.TrimPrefix(k, pl.f.prefix):
		return nil
	case <-pl.ctx.Done():
		return pl.ctx.Err()
	}
}
