package orphan

import (
	"errors"
	"math"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// candidates holds the files Find may report as orphans while references
// load: their paths in one byte arena and 24 pointer-free bytes each, so
// a million candidates cost about 24 MB plus their path bytes and nothing
// for the garbage collector to scan (O11). Orphan values, with their
// strings, are made only for the files that turn out to be orphans.
type candidates struct {
	paths []byte
	items []candidate
}

type candidate struct {
	off, n uint32 // the path is paths[off:off+n]
	size   int64
	mtime  int64 // UnixNano
}

// errTooManyCandidates: more than 4 GiB of candidate paths in one plan
// (about a hundred million files); narrow Options.Dirs.
var errTooManyCandidates = errors.New("orphan: more than 4 GiB of candidate paths in one plan; narrow Options.Dirs")

func (c *candidates) add(p string, size int64, mtime time.Time) error {
	if uint64(len(c.paths))+uint64(len(p)) > math.MaxUint32 {
		return errTooManyCandidates
	}
	c.items = append(c.items, candidate{off: uint32(len(c.paths)), n: uint32(len(p)), size: size, mtime: mtime.UnixNano()})
	c.paths = append(c.paths, p...)
	return nil
}

func (c *candidates) path(i int) []byte {
	it := c.items[i]
	return c.paths[it.off : it.off+it.n]
}

// orphans splits the candidates: it returns the unreferenced ones as
// Orphan values, in a slice of exactly their number with all their paths
// in one string (a large plan costs a few allocations, not one per file),
// and the count of the referenced ones.
func (c *candidates) orphans(refs *refSet) (out []Orphan, referenced storage.Count) {
	used := make([]uint64, (len(c.items)+63)/64) // one bit per candidate
	n, bytes := 0, 0
	for i := range c.items {
		if refs.hasBytes(c.path(i)) {
			used[i/64] |= 1 << (i % 64)
			referenced.Add(c.items[i].size)
		} else {
			n++
			bytes += int(c.items[i].n)
		}
	}
	isUsed := func(i int) bool { return used[i/64]&(1<<(i%64)) != 0 }
	buf := make([]byte, 0, bytes)
	for i := range c.items {
		if !isUsed(i) {
			buf = append(buf, c.path(i)...)
		}
	}
	all := string(buf)
	out = make([]Orphan, 0, n)
	off := 0
	for i := range c.items {
		it := c.items[i]
		if isUsed(i) {
			continue
		}
		out = append(out, Orphan{Path: all[off : off+int(it.n)], Size: it.size, ModTime: time.Unix(0, it.mtime)})
		off += int(it.n)
	}
	return out, referenced
}
