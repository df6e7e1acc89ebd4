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
// integrations do),
// counts from then on as the latest.
//
// Scopes nest like savepoints. NewScope on a context that already carries
// a scope makes a child: its Commit hands its changes to the parent and
// deletes nothing; its Rollback rolls back its own changes at once. Only
// the outermost Commit deletes stale files. A parent that commits with a
// child still open commits the child's changes too, as a database commits
// the work of a savepoint never released.
//
// A Scope is safe for concurrent use. Commit and Rollback take effect
// once; after one, the other does nothing.
type Scope struct {
	parent *Scope

	mu       sync.Mutex
	changes  []*Change
	written  map[*Change]uint64 // the changes here, each with its latest write stamp (see addW)
	children []*Scope
	state    int
	result   Result
	// end says whether marks naming this scope as their finisher count
	// (see finishingNow); read without the lock, from under a change's.
	end atomic.Int32
	// endedBy is the scope whose end ended this one (itself, or a scope
	// above whose takeTree took it); nil while pending or once committed
	// into its parent.
	endedBy atomic.Pointer[Scope]
	// released: Commit was called on this child while a scope above it
	// was ending; that end's takeTree takes it, and its own Rollback
	// and Commit do nothing.
	released bool
	// marking are the scopes whose end (Scope.take) has marked this
	// scope's changes as theirs to finish (see mark and takeOver).
	marking []*Scope
	// marked (on an outermost scope) are the changes whose undone mark
	// names this tree: cleared when the tree rolls back whole, after
	// which none of its rows holds what it wrote.
	marked []*Change
}

// NewScope returns a context carrying a new scope, and the scope. If ctx
// carries a scope already, the new one is its child.
func NewScope(ctx context.Context) (context.Context, *Scope) {
	s := &Scope{parent: ScopeFrom(ctx)}
	if s.parent != nil {
		s.parent.mu.Lock()
		s.parent.children = append(s.parent.children, s)
		// An end under way that marked the parent takes this child too
		// (its takeTree reads the children again): it marks what comes in.
		s.marking = slices.Clone(s.parent.marking)
		s.parent.mu.Unlock()
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
	return s.addW(c, true, false)
}

// add registers c, made in s and owned by it, unless s has ended.
func (s *Scope) add(c *Change) error { return s.addW(c, true, true) }

// registrations numbers the registrations behind which a write is: the
// order in which paths were written.
var registrations atomic.Uint64

// addW registers c; write says whether a write of c's path is behind it
// (a new change, or a statement that wrote its path), not a child handing
// its changes over. A write stamps c, in s, with the next registration
// number: a scope tree commits its changes in the order of its own
// stamps, so that a path written again after a change made it stale (a
// replace of the upload, in the same transaction) is not deleted by it
// (see commitAll). A write of the same change in an unrelated scope does
// not reorder this one's.
func (s *Scope) addW(c *Change, write, own bool) error {
	var stamp uint64
	if write {
		stamp = registrations.Add(1)
	}
	return s.addStamped(c, write, own, stamp)
}

// addStamped registers c with its write stamp in s: a new one, or the
// one a committed child had for it. own says that s owns c from now on
// (see Scope.AddClaimed). It refuses when s or a scope s belongs to has
// ended (ErrScopeEnded: nothing would finish c as its transaction ends),
// and a change that rolled back (ErrRolledBack).
func (s *Scope) addStamped(c *Change, write, own bool, stamp uint64) error {
	if s.parent.ended() {
		return ErrScopeEnded
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != pending {
		return ErrScopeEnded
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == rolledBack {
		return ErrRolledBack
	}
	if s.written == nil {
		s.written = map[*Change]uint64{}
	}
	prev, had := s.written[c]
	s.written[c] = max(prev, stamp)
	if had {
		if write {
			c.mu.Lock()
			c.redone(s) // written again in s
			c.owned = c.owned || own
			c.mu.Unlock()
		}
		return nil
	}
	s.changes = append(s.changes, c)
	c.mu.Lock()
	s.markedIn(c) // s's end may have begun: it finishes c too
	if c.scope == nil {
		c.scope = s
	}
	if !slices.Contains(c.scopes, s) {
		c.scopes = append(c.scopes, s)
	}
	if write {
		c.redone(s) // a retry
	}
	c.owned = c.owned || own
	c.forgotten = false // a scope finishes it: claimed after all
	c.mu.Unlock()
	return nil
}

// redone clears the mark a rollback in s's tree left on c: s wrote its
// path again. c.mu is held.
func (c *Change) redone(s *Scope) {
	root := s.root()
	c.undone = slices.DeleteFunc(c.undone, func(r *Scope) bool { return r == root })
}

// root returns the outermost scope of s's tree.
func (s *Scope) root() *Scope {
	for s.parent != nil {
		s = s.parent
	}
	return s
}

// ended reports whether s, or a scope it belongs to, has ended.
func (s *Scope) ended() bool {
	for ; s != nil; s = s.parent {
		s.mu.Lock()
		st := s.state
		s.mu.Unlock()
		if st != pending {
			return true
		}
	}
	return false
}

// ancestorOf reports whether s is a parent, grandparent, ... of d.
func (s *Scope) ancestorOf(d *Scope) bool {
	if d == nil {
		return false
	}
	for p := d.parent; p != nil; p = p.parent {
		if p == s {
			return true
		}
	}
	return false
}

// undo records that s, which registered c, rolled back while another
// scope holds c; c stays claimable. The record is made whoever else is
// finishing c: it only makes a commit of s's tree keep both files, and
// an end of another tree under way may be a rollback that leaves c to
// s's tree (whose commit then deleted the old file a restored row names).
func (c *Change) undo(s *Scope) {
	root := s.root()
	c.mu.Lock()
	c.finishing = slices.DeleteFunc(c.finishing, func(f *Scope) bool { return f == s })
	added := !slices.Contains(c.undone, root)
	if added {
		c.undone = append(c.undone, root)
	}
	c.mu.Unlock()
	if added { // outside c.mu: scopes lock before their changes
		root.mu.Lock()
		root.marked = append(root.marked, c)
		root.mu.Unlock()
	}
}

// clearMarks takes the marks of s's tree off its changes: s, outermost,
// rolled back, so none of its rows holds a path it wrote, and its marks
// would only keep stale files for good.
func (s *Scope) clearMarks() {
	s.mu.Lock()
	marked := s.marked
	s.marked = nil
	s.mu.Unlock()
	for _, c := range marked {
		c.mu.Lock()
		c.undone = slices.DeleteFunc(c.undone, func(r *Scope) bool { return r == s })
		c.mu.Unlock()
	}
}

// open reports whether s will still finish the changes it holds: it and
// every scope it belongs to are pending, or committed as children (whose
// changes go up to their parents); the outermost is pending. Between a
// child's commit and its parent taking the changes, they are the
// parent's already.
//
// Each scope's state is read once, from s upwards: states only leave
// pending, so an ancestor seen pending was pending when s was read, and
// the answer held at that moment. (Reading s again, as a check of its
// whole chain, could see it committed as a child since, and call open a
// scope whose changes its open parent holds: a racing Change.Rollback
// then deleted the file of a change every scope committed.)
func (s *Scope) open() bool {
	for ; s != nil; s = s.parent {
		s.mu.Lock()
		st := s.state
		s.mu.Unlock()
		switch {
		case st == pending && s.parent == nil:
			return true
		case st == pending, st == committed && s.parent != nil:
			continue
		default:
			return false
		}
	}
	return false
}

// take ends s in state to and returns its changes and those of its
// children still open, which end with it.
func (s *Scope) take(to int) ([]*Change, map[*Change]uint64, bool) {
	// The changes s finishes (a child's Commit does not come here: see
	// commitChild) are marked first, in its whole subtree, before any
	// scope of it is seen as ended, so that a Commit or Rollback racing
	// the end only records a wish.
	marked := s.mark(s, nil)
	changes, stamps, ok := s.takeTree(to, s)
	if !ok {
		// Another end won (a Commit racing a Rollback, or the parent's
		// end): the marks of this one would say for good that s finishes
		// changes it never will.
		for _, c := range marked {
			c.mu.Lock()
			if i := slices.Index(c.finishing, s); i >= 0 {
				c.finishing = slices.Delete(c.finishing, i, i+1)
			}
			c.mu.Unlock()
		}
	}
	return changes, stamps, ok
}

// mark marks the changes of s and of its open children as being finished
// by finisher, and returns them appended to marked. A change marked by
// two ends with the same finisher (a Commit racing a Rollback) carries
// the mark twice, so that the one that loses takes its own away only.
func (s *Scope) mark(finisher *Scope, marked []*Change) []*Change {
	s.mu.Lock()
	if s.state != pending {
		s.mu.Unlock()
		return marked
	}
	// A change that comes into s from now on (a child's commitChild, or
	// addStamped) is marked too: this pass has left s by then.
	s.marking = append(s.marking, finisher)
	for _, c := range s.changes {
		c.mu.Lock()
		c.finishing = append(c.finishing, finisher)
		c.mu.Unlock()
		marked = append(marked, c)
	}
	children := slices.Clone(s.children)
	s.mu.Unlock()
	for _, c := range children {
		marked = c.mark(finisher, marked)
	}
	return marked
}

// Values of Scope.end.
const (
	endNone = iota // pending: an end of it may be marking (its marks count)
	endLive        // ended by its own end, which is finishing its changes
	endOver        // that end is done, or another end ended it (a child's
	// commit, an ancestor's end, or the other of a racing Commit and
	// Rollback): its marks count no more
)

// finishingNow reports whether a mark naming s as finisher still says
// that an end of s will finish the change: s's end is marking (s still
// pending) or finishing. A mark left by an end that lost its race (the
// scope was ended by another) counts no more, wherever it was copied.
func (s *Scope) finishingNow() bool { return s.end.Load() != endOver }

// markedIn gives c, coming into s, the marks of the ends under way that
// have marked s already (see mark), one per end, so that an end that
// loses takes away its own only. s.mu and c.mu are held.
func (s *Scope) markedIn(c *Change) {
	c.finishing = append(c.finishing, s.marking...)
}

// takeTree ends s and its open children in state to and returns their
// changes, in the order of their write stamps, and the stamps.
func (s *Scope) takeTree(to int, by *Scope) ([]*Change, map[*Change]uint64, bool) {
	s.mu.Lock()
	top := by == s
	if s.state != pending || top && s.released {
		s.mu.Unlock()
		return nil, nil, false
	}
	s.endedBy.Store(by)
	if top {
		s.end.Store(endLive)
	} else {
		s.end.Store(endOver) // ended by the end of a scope above
	}
	changes, children, written := s.changes, s.children, s.written
	s.state = to
	s.changes, s.children, s.written = nil, nil, nil
	s.mu.Unlock()
	if written == nil {
		written = map[*Change]uint64{}
	}
	for _, c := range children {
		more, stamps, ok := c.takeTree(to, by)
		if !ok {
			continue
		}
		for _, ch := range more {
			st, seen := written[ch]
			if !seen {
				changes = append(changes, ch) // a change may be in a child and in s
			}
			written[ch] = max(st, stamps[ch])
		}
	}
	// In the order of the latest writes of their paths in this tree.
	slices.SortStableFunc(changes, func(a, b *Change) int { return cmp.Compare(written[a], written[b]) })
	return changes, written, true
}

// Commit finishes the scope after its transaction committed. A child
// hands its changes to its parent and returns an empty Result. The
// outermost scope commits every change, in order: stale files are
// deleted, except paths another change of the scope stores. It is
// idempotent: later calls return the first result. Cancellation of ctx
// does not stop it (see Change.Commit).
func (s *Scope) Commit(ctx context.Context) Result {
	for s.parent != nil {
		out, busy := s.commitChild()
		switch out {
		case endedBefore:
			return s.endedResult(committed)
		case changeBusy:
			busy.mu.Lock() // wait for whoever is finishing it
			busy.mu.Unlock()
			continue
		}
		// Handed, or a scope above has ended: s, still open, is then in
		// the tree its end is taking (takeTree ends the open children
		// after their parent), which finishes s's changes with the
		// others, in the order of all their writes.
		return Result{}
	}
	changes, _, ok := s.take(committed)
	if !ok {
		return s.endedResult(committed)
	}
	defer s.end.Store(endOver)
	r := commitAll(ctx, changes)
	s.mu.Lock()
	s.result = r
	s.mu.Unlock()
	return r
}

// Outcomes of commitChild.
const (
	handed      = iota // s ended, its tree's changes are its parent's
	parentEnded        // a scope above has ended: its end takes s's tree
	endedBefore        // s had ended already
	changeBusy         // a change's lock was held: wait for it, try again
)

// commitChild ends s, a child, with its open children, and moves their
// changes into its parent in one step: under the parent's lock and those
// of s's whole open tree, taken top-down (the tree's order, which every
// other holder of two scope locks follows), and the locks of the changes.
// No moment then finds a change of s held by no scope (ended, and not
// yet its parent's), which a Change.Rollback would have read as abandoned
// and deleted the new file of a change every scope committed; a Save into
// s either lands before and moves, or comes after and is refused. A
// parent whose end is under way (its mark has passed it: see mark) marks
// the changes it takes over, as its end finishes them. If the parent, or
// a scope above it, has ended, it does nothing: s is then still open
// because that end's takeTree, which ends the open children after their
// parent, has not reached it yet, and takes s's changes with the rest of
// the tree, in the order of all their writes, having marked them first.
//
// A change's lock is only tried: a goroutine finishing the change holds
// it while it runs callbacks (Options.Refs, OnEvent) that may lock a
// scope of this tree. On a miss commitChild lets every lock go and
// returns changeBusy and the change, to be waited for before a retry.
func (s *Scope) commitChild() (int, *Change) {
	p := s.parent
	if p.parent.ended() {
		return s.release(), nil // checked before the locks: ended() locks upwards
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != pending {
		return s.release(), nil
	}
	var tree []*Scope
	defer func() {
		for _, x := range tree {
			x.mu.Unlock()
		}
	}()
	for queue := []*Scope{s}; len(queue) > 0; queue = queue[1:] {
		x := queue[0]
		x.mu.Lock()
		if x.state != pending {
			x.mu.Unlock()
			if x == s {
				return endedBefore, nil
			}
			continue
		}
		tree = append(tree, x)
		queue = append(queue, x.children...)
	}
	held := map[*Change]bool{}
	defer func() {
		for c := range held {
			c.mu.Unlock()
		}
	}()
	for _, x := range tree {
		for _, c := range x.changes {
			if held[c] {
				continue // in two scopes of the tree
			}
			if !c.mu.TryLock() {
				return changeBusy, c
			}
			held[c] = true
		}
	}
	if p.written == nil {
		p.written = map[*Change]uint64{}
	}
	ending := func(f *Scope) bool { return slices.Contains(tree, f) }
	for _, x := range tree {
		for _, c := range x.changes {
			// A scope of the tree whose own end lost to this one (a
			// Rollback racing this Commit) finishes nothing: its marks go.
			c.finishing = slices.DeleteFunc(c.finishing, ending)
			if c.state != rolledBack {
				p.takeOver(c, x.written[c])
			}
		}
		x.state = committed
		x.end.Store(endOver)
		x.changes, x.children, x.written = nil, nil, nil
	}
	return handed, nil
}

// release records that s, a child, committed while a scope above it was
// ending, so that a later Rollback or Commit of s leaves it to that end's
// takeTree. It returns parentEnded, or endedBefore if s has ended.
func (s *Scope) release() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != pending {
		return endedBefore
	}
	s.released = true
	return parentEnded
}

// takeOver makes c, a change of a child of s that committed, one of s's,
// with the child's write stamp, as addStamped(c, false, false, stamp)
// does, and marks it for the scopes whose end is finishing s already.
// s.mu and c.mu are held.
func (s *Scope) takeOver(c *Change, stamp uint64) {
	s.markedIn(c)
	prev, had := s.written[c]
	s.written[c] = max(prev, stamp)
	if had {
		return
	}
	s.changes = append(s.changes, c)
	if c.scope == nil {
		c.scope = s
	}
	if !slices.Contains(c.scopes, s) {
		c.scopes = append(c.scopes, s)
	}
	c.forgotten = false
}

// endedResult is what Commit or Rollback (to) returns once s has ended:
// the first result if s ended that way, else an empty one.
func (s *Scope) endedResult(to int) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	changes, _, ok := s.take(unknown)
	if !ok {
		return Result{}
	}
	defer s.end.Store(endOver)
	var r Result
	finishEach(len(changes), func(i int) { r.merge(changes[i].finish(ctx, unknown, nil)) })
	s.mu.Lock()
	s.result = r
	s.mu.Unlock()
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
	changes, _, ok := s.take(rolledBack)
	if !ok {
		return s.endedResult(rolledBack)
	}
	defer s.end.Store(endOver)
	var r Result
	finishEach(len(changes), func(j int) {
		i := len(changes) - 1 - j // newest first
		if c := changes[i]; c.heldElsewhere(s) {
			// Another scope finishes it: one that is ending now, or one
			// that registered it too and is still open (the caller's,
			// around a savepoint or an attempt that failed). That one may
			// still write its path (a retry) or not; unless it registers
			// the change again, a commit of it keeps both files.
			c.undo(s)
			if c.heldElsewhere(s) {
				return
			}
			// The other let go meanwhile (it rolled back too): no one
			// else finishes it.
		}
		switch changes[i].afterRollback(s) {
		case pending:
			// An upload made outside any scope, which a statement of
			// this transaction took in: its maker may write its path
			// again (a retry), so its file stays, pending.
			changes[i].field.keep(ctx, &r, changes[i].newPath, KeptGivenBack, nil)
		case unknown:
			// Its maker committed it meanwhile, from outside.
			r.merge(changes[i].finish(ctx, unknown, nil))
		default:
			r.merge(changes[i].finish(ctx, rolledBack, nil))
		}
	})
	if s.parent == nil {
		s.clearMarks()
	}
	s.mu.Lock()
	s.result = r
	s.mu.Unlock()
	return r
}

// commitAll commits changes in order, the order of the latest writes of
// their paths (takeTree). A change's stale file stays if a later change of the same
// scope stores that path again (delete, then re-create, or a change
// registered again when a statement wrote its path again), or if any of
// them stores it under a hash name, which other rows may share; a path
// stored earlier and then replaced is stale.
func commitAll(ctx context.Context, changes []*Change) Result {
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
	var r Result
	finishEach(len(changes), func(i int) { r.merge(changes[i].finish(ctx, committed, inUse[i])) })
	return r
}

// finishEach calls finish(0) to finish(n-1), each one even if an earlier
// one panicked (a callback did: Options.Refs, OnEvent, a logger's
// handler), so that no change is left held by a scope that has ended;
// then it raises the first panic again. A change whose finish panicked
// has finished: the files it had not dealt with yet stay.
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
