package orphan

import (
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// candidates holds the files Find may report as orphans while references
// load: their paths and ETags in byte chunks and 8 pointer-free bytes
// each, plus 16 for size and mtime when the listing measured them, so a
// million files listed by name cost 9 MB plus their path bytes, and
// nothing for the garbage collector to scan. Chunks and blocks are never
// grown in place, so no path or item is copied after it is added. Orphan
// values, with their strings, are made only for the files that turn out
// to be unreferenced.
type candidates struct {
	chunks [][]byte          // path bytes; a path never spans two chunks
	blocks [][]candidate     // items in order, in blocks
	metas  [][]meta          // per block: nil while none of its files was measured
	far    map[int]time.Time // by index: times nanoseconds since 1970 cannot hold (before 1678, after 2262)
	n      int
}

type candidate struct {
	off   uint32 // the path is chunks[chunk][off:off+n], then a byte L and L bytes of ETag
	chunk uint16
	n     uint16
}

// maxETag is the longest ETag a candidate keeps: S3's are 34 bytes
// (quoted hex digits), and a few more for multipart uploads ("-" and a
// part count). A longer one is dropped, and Apply then conditions the
// deletion on the ETag its re-check lists.
const maxETag = 255

type meta struct {
	size  int64
	mtime int64 // UnixNano, or unmeasured
}

// clampedUnixNano returns t as nanoseconds since 1970, clamped to the
// range of an int64: time.Time.UnixNano is undefined before 1678 and
// after 2262, and in practice wraps, so a file dated 2300 would look 300
// years old. A clamped time is on the right side of every age boundary
// in that range; the exact time of a clamped one is kept aside.
func clampedUnixNano(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// unmeasured is the mtime of a candidate listed by name only.
const unmeasured = math.MinInt64

// Chunk and block sizes start small, for the many small plans, and double
// up to these.
const (
	maxChunk = 1 << 20
	maxBlock = 1 << 14
)

// errTooManyCandidates: more than 64 GiB of candidate paths in one plan;
// narrow Options.Dirs.
var errTooManyCandidates = errors.New("orphan: more than 64 GiB of candidate paths in one plan; narrow Options.Dirs")

// add adds a file, with its ETag if the listing gave one. p is a valid
// stored path, so it fits in a uint16.
func (c *candidates) add(p string, size int64, mtime time.Time, etag string) error {
	if len(etag) > maxETag {
		etag = ""
	}
	need := len(p) + 1 + len(etag)
	nc := len(c.chunks)
	if nc == 0 || len(c.chunks[nc-1])+need > cap(c.chunks[nc-1]) {
		if nc > math.MaxUint16 {
			return errTooManyCandidates
		}
		capacity := 4 << 10
		if nc > 0 {
			capacity = min(2*cap(c.chunks[nc-1]), maxChunk)
		}
		c.chunks = append(c.chunks, make([]byte, 0, max(capacity, need)))
		nc++
	}
	nb := len(c.blocks)
	if nb == 0 || len(c.blocks[nb-1]) == cap(c.blocks[nb-1]) {
		capacity := 64
		if nb > 0 {
			capacity = min(2*cap(c.blocks[nb-1]), maxBlock)
		}
		c.blocks = append(c.blocks, make([]candidate, 0, capacity))
		c.metas = append(c.metas, nil)
		nb++
	}
	chunk := &c.chunks[nc-1]
	block := &c.blocks[nb-1]
	if !mtime.IsZero() {
		metas := &c.metas[nb-1]
		if *metas == nil {
			*metas = make([]meta, len(*block), cap(*block))
			for i := range *metas {
				(*metas)[i].mtime = unmeasured
			}
		}
		ns := clampedUnixNano(mtime)
		if !time.Unix(0, ns).Equal(mtime) {
			if c.far == nil {
				c.far = map[int]time.Time{}
			}
			c.far[c.n] = mtime
			ns = max(ns, unmeasured+1)
		}
		*metas = append(*metas, meta{size: size, mtime: ns})
	} else if c.metas[nb-1] != nil {
		c.metas[nb-1] = append(c.metas[nb-1], meta{mtime: unmeasured})
	}
	*block = append(*block, candidate{off: uint32(len(*chunk)), chunk: uint16(nc - 1), n: uint16(len(p))})
	*chunk = append(*chunk, p...)
	*chunk = append(*chunk, byte(len(etag)))
	*chunk = append(*chunk, etag...)
	c.n++
	return nil
}

// each calls fn for every candidate in the order added, with its index.
func (c *candidates) each(fn func(i int, p, etag []byte, m meta)) {
	i := 0
	for b, block := range c.blocks {
		metas := c.metas[b]
		for j, it := range block {
			m := meta{mtime: unmeasured}
			if metas != nil {
				m = metas[j]
			}
			chunk := c.chunks[it.chunk]
			end := it.off + uint32(it.n)
			fn(i, chunk[it.off:end], chunk[end+1:end+1+uint32(chunk[end])], m)
			i++
		}
	}
}

// lookUp sets the bit in used of every referenced candidate, counts those
// in referenced, and returns the number and path bytes of the others. The
// lookups miss the cache, so blocks are shared out among one goroutine per
// CPU; each block starts at a multiple of 64 candidates, so no two
// goroutines write the same word of used.
func (c *candidates) lookUp(refs *pathSet, used []uint64, referenced *storage.Count) (n, bytes int) {
	type part struct {
		referenced storage.Count
		n, bytes   int
	}
	parts := make([]part, cpuWorkers())
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range parts {
		wg.Go(func() {
			pt := &parts[w]
			var hs []uint64
			var found []bool
			for {
				b := int(next.Add(1) - 1)
				if b >= len(c.blocks) {
					return
				}
				i := blockStart(b)
				metas := c.metas[b]
				block := c.blocks[b]
				hs, found = hs[:0], slices.Grow(found[:0], len(block))[:len(block)]
				for _, it := range block {
					hs = append(hs, maphash.Bytes(refs.seed, c.chunks[it.chunk][it.off:it.off+uint32(it.n)]))
				}
				refs.hasHashes(hs, found)
				for j, it := range block {
					if found[j] {
						used[(i+j)/64] |= 1 << ((i + j) % 64)
						var size int64
						if metas != nil {
							size = metas[j].size
						}
						pt.referenced.Add(size)
					} else {
						pt.n++
						pt.bytes += int(it.n)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, pt := range parts {
		referenced.Files += pt.referenced.Files
		referenced.Bytes += pt.referenced.Bytes
		n += pt.n
		bytes += pt.bytes
	}
	return n, bytes
}

// blockStart is the index of the first candidate of block b: blocks hold
// 64, 128, ... up to maxBlock candidates, all full but the last.
func blockStart(b int) int {
	start, size := 0, 64
	for range b {
		start += size
		size = min(2*size, maxBlock)
	}
	return start
}

// unreferenced splits the candidates: it returns the unreferenced ones as
// Orphan values, in a slice of exactly their number with all their paths
// in one string and all their ETags in another (a large plan costs a few
// allocations, not one per file),
// and counts the referenced ones, calling onReferenced, when not nil, for
// each (in order, a string each). It empties c, whose memory the caller
// no longer needs. An Orphan's ModTime is zero if the listing did not
// measure the file.
func (c *candidates) unreferenced(refs *pathSet, onReferenced func(path string, size int64)) (out []Orphan, referenced storage.Count) {
	used := make([]uint64, (c.n+63)/64) // one bit per candidate
	n, bytes := c.lookUp(refs, used, &referenced)
	isUsed := func(i int) bool { return used[i/64]&(1<<(i%64)) != 0 }
	if onReferenced != nil {
		c.each(func(i int, p, _ []byte, m meta) {
			if isUsed(i) {
				onReferenced(string(p), m.size)
			}
		})
	}
	// Builders hand their bytes over as strings without copying them.
	var buf, tagBuf strings.Builder
	buf.Grow(bytes)
	c.each(func(i int, p, etag []byte, _ meta) {
		if !isUsed(i) {
			buf.Write(p)
			tagBuf.Write(etag)
		}
	})
	all, tags := buf.String(), tagBuf.String()
	out = make([]Orphan, 0, n)
	off, toff := 0, 0
	c.each(func(i int, p, etag []byte, m meta) {
		if isUsed(i) {
			return
		}
		o := Orphan{Path: all[off : off+len(p)], Size: m.size}
		if t, ok := c.far[i]; ok {
			o.ModTime = t
		} else if m.mtime != unmeasured {
			o.ModTime = time.Unix(0, m.mtime)
		}
		o.ETag = tags[toff : toff+len(etag)]
		out = append(out, o)
		off += len(p)
		toff += len(etag)
	})
	*c = candidates{}
	return out, referenced
}
