package filefield

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Result says what a Commit or Rollback did. Failures are reported here,
// never returned as errors: the database change already happened, so a
// file that could not be deleted is for a retry or the orphan finder.
type Result struct {
	// Deleted lists the files deleted, main files before companions.
	Deleted []string `json:"deleted"`
	// Kept lists the files that stayed, each with its reason.
	Kept []Kept `json:"kept"`
	// Failed lists the files whose deletion failed; they may still be
	// there.
	Failed []Failure `json:"failed"`
}

// Kept is a file that was not deleted, and why.
type Kept struct {
	Path   string `json:"path"`   // the stored path
	Reason string `json:"reason"` // one of the Kept* reasons
}

// Failure is a file whose deletion failed.
type Failure = storage.Failure

func (r *Result) merge(o Result) {
	r.Deleted = append(r.Deleted, o.Deleted...)
	r.Kept = append(r.Kept, o.Kept...)
	r.Failed = append(r.Failed, o.Failed...)
}

// Change is a pending file change: a new file stored, an old file to drop,
// or both. Nothing is deleted until Commit or Rollback. Call Commit after
// the database transaction that records the change commits, and Rollback
// otherwise; deferring Rollback right after creating the change is safe,
// since Rollback after Commit does nothing.
//
// A change that an open [Scope] holds is finished by the scope, with its
// transaction: Commit or Rollback called on it before then deletes
// nothing, returns an empty Result and only records the wish (the first
// one counts, as outside a scope). If the scope rolls back, so does the
// change: the transaction did not record it, whatever was wished. If the
// scope commits, the change commits, unless a rollback was wished: then
// it keeps both files (as [KeptCommitUnknown]), since the row may hold
// either. So neither a deferred Rollback nor an early Commit inside
// RunInScope or WithTx can delete a file a row points at. (Integrations
// whose statement committed on its own use [Change.CommitEarly].)
//
// A change may be registered in several scopes: the caller's, and a
// savepoint's or another transaction's that wrote its path ([Field.Claim]
// leaves it claimable while a scope holds it). A scope that rolls back
// leaves it to another that still holds it; if that one then commits
// without registering it again (no retry wrote the path), both files
// stay, since the row may hold either. A scope that commits decides. A
// scope
// that is never ended finishes nothing: the files stay, for the orphan
// finder, and Options.PendingTimeout reports the change as abandoned.
//
// A Change is safe for concurrent use; Commit and Rollback take effect once.
type Change struct {
	// New is the stored path of the new file, "" for a Delete. Write it to
	// the row.
	New string
	// Old is the stored path the change makes stale, "" for a Save.
	Old string
	// Size is the new file's length in bytes.
	Size int64
	// ContentType is the new file's sniffed MIME type.
	ContentType string

	created bool // New was written by this change

	*changeState
}

// changeState is the part of a Change that its abandonment check reads:
// it must not refer to the Change, or the Change could never be
// collected.
type changeState struct {
	field   *Field
	newPath string // New and Old as made: the change acts on these, so
	oldPath string // editing the exported fields cannot redirect it
	mu      sync.Mutex
	scope   *Scope   // the first scope it was registered in
	scopes  []*Scope // every scope it was registered in; a live one finishes it
	// registered counts the additions to scopes, so that a reader of
	// scopes without the lock can tell that one came in meanwhile (see
	// heldElsewhere)
	registered uint64
	// finishing are the scopes whose end took it and finishes it (see
	// Scope.take); a Rollback that leaves it to another scope takes its
	// own away
	finishing []*Scope
	// deciding is held by a Rollback's end while it decides whether it
	// leaves c to another holder or finishes it (see rollbackDecide), so
	// that two ends cannot leave c to each other, and an end's mark goes
	// only once another holder was seen. Taken before any tree's lock.
	deciding sync.Mutex
	// undone holds the trees (transactions) in which a scope it was
	// registered in rolled back while another that holds it stayed
	// open; a later commit keeps both files unless a scope of that tree
	// registers it again (a retry that writes its path). A registration
	// in an unrelated tree (another transaction writing the path into a
	// row of its own) says nothing of this tree's row, so it does not
	// clear the record.
	undone []*tree
	// forgotten: reported abandoned while no scope held it, and dropped
	// from the claimable changes
	forgotten bool
	// owned: a scope owns it: it was made in one. A change no scope owns
	// is its maker's: a scope that took it in (Scope.Add, AddClaimed) and
	// rolls back gives it back rather than deleting its new file (see
	// Scope.Rollback).
	owned bool
	// reported: its PendingTimeout passed (see Field.abandoned)
	reported bool
	// asked is what Commit or Rollback asked first while an open scope
	// held the change, or pending
	asked  int
	refs   RefChecker  // asked at Commit as well as Options.Refs
	timer  *time.Timer // reports the change if it stays pending
	state  int         // pending, committed or rolledBack
	result Result
	done   chan struct{} // closed once result is set
}

const (
	pending = iota
	committed
	rolledBack
	unknown // the transaction's outcome is unknown: keep every file
)

// newChange makes a pending change, registers it in the scope ctx
// carries (if any) and with the field (see Claim), and arranges for it to
// be reported if it stays pending longer than Options.PendingTimeout.
func (f *Field) newChange(ctx context.Context, newPath, old string, st stored) (*Change, error) {
	c := &Change{New: newPath, Old: old, Size: st.size, ContentType: st.contentType, created: st.created,
		changeState: &changeState{field: f, newPath: newPath, oldPath: old}}
	if s := ScopeFrom(ctx); s != nil && s.add(c) != nil {
		// The scope ended while the upload was stored (another goroutine
		// of the transaction failed): no scope would finish the change,
		// and a Commit of it would delete the old file a row holds.
		c.finish(ctx, rolledBack, nil) // removes the new file
		return nil, ErrScopeEnded
	}
	f.pending.put(c)
	if f.opts.PendingTimeout > 0 {
		c.mu.Lock()
		c.timer = time.AfterFunc(f.opts.PendingTimeout, func() { f.abandoned(c) })
		c.mu.Unlock()
	}
	return c, nil
}

// abandoned reports a change still pending at its timeout: its files
// stay.
func (f *Field) abandoned(c *Change) {
	c.mu.Lock()
	pend := c.state == pending
	c.reported = pend
	c.mu.Unlock()
	if !pend {
		return
	}
	if !c.Held() {
		// Forgotten, so that a change no one finishes does not stay in
		// memory for good: Claim no longer finds it, and its Rollback
		// keeps the new file, which a row may have taken meanwhile.
		c.mu.Lock()
		c.forgotten = true
		c.mu.Unlock()
		f.pending.drop(c.newPath, c)
	} // else it stays claimable: a statement that writes its path later
	// still finishes it with the transaction of its scope
	p := c.newPath
	if p == "" {
		p = c.oldPath
	}
	f.emit(context.Background(), Event{Action: ActionAbandon, Path: p, Err: ErrAbandoned})
}

// Save stores a new file for a new record. The returned change's New is the
// stored path to write to the row.
func (f *Field) Save(ctx context.Context, up Upload) (*Change, error) {
	return f.replace(ctx, "", up)
}

// Replace stores a new file for a record whose row holds old ("" if it held
// none). old is validated first; if it is unsafe or outside the field's
// directory nothing is stored and the error wraps ErrUnsafePath. Commit
// deletes old; Rollback deletes the new file and keeps old.
func (f *Field) Replace(ctx context.Context, old string, up Upload) (*Change, error) {
	return f.replace(ctx, old, up)
}

func (f *Field) replace(ctx context.Context, old string, up Upload) (*Change, error) {
	if ScopeFrom(ctx).ended() {
		return nil, ErrScopeEnded
	}
	if old != "" {
		if err := f.CheckPath(old); err != nil {
			return nil, err
		}
	}
	// The paths the upload may take are reported by PendingPaths from
	// before its file can appear until its change is on the list.
	res := &reservation{set: f.pending}
	defer res.release()
	st, err := f.store(ctx, up, res)
	if err != nil {
		return nil, err
	}
	if st.created {
		f.emit(ctx, Event{Action: ActionStore, Path: st.path, Size: st.size})
	}
	return f.newChange(ctx, st.path, old, st)
}

// Delete records that the row holding old goes away. Nothing happens until
// Commit, which deletes old. old is validated first.
func (f *Field) Delete(ctx context.Context, old string) (*Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f.DeleteUnreferenced(ctx, old, nil)
}

// DeleteUnreferenced is Delete with a reference check of the change's
// own: at Commit, old is deleted only if refs, as well as Options.Refs,
// says no row references it; an error from either keeps it. The ORM
// integrations pass one that reads the committed rows of every column
// that holds the field's paths, so that a row a savepoint rolled back,
// or a copy of the path in another row, keeps the file. A nil refs is
// Delete.
func (f *Field) DeleteUnreferenced(ctx context.Context, old string, refs RefChecker) (*Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ScopeFrom(ctx).ended() {
		return nil, ErrScopeEnded
	}
	if err := f.CheckPath(old); err != nil {
		return nil, err
	}
	c, err := f.newChange(ctx, "", old, stored{})
	if err != nil {
		return nil, err
	}
	c.refs = refs
	return c, nil
}

// Commit finishes the change after the database commit: it deletes the old
// file (and its companions) unless it must be kept, and returns what it
// did. It is idempotent: later calls return the first result. Commit after
// Rollback does nothing and returns an empty Result. Cancellation of ctx does not stop the deletion: it is a
// few files, and stopping halfway would only leave orphans.
func (c *Change) Commit(ctx context.Context) Result {
	for {
		held, reg := c.heldByScope(committed)
		if held {
			return Result{}
		}
		if r, ok := c.finishAt(ctx, committed, nil, reg); ok {
			return r
		}
		// A scope registered c after the check: it holds c now.
	}
}

// CheckRefs makes the change ask refs too, after the commit and before it
// deletes its old file: an error or true keeps the file. Integrations that
// see the rows call it for each change a statement claims, so that a row
// that holds the old path again (a savepoint rolled back behind the
// scope's back, another row that copied the path) keeps it whatever the
// scope's bookkeeping says. Options.Refs is asked as well.
func (c *Change) CheckRefs(refs RefChecker) {
	if refs == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.refs; prev != nil {
		refs = either{prev, refs}
	}
	c.refs = refs
}

// either is a RefChecker that says a path is referenced if either says so.
type either [2]RefChecker

func (e either) IsReferenced(ctx context.Context, p string) (bool, error) {
	for _, r := range e {
		if used, err := r.IsReferenced(ctx, p); used || err != nil {
			return used, err
		}
	}
	return false, nil
}

// CommitEarly commits the change now, even while an open scope holds it:
// for integrations whose statement wrote the row and committed on its own
// (autocommit) inside the caller's scope, so that the scope's later
// rollback cannot delete the file that committed row points at.
// Application code calls Commit.
func (c *Change) CommitEarly(ctx context.Context) Result {
	c.mu.Lock()
	c.undone = nil // this statement wrote the path and committed
	c.mu.Unlock()
	return c.finish(ctx, committed, nil)
}

// Rollback undoes the change after the database rolled back: it deletes
// the new file (if this change created it) and keeps the old one. It is
// idempotent, and does nothing after Commit. Cancellation of ctx does not
// stop it, so a cancelled request still leaves no new file behind.
func (c *Change) Rollback(ctx context.Context) Result {
	for {
		held, reg := c.heldByScope(rolledBack)
		if held {
			return Result{}
		}
		if r, ok := c.finishAt(ctx, rolledBack, nil, reg); ok {
			return r
		}
		// A scope registered c after the check (a claim that
		// AddClaimed accepted): it holds c now, and its row may name the
		// new file.
	}
}

// heldByScope reports whether an open scope holds c, which it then
// finishes; if so it records the caller's wish, to, unless one was
// recorded before. If not, it returns the registration count at which
// it found c unheld, for finishAt.
func (c *Change) heldByScope(to int) (bool, uint64) {
	held, reg := c.heldElsewhere(nil)
	if !held {
		return false, reg
	}
	c.mu.Lock()
	if c.state != pending {
		c.mu.Unlock()
		return false, anyRegistration // the scope finished it meanwhile
	}
	if c.asked == pending {
		c.asked = to
	}
	c.mu.Unlock()
	// Read again once the wish is recorded: a Rollback that gave c back
	// (see afterRollback) read the wishes and took its mark away in one
	// step, so either it saw this one or c is seen unheld now, and the
	// caller finishes it.
	return c.heldElsewhere(nil)
}

// heldElsewhere reports whether a scope other than s will finish c: a
// live one it was registered in, or one whose end took it and is
// finishing it now. It also returns the count of c's registrations it
// read: a scope that registers c later changes it (see finishAt).
func (c *Change) heldElsewhere(s *Scope) (bool, uint64) {
	for {
		c.mu.Lock()
		scopes := slices.Clone(c.scopes)
		registered := c.registered
		c.mu.Unlock()
		// Scopes first (a tree's lock comes before a change's), then the
		// marks: an end marks c in the same step, under its tree's lock,
		// in which its scopes stop being live, so a scope seen ended was
		// marked before, and a child that committed meanwhile registered
		// c with its parent first, which shows in registered.
		for _, x := range scopes {
			if x != s && x.live() {
				return true, registered
			}
		}
		c.mu.Lock()
		again := c.registered != registered
		held := slices.ContainsFunc(c.finishing, func(f *Scope) bool { return f != s })
		c.mu.Unlock()
		if !again {
			return held, registered
		}
	}
}

// anyRegistration is the registration count of a finish that holds c
// by its end's take: one that comes later changes nothing.
const anyRegistration = ^uint64(0)

// finish moves the change to state once, and deals with its files. inUse
// holds paths that must not be deleted because other changes of a batch
// store them. The change's lock is not held while it deals with them: a
// callback (Options.Refs, OnEvent, a logger) may then use the change or
// its scopes. A concurrent finish for the same state waits for the first
// one's result.
func (c *Change) finish(ctx context.Context, to int, inUse map[string]bool) Result {
	r, _ := c.finishAt(ctx, to, inUse, anyRegistration)
	return r
}

// finishAt is finish for a caller that found, at registration count reg,
// that no other scope holds c (see heldElsewhere): if a scope registered
// c since (a claim accepted after the check, whose row may name the new
// file), it does nothing and returns false, and the caller decides again.
// That check and the change of state are one step under c's lock, which
// a registration takes too.
func (c *Change) finishAt(ctx context.Context, to int, inUse map[string]bool, reg uint64) (Result, bool) {
	c.mu.Lock()
	if c.state != pending {
		st, done := c.state, c.done
		c.mu.Unlock()
		if st != to {
			return Result{}, true
		}
		<-done
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.result, true
	}
	if reg != anyRegistration && c.registered != reg {
		c.mu.Unlock()
		return Result{}, false
	}
	if to == committed && (c.asked == rolledBack || c.undoneCounts()) {
		// Rolled back by hand inside a scope that committed, or by a
		// savepoint or an attempt that rolled back while this scope went
		// on: the row may hold the new path or the old one, so both stay.
		to = unknown
	}
	c.state = to
	c.done = make(chan struct{})
	c.field.pending.drop(c.newPath, c)
	if c.timer != nil {
		c.timer.Stop()
	}
	created, forgotten, refs := c.created, c.forgotten, c.refs
	c.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	f := c.field
	var r Result
	defer func() { // also when a callback panics: waiters get what was done
		c.mu.Lock()
		c.result = r
		close(c.done)
		c.mu.Unlock()
	}()
	switch to {
	case committed:
		if c.oldPath != "" {
			switch {
			case c.oldPath == c.newPath:
				f.keep(ctx, &r, c.oldPath, KeptSamePath, nil)
			case inUse[c.oldPath]:
				f.keep(ctx, &r, c.oldPath, KeptInUseByScope, nil)
			default:
				f.remove(ctx, &r, c.oldPath, true, refs)
			}
		}
	case rolledBack:
		switch {
		case c.newPath == "":
		case created && forgotten:
			f.keep(ctx, &r, c.newPath, KeptAbandoned, nil)
		case created:
			f.remove(ctx, &r, c.newPath, false, nil)
		default:
			f.keep(ctx, &r, c.newPath, KeptNotCreated, nil)
		}
	case unknown:
		for _, p := range []string{c.oldPath, c.newPath} {
			if p != "" {
				f.keep(ctx, &r, p, KeptCommitUnknown, nil)
			}
		}
	}
	return r, true
}

func (f *Field) keep(ctx context.Context, r *Result, p, reason string, err error) {
	r.Kept = append(r.Kept, Kept{Path: p, Reason: reason})
	f.emit(ctx, Event{Action: ActionKeep, Path: p, Reason: reason, Err: err})
}

// remove is the field's one deletion choke point; the deletion itself
// goes through storage.Delete. It deletes p and its companions unless p
// is unsafe, protected, kept by keep mode, or (for stale files, and for
// every content-named file) still referenced or of unknown reference
// status. A content-named file (HashNames) may be shared with other rows
// and with uploads whose rows have not committed, so it is deleted only
// if Options.Refs says no row uses it and it was last written more than
// Options.ReuseGrace ago; its size and time are checked again just
// before the deletion, so a reuse in between keeps it.
func (f *Field) remove(ctx context.Context, r *Result, p string, stale bool, extra RefChecker) {
	switch {
	case storage.ValidPath(p) != nil, stale && f.CheckPath(p) != nil:
		f.keep(ctx, r, p, KeptUnsafe, nil)
		return
	case f.protected(p):
		f.keep(ctx, r, p, KeptProtected, nil)
		return
	case stale && f.opts.Keep:
		f.keep(ctx, r, p, KeptKeepMode, nil)
		return
	}
	main := storage.Target{Path: p}
	if f.opts.HashNames {
		// No upload in this process reuses p until the deletion is done
		// (a reuse meanwhile stores its bytes under a name of its own).
		// The events wait until the lock goes: an OnEvent that finishes
		// another change of p (or of a path that shares its lock) would
		// wait on it. Options.Refs is asked under it (see there).
		outer := ctx
		var held *heldEvents
		ctx, held = f.holdEvents(ctx)
		unlock := f.locks.lock(p)
		defer func() {
			unlock()
			held.release(outer)
		}()
		var reason string
		var err error
		if main, reason, err = f.shared(ctx, p); reason != "" {
			f.keep(ctx, r, p, reason, err)
			return
		}
	}
	for _, refs := range []RefChecker{f.opts.Refs, extra} {
		if refs == nil || !(stale || f.opts.HashNames) {
			continue
		}
		used, err := refs.IsReferenced(ctx, p)
		switch {
		case err != nil:
			f.keep(ctx, r, p, KeptCheckFailed, err)
			return
		case used:
			f.keep(ctx, r, p, KeptReferenced, nil)
			return
		}
	}
	// The file first, then its companions, and those only if it went: a
	// file kept (changed, say) keeps its thumbnails.
	if f.delete(ctx, r, []storage.Target{main}) && f.opts.Companions != nil {
		f.delete(ctx, r, f.companions(ctx, r, p))
	}
}

// shared checks a content-named file before its deletion: without
// Options.Refs it cannot be vouched for; one gone is gone; one written or
// reused within ReuseGrace may be an upload's in flight. It returns the
// target to delete, with the size and time to check again just before,
// or why the file stays.
func (f *Field) shared(ctx context.Context, p string) (storage.Target, string, error) {
	if f.opts.Refs == nil {
		return storage.Target{}, KeptShared, nil
	}
	var now *storage.Entry
	err := storage.Restat(ctx, f.fs, []string{p}, func(_ int, e storage.Entry) error { now = &e; return nil })
	switch {
	case err != nil:
		return storage.Target{}, KeptCheckFailed, err
	case now == nil:
		return storage.Target{}, KeptGone, nil
	case f.reuseGrace >= 0 && time.Since(now.ModTime) < f.reuseGrace:
		return storage.Target{}, KeptRecentlyStored, nil
	}
	return storage.Target{Path: p, Size: now.Size, ModTime: now.ModTime, Check: true}, "", nil
}

// companions returns the companions of p to delete with it, keeping
// protected ones.
func (f *Field) companions(ctx context.Context, r *Result, p string) []storage.Target {
	var out []storage.Target
	for _, c := range f.opts.Companions(p) {
		switch {
		case c == p:
			continue
		case f.protected(c):
			f.keep(ctx, r, c, KeptProtected, nil)
			continue
		}
		out = append(out, storage.Target{Path: c})
	}
	return out
}

// delete deletes targets through storage.Delete, records the outcomes in
// r and reports them, and says whether every target went (or was gone).
func (f *Field) delete(ctx context.Context, r *Result, targets []storage.Target) (gone bool) {
	gone = true
	_ = storage.Delete(ctx, f.fs, targets, storage.DeleteOptions{
		Protected: f.opts.Protected,
		OnOutcome: func(o storage.Outcome) {
			switch {
			case o.Action == storage.ActionDelete:
				r.Deleted = append(r.Deleted, o.Path)
				f.emit(ctx, Event{Action: ActionDelete, Path: o.Path, Size: o.Size})
			case o.Action == storage.ActionKeep:
				gone = gone && o.Reason == storage.KeptGone
				f.keep(ctx, r, o.Path, o.Reason, o.Err)
			default:
				gone = false
				r.Failed = append(r.Failed, Failure{Path: o.Path, Error: o.Err.Error()})
				f.emit(ctx, Event{Action: ActionFail, Path: o.Path, Err: o.Err})
			}
		},
	})
	return gone
}
