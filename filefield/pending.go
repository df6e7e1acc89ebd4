package filefield

import (
	"context"
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
	// storing counts, by path, the uploads being stored under it whose
	// change is not on the list yet (see reservation)
	storing map[string]int
}

// reservation records the paths an upload may store its file under,
// from before the file can appear there until its change is on the list
// (or the upload failed): PendingPaths reports them meanwhile.
type reservation struct {
	set   *pendingSet
	paths []string
}

func (r *reservation) add(p string) {
	r.set.mu.Lock()
	defer r.set.mu.Unlock()
	if r.set.storing == nil {
		r.set.storing = map[string]int{}
	}
	r.set.storing[p]++
	r.paths = append(r.paths, p)
}

func (r *reservation) release() {
	r.set.mu.Lock()
	defer r.set.mu.Unlock()
	for _, p := range r.paths {
		if r.set.storing[p]--; r.set.storing[p] <= 0 {
			delete(r.set.storing, p)
		}
	}
	r.paths = nil
}

// PendingPaths calls fn, until it returns an error, with the stored path
// of every upload of the field whose change has not finished, and of
// every upload being stored, and returns fn's error or ctx's. Its
// signature is an orphan provider's: an orphan search in the same process
// that reads these before the database's references, as in
//
//	orphan.Combine(orphan.ProviderFunc(field.PendingPaths), sqlrefs.New(db, queries...))
//
// keeps every upload whose row has not committed yet, even with no grace
// period. (A change leaves the list when it finishes, after its
// transaction committed; a path that left it is then in the database.)
// The uploads of other processes are not here: the grace period protects
// those. Nor is a content name (Options.HashNames) that an upload takes
// over after the search read the references: with HashNames, give the
// search a grace period of at least ReuseGrace.
func (f *Field) PendingPaths(ctx context.Context, fn func(path string) error) error {
	for _, p := range f.pending.paths() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// paths returns, sorted, the paths of the changes on the list and the
// paths reserved by uploads being stored.
func (p *pendingSet) paths() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.m)+len(p.storing))
	for path := range p.m {
		out = append(out, path)
	}
	for path := range p.storing {
		if _, ok := p.m[path]; !ok {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
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

// ClaimUnheld is Claim for a statement that failed: it returns the oldest
// unfinished change that stored path and that no open scope holds. A
// change that an open scope holds stays that scope's to finish (with its
// own transaction, which may still write path). It returns nil if there
// is none.
func (f *Field) ClaimUnheld(path string) *Change {
	for _, c := range f.pending.list(path) {
		if c.unfinished() && !c.Held() {
			return c
		}
	}
	return nil
}

// Held reports whether an open scope holds the change (or one that ended
// is finishing it): the scope then finishes it with its transaction, and
// the change's own Commit and Rollback only record a wish. A finished
// change is held by none.
func (c *Change) Held() bool {
	if !c.unfinished() {
		return false
	}
	held, _ := c.heldElsewhere(nil)
	return held
}

func (c *Change) unfinished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == pending
}

// afterRollback decides what s, rolling back, does with c, which no other
// scope held at registration count reg (see heldElsewhere): rolledBack,
// or, for a change no scope owns (one s took in with Add or AddClaimed),
// pending when it gives c back to its field's list, its file kept, or
// unknown when c's maker asked for its Commit meanwhile (the row may hold
// either file). A maker's Rollback asked meanwhile rolls it back. One
// reported abandoned already is given back forgotten, off the list (see
// Options.PendingTimeout). It returns decideAgain if a scope registered
// c since reg.
func (c *Change) afterRollback(s *Scope, reg uint64) int {
	// Which scopes are open is read first: a tree's lock comes before a
	// change's.
	c.mu.Lock()
	scopes := slices.Clone(c.scopes)
	c.mu.Unlock()
	closed := map[*Scope]bool{s: true}
	for _, sc := range scopes {
		if !sc.live() {
			closed[sc] = true
		}
	}
	c.mu.Lock()
	switch {
	case c.state == pending && c.registered != reg:
		c.mu.Unlock()
		return decideAgain
	case c.owned || c.state != pending || c.asked == rolledBack:
		c.mu.Unlock()
		return rolledBack
	case c.asked == committed:
		c.mu.Unlock()
		return unknown
	}
	c.scopes = slices.DeleteFunc(c.scopes, func(sc *Scope) bool { return closed[sc] })
	if len(c.scopes) == 0 {
		c.scope = nil
	}
	c.finishing = slices.DeleteFunc(c.finishing, func(f *Scope) bool { return f == s })
	// One reported abandoned already does not stay on the list, or it
	// would stay there for good: forgotten, it keeps its file at a
	// Rollback.
	c.forgotten = c.forgotten || c.reported
	forgotten := c.forgotten
	c.mu.Unlock()
	if forgotten {
		c.field.pending.drop(c.newPath, c)
	} else {
		c.field.pending.putOnce(c)
	}
	return pending
}

// decideAgain is afterRollback's answer when a scope registered the
// change after the caller found it unheld.
const decideAgain = -1

// putOnce puts c on the list unless it is there.
func (p *pendingSet) putOnce(c *Change) {
	p.mu.Lock()
	present := slices.Contains(p.m[c.newPath], c)
	p.mu.Unlock()
	if !present {
		p.put(c)
	}
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

// Claim returns an unfinished change that stored path, for the caller to
// finish, usually by adding it to the scope of the transaction that
// writes path to a row (Scope.AddClaimed), or by committing it once a
// transaction that wrote path committed: the oldest that no open scope
// holds, else the oldest that one holds. A change stays on the field's
// list until it finishes, so that a retry of a statement that failed, or
// another statement that writes its path (a double submit), can claim it
// again; whichever scope finishes it first decides, since a change takes
// effect once. It returns nil if there is none.
//
// Integrations that see a row take a new path (a GORM callback after an
// insert or update) use it to finish the upload's change with the row's
// transaction, so that a handler needs no file code.
func (f *Field) Claim(path string) *Change {
	var held *Change
	for _, c := range f.pending.list(path) {
		switch {
		case !c.unfinished():
			f.pending.remove(path, c)
		case !c.Held():
			return c
		case held == nil:
			// It stays claimable, for a retry of the statement, or
			// another statement that writes its path: the scope that
			// holds it finishes it, or the claimer's.
			held = c
		}
	}
	return held
}
