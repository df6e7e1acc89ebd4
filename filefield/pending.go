package filefield

import (
	"slices"
	"sync"
)

// pendingSet holds, by new path, the changes that have not finished, so
// that an integration which sees a row take a path can finish the change
// with the row's transaction (see Field.Claim), even when the handler
// kept no reference to it. A change leaves it when it finishes or when
// it is reported as abandoned. Several changes may share a path (hash
// names).
type pendingSet struct {
	mu sync.Mutex
	m  map[string][]*Change
}

func (p *pendingSet) put(c *Change) {
	if c.newPath == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string][]*Change{}
	}
	p.m[c.newPath] = append(p.m[c.newPath], c)
}

// drop forgets c under path.
func (p *pendingSet) drop(path string, c *Change) {
	if path == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.filter(path, func(v *Change) bool { return v != c })
}

// filter keeps the entries of path whose change keep accepts.
func (p *pendingSet) filter(path string, keep func(*Change) bool) {
	ws := p.m[path]
	out := ws[:0]
	for _, c := range ws {
		if keep(c) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		delete(p.m, path)
	} else {
		p.m[path] = out
	}
}

// ClaimUnheld is Claim for a statement that failed, or whose outcome is
// unknown: it returns the oldest unfinished change that stored path and
// that no open scope holds, and takes it off the field's list. A change
// that an open scope holds stays that scope's to finish (with its own
// transaction, which may still write path) and stays claimable. It
// returns nil if there is none. After a failure, give the change back
// with Unclaim unless it is yours: the handler that made it may retry
// the statement with the same path.
func (f *Field) ClaimUnheld(path string) *Change {
	for _, c := range f.pending.list(path) {
		if c.Held() {
			continue
		}
		if f.pending.remove(path, c) && c.unfinished() {
			return c
		}
	}
	return nil
}

// Unclaim gives back a change taken with Claim or ClaimUnheld that the
// taker will not finish, because the statement that wrote (or meant to
// write) its path failed: the change goes back on the field's list,
// unfinished, and stays its owner's to commit, roll back, or claim again
// with a retry of the statement. Rolling it back instead would delete an
// upload the handler still holds, and a retry that writes its path would
// then commit a row pointing at no file. It does nothing to a change that
// finished, that an open scope holds, or that was reported abandoned
// meanwhile (see Options.PendingTimeout).
func (f *Field) Unclaim(c *Change) {
	if c == nil || c.field != f || c.newPath == "" || c.Held() {
		return
	}
	c.mu.Lock()
	back := c.state == pending && !c.forgotten
	c.mu.Unlock()
	if !back {
		return
	}
	f.pending.mu.Lock()
	defer f.pending.mu.Unlock()
	if slices.Contains(f.pending.m[c.newPath], c) {
		return
	}
	if f.pending.m == nil {
		f.pending.m = map[string][]*Change{}
	}
	f.pending.m[c.newPath] = append(f.pending.m[c.newPath], c)
}

// Held reports whether an open scope holds the change (or one that ended
// is finishing it): the scope then finishes it with its transaction, and
// the change's own Commit and Rollback only record a wish.
func (c *Change) Held() bool { return c.heldElsewhere(nil) }

func (c *Change) unfinished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == pending
}

// list returns the changes held under path, oldest first.
func (p *pendingSet) list(path string) []*Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.m[path])
}

// remove forgets c under path and reports whether it was there.
func (p *pendingSet) remove(path string, c *Change) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	found := false
	p.filter(path, func(v *Change) bool {
		if v == c {
			found = true
			return false
		}
		return true
	})
	return found
}

// Claim returns the oldest unfinished change that stored path, and takes
// it off the field's list: the caller now finishes it, usually by adding
// it to the scope of the transaction that writes path to a row
// (Scope.Add), or by committing it once a transaction that wrote path
// committed. A change that an open scope holds stays on the list, so that
// a retry of a statement that failed can claim it again; whichever scope
// finishes it first decides, since a change takes effect once. It
// returns nil if there is none.
//
// Integrations that see a row take a new path (a GORM callback after an
// insert or update) use it to finish the upload's change with the row's
// transaction, so that a handler needs no file code: the new file goes if
// the transaction rolls back.
func (f *Field) Claim(path string) *Change {
	for _, c := range f.pending.list(path) {
		switch {
		case !c.unfinished():
			f.pending.remove(path, c)
		case c.Held():
			// It stays claimable, for a retry of the statement: the scope
			// that holds it finishes it.
			return c
		case f.pending.remove(path, c):
			return c
		}
	}
	return nil
}
