package filefield

import (
	"hash/maphash"
	"sync"
)

// pathLocks keeps apart, within this process, the deletion of a
// content-named file and its reuse by an upload of the same bytes:
// without it a reuse could touch the file just after the deletion's last
// check and just before the unlink, and its row would commit pointing at
// nothing. A deletion holds a path's lock exclusively; uploads share it,
// so identical uploads still meet on one file. Each Field has its own
// locks, and paths share 256 of them by hash: a collision only makes an
// upload store its bytes under a name of its own.
type pathLocks struct {
	seed maphash.Seed
	mu   [256]sync.RWMutex
}

func newPathLocks() *pathLocks { return &pathLocks{seed: maphash.MakeSeed()} }

func (l *pathLocks) of(p string) *sync.RWMutex {
	return &l.mu[maphash.String(l.seed, p)%uint64(len(l.mu))]
}

// lock takes p's lock for a deletion and returns its unlock.
func (l *pathLocks) lock(p string) func() {
	m := l.of(p)
	m.Lock()
	return m.Unlock
}

// share takes p's lock for an upload, unless a deletion holds it, and
// returns its unlock, or nil.
func (l *pathLocks) share(p string) func() {
	m := l.of(p)
	if !m.TryRLock() {
		return nil
	}
	return m.RUnlock
}
