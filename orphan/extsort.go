package orphan

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// The external sort of merge mode. Records are gathered into runs of
// sortChunk records (or sortChunkBytes of them); each full run is sorted
// and appended to one temporary file by a second goroutine while the next
// run fills, so at most two runs are in memory. The last run stays in
// memory. Reading merges every run through a loser tree, one comparison
// per level per record, with read buffers that share a fixed budget.
//
// It replaced a general-purpose library that handed every record over
// channels twice and merged in two levels: at ten million references it
// spent a quarter of its CPU on channel locks, and its read buffers grew
// with the number of runs.

// sortChunk is how many records a sorted run holds, and sortChunkBytes how
// many bytes of them at most: a run is 1 MiB of string headers plus its
// records, and two are in memory at a time.
const (
	sortChunk      = 1 << 16
	sortChunkBytes = 8 << 20
)

// mergeBudget is the read buffer all runs share while they merge, each
// run's between minRunBuffer and maxRunBuffer: up to 32 runs (two million
// records) get 64 KiB each, 1024 runs (67 million records) 2 KiB. It is
// small so that the sorter's memory stays the same from a million records
// up: reads come from the page cache, where 2 KiB at a time costs little.
const (
	mergeBudget  = 2 << 20
	minRunBuffer = 2 << 10
	maxRunBuffer = 64 << 10
)

// maxFanIn is the most runs one merge reads at once, so that their
// buffers stay within mergeBudget. Beyond it (67 million records), the
// smallest runs are first merged into longer runs appended to the same
// file, just enough of them that the rest fit in one merge: at most one
// more pass over the records, and the file up to twice their size until
// the sort ends. A variable for tests.
var maxFanIn = mergeBudget / minRunBuffer

// maxRecord bounds a record read back: a stored path is at most a few
// KiB, and a multi-form record two of them; a longer length is a
// corrupted run.
const maxRecord = 1 << 20

// errSortStopped: the sorter stopped taking input; next says why.
var errSortStopped = errors.New("sorter stopped")

// extSorter takes strings and gives them back in byte order, checking
// that order. Its methods are for one goroutine.
type extSorter struct {
	ctx   context.Context
	chunk []string
	bytes int
	file  *storage.TempFile
	err   error // the first error, kept
	// The spillers' writer and what they wrote, under wmu while they run,
	// read once they are done.
	wmu      sync.Mutex
	w        *bufio.Writer
	off      int64
	spillErr error
	runs     []run
	lenBuf   [binary.MaxVarintLen64]byte
	work     chan []string // full runs, to the spillers
	free     chan []string // emptied runs, back
	spilling sync.WaitGroup
	failed   atomic.Bool // a spiller met an error: stop taking input
	ended    bool        // sorted was called
	// The merge runs on a goroutine of its own, feed, which hands the
	// records over in batches: merging and what the caller does with the
	// records then share two cores.
	tree    loserTree
	batches chan recBatch
	stop    chan struct{} // closed to stop feed
	fed     chan struct{} // closed when feed returns
	cur     []string      // the batch being read
	pos     int
	last    string
	n       int
}

// recBatch is a batch of merged records, and the error that ended the
// merge after them, if one did.
type recBatch struct {
	recs []string
	err  error
}

// feedBatch is how many records feed hands over at a time.
const feedBatch = 1024

// run is a sorted run in the temporary file.
type run struct {
	off, size int64
	records   int
}

// newExtSorter returns a sorter whose runs go to a temporary file in
// tempDir (storage.TempDir when empty), created at once, so that a directory
// that cannot hold it fails every run, small or not. On systems that allow
// it the file is removed at once, so that nothing is left behind even if
// the process dies.
func newExtSorter(ctx context.Context, tempDir string) *extSorter {
	s := &extSorter{ctx: ctx, chunk: make([]string, 0, sortChunk)}
	s.file, s.err = storage.CreateTemp(tempDir, "mediaclean-sort-*")
	return s
}

// add hands rec to the sort. Once the sort has failed it returns an
// error wrapping errSortStopped and the cause.
func (s *extSorter) add(ctx context.Context, rec string) error {
	if s.err == nil && s.failed.Load() {
		s.stopSpill()
		s.err = s.spillErr
	}
	if s.err != nil {
		return fmt.Errorf("orphan: sorting references: %w: %w", errSortStopped, s.err)
	}
	s.chunk = append(s.chunk, rec)
	s.bytes += len(rec)
	if len(s.chunk) < sortChunk && s.bytes < sortChunkBytes {
		return nil
	}
	if s.work == nil {
		s.work, s.free = make(chan []string), make(chan []string, spillers)
		s.w = bufio.NewWriterSize(s.file, 256<<10)
		for range spillers {
			s.spilling.Go(s.spill)
		}
	}
	select {
	case s.work <- s.chunk:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case s.chunk = <-s.free:
	default:
		s.chunk = make([]string, 0, sortChunk)
	}
	s.bytes = 0
	return nil
}

// spillers is how many goroutines sort full runs: two, so that sorting,
// the longest step per record, keeps up with the provider on two cores.
// At most spillers+1 runs are in memory.
const spillers = 2

// spill sorts full runs and appends them to the file, one at a time,
// until work closes. After an error it drops what comes, so add never
// blocks.
func (s *extSorter) spill() {
	for chunk := range s.work {
		if !s.failed.Load() {
			slices.Sort(chunk)
			s.wmu.Lock()
			r := run{off: s.off, records: len(chunk)}
			var err error
			for _, rec := range chunk {
				if err = s.writeRecord(rec); err != nil {
					break
				}
			}
			if err == nil {
				err = s.w.Flush()
			}
			if err != nil && s.spillErr == nil {
				s.spillErr = fmt.Errorf("writing a sorted run: %w", err)
				s.failed.Store(true)
			}
			r.size = s.off - r.off
			s.runs = append(s.runs, r)
			s.wmu.Unlock()
		}
		clear(chunk)
		select {
		case s.free <- chunk[:0]:
		default:
		}
	}
}

// writeRecord appends rec, length-prefixed, to the file. The caller has
// the writer: under wmu while spillers run, alone after.
func (s *extSorter) writeRecord(rec string) error {
	n := binary.PutUvarint(s.lenBuf[:], uint64(len(rec)))
	if _, err := s.w.Write(s.lenBuf[:n]); err != nil {
		return err
	}
	if _, err := s.w.WriteString(rec); err != nil {
		return err
	}
	s.off += int64(n + len(rec))
	return nil
}

// sorted ends the input; next then gives the records in order.
func (s *extSorter) sorted() {
	if s.ended {
		return
	}
	s.ended = true
	s.stopSpill()
	if s.err == nil {
		s.err = s.spillErr
	}
	if s.err != nil {
		return
	}
	if s.err = s.premerge(); s.err != nil {
		return
	}
	slices.Sort(s.chunk)
	srcs := append(s.readers(s.runs), &runReader{mem: s.chunk, left: len(s.chunk)})
	for _, src := range srcs {
		if err := src.advance(); err != nil {
			s.err = err
			return
		}
	}
	s.tree.build(srcs)
	s.batches, s.stop, s.fed = make(chan recBatch, 2), make(chan struct{}), make(chan struct{})
	go s.feed()
}

// readers returns a reader for each of runs, their buffers sharing
// mergeBudget.
func (s *extSorter) readers(runs []run) []*runReader {
	size := max(minRunBuffer, min(maxRunBuffer, mergeBudget/max(1, len(runs))))
	out := make([]*runReader, 0, len(runs)+1)
	for _, r := range runs {
		out = append(out, &runReader{
			r:    bufio.NewReaderSize(io.NewSectionReader(s.file, r.off, r.size), size),
			left: r.records,
		})
	}
	return out
}

// premerge merges the smallest runs into one, appended to the file,
// until at most maxFanIn are left; each merge of g runs leaves g-1
// fewer, so it merges no more than it must. It runs after the spillers
// are done, so it has the writer to itself.
func (s *extSorter) premerge() error {
	for len(s.runs) > maxFanIn {
		slices.SortStableFunc(s.runs, func(a, b run) int { return cmp.Compare(a.records, b.records) })
		g := min(maxFanIn, len(s.runs)-maxFanIn+1)
		r, err := s.mergeRuns(s.runs[:g])
		if err != nil {
			return err
		}
		s.runs = append(s.runs[g:], r)
	}
	return nil
}

// mergeRuns merges group into one run appended to the file.
func (s *extSorter) mergeRuns(group []run) (run, error) {
	srcs := s.readers(group)
	want := 0
	for i, src := range srcs {
		want += group[i].records
		if err := src.advance(); err != nil {
			return run{}, err
		}
	}
	var tree loserTree
	tree.build(srcs)
	r := run{off: s.off}
	for {
		if r.records%4096 == 0 {
			if err := s.ctx.Err(); err != nil {
				return run{}, err
			}
		}
		rec, ok, err := tree.pop()
		if err != nil {
			return run{}, err
		}
		if !ok {
			break
		}
		if err := s.writeRecord(rec); err != nil {
			return run{}, fmt.Errorf("writing a merged run: %w", err)
		}
		r.records++
	}
	if err := s.w.Flush(); err != nil {
		return run{}, fmt.Errorf("writing a merged run: %w", err)
	}
	if r.records != want {
		return run{}, fmt.Errorf("merging runs: %d records of %d", r.records, want)
	}
	r.size = s.off - r.off
	return r, nil
}

// feed merges the runs into batches until they end, an error or stop.
func (s *extSorter) feed() {
	defer close(s.fed)
	defer close(s.batches)
	for {
		recs := make([]string, 0, feedBatch)
		var err error
		for len(recs) < feedBatch {
			rec, ok, perr := s.tree.pop()
			if err = perr; err != nil || !ok {
				break
			}
			recs = append(recs, rec)
		}
		select {
		case s.batches <- recBatch{recs: recs, err: err}:
		case <-s.stop:
			return
		}
		if err != nil || len(recs) < feedBatch {
			return
		}
	}
}

// next returns the next record, or ok false at the end, with the sort's
// error if it failed. A record before the one returned last fails closed:
// whatever relies on the order must stop.
func (s *extSorter) next() (rec string, ok bool, err error) {
	if !s.ended && s.err == nil {
		s.err = errors.New("read before the input ended") // a caller's bug: fail, never block
	}
	if s.err != nil {
		return "", false, fmt.Errorf("orphan: sorting references: %w", s.err)
	}
	if s.n%4096 == 0 {
		if err := s.ctx.Err(); err != nil {
			return "", false, err
		}
	}
	for s.pos == len(s.cur) {
		b, ok := <-s.batches
		if !ok {
			return "", false, nil
		}
		if b.err != nil {
			s.err = b.err
			return "", false, fmt.Errorf("orphan: sorting references: %w", b.err)
		}
		s.cur, s.pos = b.recs, 0
	}
	rec = s.cur[s.pos]
	s.pos++
	if s.n > 0 && rec < s.last {
		s.err = fmt.Errorf("%w: %q after %q", storage.ErrUnsorted, rec, s.last)
		return "", false, fmt.Errorf("orphan: sorting references: %w", s.err)
	}
	s.n++
	s.last = rec
	return rec, true, nil
}

// close stops the sort, waits for it and removes its temporary file.
func (s *extSorter) close() {
	s.failed.Store(true) // nothing more is written
	s.ended = true
	s.stopSpill()
	if s.stop != nil {
		close(s.stop)
		<-s.fed
		s.stop = nil
	}
	if s.err == nil {
		// A read after close is an error, never the end of the records:
		// an early end would make every later reference look absent.
		s.err = errSortStopped
	}
	s.tree, s.cur, s.pos, s.batches = loserTree{}, nil, 0, nil
	s.chunk = nil
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
}

// stopSpill ends the spillers, if they started, and waits for them.
func (s *extSorter) stopSpill() {
	if s.work != nil {
		close(s.work)
		s.spilling.Wait()
		s.work = nil
	}
}

// runReader gives one sorted run's records in order, from the file or
// from memory.
type runReader struct {
	r    *bufio.Reader
	mem  []string
	left int // records not yet read
	head string
	ok   bool // head holds a record
}

// advance reads the next record into head; past the last, ok is false.
// A run that ends early or holds a bad length fails.
func (r *runReader) advance() error {
	if r.left == 0 {
		r.head, r.ok = "", false
		return nil
	}
	r.left--
	r.ok = true
	if r.r == nil {
		r.head, r.mem = r.mem[0], r.mem[1:]
		return nil
	}
	n, err := binary.ReadUvarint(r.r)
	if err == nil && n > maxRecord {
		err = fmt.Errorf("a record of %d bytes", n)
	}
	if err != nil {
		return fmt.Errorf("reading a sorted run: %w", noEOF(err))
	}
	if int(n) <= r.r.Size() {
		var b []byte
		if b, err = r.r.Peek(int(n)); err == nil {
			r.head = string(b)
			_, err = r.r.Discard(int(n))
		}
	} else {
		b := make([]byte, n)
		if _, err = io.ReadFull(r.r, b); err == nil {
			r.head = string(b)
		}
	}
	if err != nil {
		return fmt.Errorf("reading a sorted run: %w", noEOF(err))
	}
	return nil
}

// noEOF turns the end of a run's data into the error it is when a record
// was due.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// loserTree merges sorted runs: each inner node holds the loser of the
// match below it and node[0] the overall winner, so replacing the winner
// replays one path to the root, one comparison per level. Leaves are at
// k..2k-1 for k runs.
type loserTree struct {
	src  []*runReader
	node []int
}

// beats reports whether run a's head comes before run b's: an exhausted
// run loses to every other.
func (t *loserTree) beats(a, b int) bool {
	sa, sb := t.src[a], t.src[b]
	return sa.ok && (!sb.ok || sa.head < sb.head)
}

func (t *loserTree) build(src []*runReader) {
	k := len(src)
	t.src, t.node = src, make([]int, k)
	var play func(n int) int // the winner below node n
	play = func(n int) int {
		if n >= k {
			return n - k
		}
		a, b := play(2*n), play(2*n+1)
		if t.beats(b, a) {
			a, b = b, a
		}
		t.node[n] = b
		return a
	}
	t.node[0] = play(1)
}

// winner returns the run whose head comes first, or nil when all are
// exhausted.
func (t *loserTree) winner() *runReader {
	if len(t.src) == 0 || !t.src[t.node[0]].ok {
		return nil
	}
	return t.src[t.node[0]]
}

// pop returns the first head of all the runs and advances its run; ok is
// false when all are exhausted.
func (t *loserTree) pop() (rec string, ok bool, err error) {
	w := t.winner()
	if w == nil {
		return "", false, nil
	}
	rec = w.head
	if err := w.advance(); err != nil {
		return "", false, err
	}
	t.replay()
	return rec, true, nil
}

// replay restores the tree after the winner's run advanced.
func (t *loserTree) replay() {
	k := len(t.src)
	w := t.node[0]
	for n := (w + k) / 2; n >= 1; n /= 2 {
		if t.beats(t.node[n], w) {
			t.node[n], w = w, t.node[n]
		}
	}
	t.node[0] = w
}
