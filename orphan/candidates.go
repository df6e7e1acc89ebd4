package orphan

import (
	"errors"
	"math"
	"time"
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

func (c *candidates) orphan(i int) Orphan {
	it := c.items[i]
	return Orphan{Path: string(c.path(i)), Size: it.size, ModTime: time.Unix(0, it.mtime)}
}
