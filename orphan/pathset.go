package orphan

import (
	"hash/maphash"
	"math/bits"
	"slices"
)

// pathSet is a set of stored paths kept as 64-bit hashes: 8 bytes per
// path, plus one byte or so of index. A collision can only make an
// orphan look referenced, which keeps a file: the safe direction.
//
// The hashes are sorted and bucketed by their top bits, with an index of
// where each bucket starts: a lookup reads the index and then one or two
// cache lines, where a binary search over a million hashes misses the
// cache twenty times.
type pathSet struct {
	seed  maphash.Seed
	h     []uint64
	idx   []uint32 // bucket b is h[idx[b]:idx[b+1]]
	shift uint
}

// hashes collects the hashes of a set being built, in chunks that are
// never grown in place: adding a hash never copies the others.
type hashes struct {
	seed   maphash.Seed
	chunks [][]uint64
	n      int
}

const hashChunk = 1 << 13

func (c *hashes) add(p string) { c.addHash(maphash.String(c.seed, p)) }

func (c *hashes) addHash(h uint64) {
	n := len(c.chunks)
	if n == 0 || len(c.chunks[n-1]) == cap(c.chunks[n-1]) {
		c.chunks = append(c.chunks, make([]uint64, 0, hashChunk))
		n++
	}
	c.chunks[n-1] = append(c.chunks[n-1], h)
	c.n++
}

// newPathSet builds the set from hashes collected with the same seed,
// releasing their chunks as it goes. It sorts by one counting pass on the
// top bits (about four hashes per bucket), then sorts each small bucket
// and drops duplicates.
func newPathSet(seed maphash.Seed, parts ...*hashes) *pathSet {
	n := 0
	for _, p := range parts {
		n += p.n
	}
	s := &pathSet{seed: seed}
	b := max(1, bits.Len(uint(n/4)))
	s.shift = uint(64 - b)
	s.idx = make([]uint32, 1<<b+1)
	for _, p := range parts {
		for _, c := range p.chunks {
			for _, h := range c {
				s.idx[h>>s.shift+1]++
			}
		}
	}
	for i := 1; i < len(s.idx); i++ {
		s.idx[i] += s.idx[i-1]
	}
	s.h = make([]uint64, n)
	next := slices.Clone(s.idx[:len(s.idx)-1])
	for _, p := range parts {
		for i, c := range p.chunks {
			for _, h := range c {
				s.h[next[h>>s.shift]] = h
				next[h>>s.shift]++
			}
			p.chunks[i] = nil
		}
		*p = hashes{seed: p.seed}
	}
	// Sort each bucket and compact out duplicates, rewriting the index in
	// place: the write position never passes the read position.
	w := uint32(0)
	for bkt := 0; bkt+1 < len(s.idx); bkt++ {
		lo, hi := s.idx[bkt], s.idx[bkt+1]
		s.idx[bkt] = w
		bucket := s.h[lo:hi]
		slices.Sort(bucket)
		for i, h := range bucket {
			if i == 0 || h != s.h[w-1] {
				s.h[w] = h
				w++
			}
		}
	}
	s.idx[len(s.idx)-1] = w
	s.h = s.h[:w]
	return s
}

// hasHash reports whether h is in the set.
func (s *pathSet) hasHash(h uint64) bool {
	b := h >> s.shift
	for _, x := range s.h[s.idx[b]:s.idx[b+1]] {
		if x >= h {
			return x == h
		}
	}
	return false
}

// lookupGroup is how many lookups hasHashes overlaps.
const lookupGroup = 16

// hasHashes sets found[i] to whether hs[i] is in the set. A lookup misses
// the cache twice (the index, then the bucket) once the set outgrows it,
// and one lookup's misses wait on each other; so lookups go in groups, all
// the index loads of a group first, then all the first bucket loads, and
// the misses of a group overlap. On a million references this takes the
// lookups from about 270 ns each to a fraction of that.
func (s *pathSet) hasHashes(hs []uint64, found []bool) {
	var lo, hi [lookupGroup]uint32
	var first [lookupGroup]uint64
	for start := 0; start < len(hs); start += lookupGroup {
		g := hs[start:min(start+lookupGroup, len(hs))]
		for i, h := range g {
			b := h >> s.shift
			lo[i], hi[i] = s.idx[b], s.idx[b+1]
		}
		for i := range g {
			if lo[i] < hi[i] {
				first[i] = s.h[lo[i]]
			}
		}
		for i, h := range g {
			ok := false
			if lo[i] < hi[i] && first[i] >= h {
				ok = first[i] == h
			} else if lo[i] < hi[i] {
				for _, x := range s.h[lo[i]+1 : hi[i]] {
					if x >= h {
						ok = x == h
						break
					}
				}
			}
			found[start+i] = ok
		}
	}
}

func (s *pathSet) has(p string) bool { return s.hasHash(maphash.String(s.seed, p)) }

// hasBytes is has for a path held as bytes; maphash gives the same hash
// for a string and its bytes.
func (s *pathSet) hasBytes(p []byte) bool { return s.hasHash(maphash.Bytes(s.seed, p)) }

// len is the number of distinct hashes in the set.
func (s *pathSet) len() int { return len(s.h) }
