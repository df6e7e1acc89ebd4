package filefield

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrScopeEnded is returned by Save, Replace, Delete, Scope.Add and
// Scope.AddClaimed when the scope (the one their context carries, or the
// one they add to) or a scope it belongs to has already committed or
// rolled back: a change made or registered then would belong to no
// transaction. Nothing is stored or registered.
var ErrScopeEnded = errors.New("filefield: the scope has already ended")

// ErrRolledBack is returned by Scope.Add and Scope.AddClaimed for a change
// that has rolled back: its new file is gone, so no row may be written
// with its path. It is not registered.
var ErrRolledBack = errors.New("filefield: the change has rolled back")

// ErrNoScope is the error of an integration asked to write inside a
// transaction that no Scope covers: it cannot know when, or whether, that
// transaction commits, so it refuses rather than guess (gormfield,
// entfield, and pgxfield for a savepoint of a transaction begun outside
// it). Run the transaction with the integration's helper, or give its
// context a scope that ends with it.
var ErrNoScope = errors.New("filefield: a write inside a transaction no filefield scope covers")

// ErrCommitUnknown marks a commit error that leaves the transaction's
// outcome unknown: the connection failed while the commit was on its way,
// so the database may have committed or not. RunInScope then neither
// commits nor rolls back the scope's files: every one stays, kept as
// KeptCommitUnknown, for the orphan finder to settle once the rows say
// which are referenced. Deleting the new files could lose files that
// committed rows point at; deleting the old ones could lose files that
// rolled-back rows still point at.
var ErrCommitUnknown = errors.New("the commit's outcome is unknown")

// ErrAbandoned is the error of the event reported for a change still
// pending, neither committed nor rolled back, after Options.PendingTimeout.
// Its new file (if any) and its old file stay; the orphan finder collects
// whichever no row references.
var ErrAbandoned = errors.New("change neither committed nor rolled back")

// ActionAbandon is the action of the event reported for an abandoned
// change (see ErrAbandoned).
const ActionAbandon Action = "abandon"

type scopeKey struct{}

// Scope collects the file changes of one unit of work, usually one
// database transaction, and finishes them together: Commit after the
// transaction commits deletes the stale files; Rollback deletes the new
// ones and keeps the old. A Scope travels in a context: Save, Replace and
// Delete called with a context from NewScope register their change in it
// by themselves, so no change of the transaction can be forgotten.
//
// A path that a later change of a scope stores again (delete, then
// re-create) is not deleted by an earlier one, nor is a hash-named path
// any change of the scope stores. Nor is an upload's path that a statement
// writes again after a later change replaced it (a stale copy of a row
// saved in the same transaction, in the scope or a savepoint of it): its
// change, claimed again (Field.Claim and AddClaimed, as the ORM
// integrations do), counts from then on as the latest.
//
// Scopes nest like savepoints. NewScope on a context that already carries
// a scope makes a child: its Commit hands its changes to the parent and
// deletes nothing; its Rollback rolls back its own changes at once. Only
// the outermost Commit deletes stale files. A parent that commits with a
// child still open commits the child's changes too, as a database commits
// the work of a savepoint never released.
//
// A Scope is safe for concurrent use. Commit and Rollback take effect
// once; after one, the other does nothing. The scopes of one tree (an
// outermost scope and the children made from it) change state one at a
// time: a child's Commit or Rollback racing its parent's end happens
// wholly before that end, which then sees it, or wholly after, when it
// does nothing.
type Scope struct {
	parent *Scope
	tree   *tree // shared by every scope of the tree

	// Guarded by tree.mu.
	changes  []*Change
	written  map[*Change]uint64 // the changes here, each with its latest write stamp (see addW)
	children []*Scope
	state    int
	result   Result
}

// tree is what the scopes of one transaction (an outermost scope and its
// savepoints) share: one lock, under which each of them registers a
// change, hands its changes up or ends. Every such step sees the whole
// tree as the step before left it, so a change is at every moment held by
// a pending scope or marked by the end that took it (see take), never by
// neither: that moment is what a racing Change.Rollback or Commit would
// read as "no scope holds it" and act on.
//
// Lock order: a change's deciding lock (see rollbackDecide), then a
// tree's lock, then the change's own. No code holds two trees' locks, or
// takes a tree's lock while it holds a change's.
type tree struct {
	mu sync.Mutex
	// rolledBack: the outermost scope rolled back, so none of the tree's
	// rows holds a path it wrote, and its undone records count only on
	// the changes first registered in it (see undoneCounts). Set in the step that ends
	// the tree, so no record of it, made earlier or later, is missed.
	rolledBack atomic.Bool
}

// NewScope returns a context carrying a new scope, and the scope. If ctx
// carries a scope already, the new one is its child.
func NewScope(ctx context.Context) (context.Context, *Scope) {
	s := &Scope{parent: ScopeFrom(ctx)}
	if s.parent == nil {
		s.tree = &tree{}
	} else {
		s.tree = s.parent.tree
		s.tree.mu.Lock()
		s.parent.children = append(s.parent.children, s)
		s.tree.mu.Unlock()
	}
	return context.WithValue(ctx, scopeKey{}, s), s
}

// ScopeFrom returns the innermost scope ctx carries, or nil.
func ScopeFrom(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// WithoutScope returns ctx without its scope: changes made with it, and
// scopes made from it, belong to no scope ctx carries. Integrations use it
// for work that commits on its own (a statement in its own transaction)
// while the caller's scope is still open.
func WithoutScope(ctx context.Context) context.Context {
	if ScopeFrom(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, scopeKey{}, (*Scope)(nil))
}

// Add registers c, a change made with a context that does not carry s
// (an upload stored before the transaction began), and returns c and err
// unchanged, so that a call can be wrapped:
// ch, err := s.Add(field.Replace(ctx, old, up)). If s commits, c commits
// with it. If s rolls back, c, made in no scope, stays its maker's: it
// goes back to its field's list, pending, its file kept (KeptGivenBack),
// so that a retried transaction can add it again; the maker's Rollback
// (defer ch.Rollback(ctx)) removes it when the handler gives up. A change
// made in a scope rolls back with that scope. A nil c is ignored. If s,
// or a scope it belongs to, has ended, c is not registered and the error
// is ErrScopeEnded (unless err is set): finish c yourself, and write no
// row with it. A change that has rolled back is refused with
// ErrRolledBack.
func (s *Scope) Add(c *Change, err error) (*Change, error) {
	if c == nil {
		return c, err
	}
	if aerr := s.AddClaimed(c); aerr != nil && err == nil {
		err = aerr
	}
	return c, err
}

// AddClaimed registers c, a change Field.Claim or ClaimUnheld returned
// for a statement of s's transaction that wrote (or meant to write) its
// path. As with Add, s does not own c: if s rolls back while no other
// scope holds c and no scope owns it (its maker stored it with no
// scope), c goes back to its field's list, pending, its file kept
// (KeptGivenBack), since its maker may write the path again in a retry.
// It returns ErrScopeEnded if s, or a scope it belongs to, has ended, and
// ErrRolledBack for a change that has rolled back (its maker gave it up
// between the Claim and now: its file is gone); a nil c is ignored.
func (s *Scope) AddClaimed(c *Change) error {
	if c == nil {
		return nil
	}
	return s.addW(c, false)
}

// add registers c, made in s and owned by it, unless s has ended.
func (s *Scope) add(c *Change) error { return s.addW(c, true) }

// registrations numbers the registrations, each of which a write of a
// path is behind: the order in which paths were written.
var registrations atomic.Uint64

// addW registers c in s for a write of its path (a new change, or a
// statement that wrote its path), and stamps it, in s, with the next
// registration number: a scope tree commits its changes in the order of
// its own stamps, so that a path written again after a change made it
// stale (a replace of the upload, in the same transaction) is not deleted
// by it (see commitAll). A write of the same change in an unrelated scope
// does not reorder this one's. own says that s owns c from now on (see
// Scope.AddClaimed). It refuses when s or a scope s belongs to has ended
// (ErrScopeEnded: nothing would finish c as its transaction ends), and a
// change that rolled back (ErrRolledBack).
func (s *Scope) addW(c *Change, own bool) error {
	stamp := registrations.Add(1)
	t := s.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.liveLocked() {
		return ErrScopeEnded
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == rolledBack {
		return ErrRolledBack
	}
	s.hold(c, stamp)
	c.redone(s) // written again in s's tree (a retry)
	c.owned = c.owned || own
	return nil
}

// hold makes c one of s's changes, with the later of its write stamps
// in s and stamp. s.tree.mu and c.mu are held.
func (s *Scope) hold(c *Change, stamp uint64) {
	if s.written == nil {
		s.written = map[*Change]uint64{}
	}
	prev, had := s.written[c]
	s.written[c] = max(prev, stamp)
	if !had {
		s.changes = append(s.changes, c)
		c.register(s)
		c.forgotten = false // a scope finishes it: claimed after all
	}
}

// register records that s holds c. c.mu is held.
func (c *Change) register(s *Scope) {
	if c.scope == nil {
		c.scope = s
	}
	if !slices.Contains(c.scopes, s) {
		c.scopes = append(c.scopes, s)
		c.registered++
	}
}

// redone clears the record a rollback in s's tree left on c: s wrote its
// path again. c.mu is held.
func (c *Change) redone(s *Scope) {
	t := s.tree
	c.undone = slices.DeleteFunc(c.undone, func(u *tree) bool { return u == t })
}

// liveLocked reports whether s will still finish the changes it holds:
// it and every scope it belongs to are pending. s.tree.mu is held.
func (s *Scope) liveLocked() bool {
	for x := s; x != nil; x = x.parent {
		if x.state != pending {
			return false
		}
	}
	return true
}

// live is liveLocked for a caller that does not hold the tree's lock.
func (s *Scope) live() bool {
	s.tree.mu.Lock()
	defer s.tree.mu.Unlock()
	return s.liveLocked()
}

// ended reports whether s, or a scope it belongs to, has ended. A nil
// scope has not.
func (s *Scope) ended() bool { return s != nil && !s.live() }

// undo records that a scope of tree t, which registered c, rolled back
// while another scope holds c; c stays claimable. A later commit of c
// keeps both files while the record counts (see undoneCounts), unless a
// scope of t writes c's path again (see redone). The record is made
// whoever else finishes c: it can only make a commit keep both files.
// c.mu is held.
func (c *Change) undo(t *tree) {
	if !slices.Contains(c.undone, t) {
		c.undone = append(c.undone, t)
	}
}

// undoneCounts reports whether an undone record makes a commit of c keep
// both files: one of a tree whose outermost scope is still open or
// committed (its rows may hold either path), or of the tree c was first
// registered in even though it rolled back whole: the tree that made c,
// or, for an upload stored in no scope, the transaction that took it in
// first (Scope.Add). That tree's rollback restored the row that held c's
// old file, and a scope it left c to (a claimer) may have written the new
// path into a row of its own or into that same row: the orphan finder
// settles which. A record of a tree that claimed c later and rolled back
// whole counts no more: its rows hold no path it wrote (a claimer that
// wrote the path over the old one in some row is what the integrations'
// reference checks on claims are for). c.mu is held.
func (c *Change) undoneCounts() bool {
	return slices.ContainsFunc(c.undone, func(t *tree) bool {
		return !t.rolledBack.Load() || c.scope != nil && c.scope.tree == t
	})
}

// subtree returns s and the scopes below it that are pending, parents
// before their children. s.tree.mu is held.
func (s *Scope) subtree() []*Scope {
	var out []*Scope
	for queue := []*Scope{s}; len(queue) > 0; queue = queue[1:] {
		x := queue[0]
		if x.state != pending {
			continue
		}
		out = append(out, x)
		queue = append(queue, x.children...)
	}
	return out
}

// take ends s and its open children in state to, in one step under the
// tree's lock, and returns their changes for s's end to finish, in the
// order of their write stamps, each marked (Change.finishing) as s's end's
// before the lock goes: a racing Change.Rollback or Commit then sees the
// change as held and records a wish. It returns false if s, or a scope it
// belongs to, has ended (the other of a racing Commit and Rollback, or
// the end of a scope above, won).
//
// A Rollback's changes that a pending scope of the tree outside s's
// subtree holds too (the transaction, around a savepoint that rolled
// back) stay that scope's, with an undone record (see undo), made before
// any end of the tree can commit them; they are not returned.
func (s *Scope) take(to int) ([]*Change, bool) {
	t := s.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.liveLocked() {
		return nil, false
	}
	if s.parent == nil && to == rolledBack {
		t.rolledBack.Store(true)
	}
	sub := s.subtree()
	var changes []*Change
	written := map[*Change]uint64{}
	for _, x := range sub {
		x.state = to
		for _, c := range x.changes {
			st, seen := written[c]
			if !seen {
				changes = append(changes, c) // a change may be in two scopes of s's tree
			}
			written[c] = max(st, x.written[c])
		}
		x.changes, x.children, x.written = nil, nil, nil
	}
	// In the order of the latest writes of their paths in s's tree.
	slices.SortStableFunc(changes, func(a, b *Change) int { return cmp.Compare(written[a], written[b]) })
	kept := changes[:0]
	for _, c := range changes {
		c.mu.Lock()
		if to == rolledBack && c.state == pending && c.heldInTree(t) {
			c.undo(t)
			c.mu.Unlock()
			continue
		}
		c.finishing = append(c.finishing, s)
		c.mu.Unlock()
		kept = append(kept, c)
	}
	return kept, true
}

// heldInTree reports whether a pending scope of t still holds c. t.mu
// and c.mu are held.
func (c *Change) heldInTree(t *tree) bool {
	return slices.ContainsFunc(c.scopes, func(x *Scope) bool { return x.tree == t && x.liveLocked() })
}

// Commit finishes the scope after its transaction committed. A child
// hands its changes to its parent and returns an empty Result. The
// outermost scope commits every change, in order: stale files are
// deleted, except paths another change of the scope stores. It is
// idempotent: later calls return the first result. Cancellation of ctx
// does not stop it (see Change.Commit).
func (s *Scope) Commit(ctx context.Context) Result {
	if s.parent != nil {
		if !s.commitChild() {
			return s.endedResult(committed)
		}
		return Result{}
	}
	changes, ok := s.take(committed)
	if !ok {
		return s.endedResult(committed)
	}
	var r Result
	defer func() { s.setResult(r) }() // also when a callback panicked
	commitAll(ctx, changes, &r)
	return r
}

// commitChild ends s, a child, with its open children, and moves their
// changes, with their write stamps, into its parent, in one step under
// the tree's lock: no moment finds a change of s held by no scope. It
// returns false if s, or a scope it belongs to, has ended.
func (s *Scope) commitChild() bool {
	t := s.tree
	t.mu.Lock()
	defer t.mu.Unlock()
	if !s.liveLocked() {
		return false
	}
	p := s.parent
	for _, x := range s.subtree() {
		x.state = committed
		for _, c := range x.changes {
			c.mu.Lock()
			if c.state != rolledBack {
				p.hold(c, x.written[c])
			}
			c.mu.Unlock()
		}
		x.changes, x.children, x.written = nil, nil, nil
	}
	return true
}

// setResult records the result of s's own end.
func (s *Scope) setResult(r Result) {
	s.tree.mu.Lock()
	s.result = r
	s.tree.mu.Unlock()
}

// endedResult is what Commit or Rollback (to) returns once s has ended:
// the first result if s ended that way, else an empty one.
func (s *Scope) endedResult(to int) Result {
	s.tree.mu.Lock()
	defer s.tree.mu.Unlock()
	if s.state == to {
		return s.result
	}
	return Result{}
}

// End finishes the scope with its transaction's outcome: Commit if err is
// nil, keeping every file if err matches ErrCommitUnknown (see there),
// Rollback otherwise.
func (s *Scope) End(ctx context.Context, err error) Result {
	switch {
	case err == nil:
		return s.Commit(ctx)
	case errors.Is(err, ErrCommitUnknown):
		return s.settleUnknown(ctx)
	}
	return s.Rollback(ctx)
}

// settleUnknown ends the scope keeping every file (see ErrCommitUnknown).
func (s *Scope) settleUnknown(ctx context.Context) Result {
	changes, ok := s.take(unknown)
	if !ok {
		return Result{}
	}
	var r Result
	defer func() { s.setResult(r) }() // also when a callback panicked
	finishEach(len(changes), func(i int) { r.merge(changes[i].finish(ctx, unknown, nil)) })
	return r
}

// Rollback finishes the scope after its transaction rolled back (or, for
// a child, after a rollback to its savepoint): every change rolls back,
// newest first, deleting the new files it created and keeping the old.
// A change another open scope holds stays that scope's, and one that no
// scope owns (taken in with AddClaimed, its maker's) goes back to its
// field's list, pending, its file kept (KeptGivenBack),
// unless its maker asked for its Rollback meanwhile (it rolls back) or
// its Commit (both files stay, KeptCommitUnknown). It is idempotent and
// does nothing after Commit.
func (s *Scope) Rollback(ctx context.Context) Result {
	changes, ok := s.take(rolledBack)
	if !ok {
		return s.endedResult(rolledBack)
	}
	var r Result
	defer func() { s.setResult(r) }() // also when a callback panicked (finishEach raises it again)
	finishEach(len(changes), func(j int) {
		r.merge(s.rollbackOne(ctx, changes[len(changes)-1-j])) // newest first
	})
	return r
}

// rollbackOne finishes c, which s's Rollback took, or leaves it to the
// scope that holds it too.
func (s *Scope) rollbackOne(ctx context.Context, c *Change) Result {
	for {
		left, d, reg := s.rollbackDecide(c)
		var r Result
		var ok bool
		switch {
		case left:
			return r
		case d == decideAgain:
			continue // a scope registered it since: it may hold it
		case d == pending:
			// An upload made outside any scope, which a statement of
			// this transaction took in: its maker may write its path
			// again (a retry), so its file stays, pending.
			c.field.keep(context.WithoutCancel(ctx), &r, c.newPath, KeptGivenBack, nil)
			return r
		case d == unknown:
			// Its maker committed it meanwhile, from outside.
			r, ok = c.finishAt(ctx, unknown, nil, reg)
		default:
			r, ok = c.finishAt(ctx, rolledBack, nil, reg)
		}
		if ok {
			return r
		}
		// A scope registered it after the decision: decide again.
	}
}

// rollbackDecide decides, under c.deciding, what s's Rollback does with
// c: left, when another scope holds c (one of another transaction that
// registered it too and is still open, or whose end is finishing it, or
// a scope of this tree that registered it again since), to which s leaves
// it with an undone record for s's tree (that one may still write its
// path, a retry, or not; unless it registers the change again, a commit
// of it keeps both files); else afterRollback's decision, at registration
// count reg, for s to carry out. s's mark goes only when it leaves c,
// having seen the other holder, so c is never without one; and since two
// ends decide one at a time, the later of two that could leave c to each
// other sees the other's mark gone, and finishes c.
func (s *Scope) rollbackDecide(c *Change) (left bool, d int, reg uint64) {
	c.deciding.Lock()
	held, reg := c.heldElsewhere(s)
	if !held {
		d = c.afterRollback(s, reg)
		c.deciding.Unlock()
		return false, d, reg
	}
	c.mu.Lock()
	if i := slices.Index(c.finishing, s); i >= 0 {
		c.finishing = slices.Delete(c.finishing, i, i+1)
	}
	c.undo(s.tree)
	c.mu.Unlock()
	c.deciding.Unlock()
	return true, 0, reg
}

// commitAll commits changes, merging what each did into r, in the order
// of the latest writes of their paths (see take). A change's stale file
// stays if a later change of the same scope stores that path again (delete, then re-create, or a change
// registered again when a statement wrote its path again), or if any of
// them stores it under a hash name, which other rows may share; a path
// stored earlier and then replaced is stale.
func commitAll(ctx context.Context, changes []*Change, r *Result) {
	shared := map[string]bool{}
	for _, c := range changes {
		if c.newPath != "" && c.field.opts.HashNames {
			shared[c.newPath] = true
		}
	}
	inUse := make([]map[string]bool, len(changes))
	later := map[string]bool{}
	for i := len(changes) - 1; i >= 0; i-- {
		if changes[i].oldPath != "" && (later[changes[i].oldPath] || shared[changes[i].oldPath]) {
			inUse[i] = map[string]bool{changes[i].oldPath: true}
		}
		if changes[i].newPath != "" {
			later[changes[i].newPath] = true
		}
	}
	finishEach(len(changes), func(i int) { r.merge(changes[i].finish(ctx, committed, inUse[i])) })
}

// finishEach calls finish(0) to finish(n-1), each one even if an earlier
// one panicked (a callback did: Options.Refs, OnEvent, a logger's
// handler), so that no change is left held by a scope that has ended;
// then it raises the first panic again. A change whose finish panicked
// has finished: the files it had not dealt with yet stay, and its part of
// the scope's Result is missing (the rest is recorded: see the defers of
// Commit, Rollback and settleUnknown).
func finishEach(n int, finish func(i int)) {
	var first any
	panicked := false
	for i := range n {
		func() {
			defer func() {
				if p := recover(); p != nil && !panicked {
					first, panicked = p, true
				}
			}()
			finish(i)
		}()
	}
	if panicked {
		panic(first)
	}
}

// Scope returns the scope the change was first registered in, or nil.
func (c *Change) Scope() *Scope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scope
}
