package filefield

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// Red-team tests of the per-change decision (rollbackDecide under
// c.deciding, finishAt's registration check), the wishes of
// Change.Commit and Rollback, and the events HashNames holds while the
// path lock is taken (session 15). Steps are the code's own critical
// sections, run one at a time in an order that goroutines can produce;
// the helpers rttSetup, rttFinishOwn, rttEndRollback and
// rttLinearizable are redteam_tree_s15_test.go's.

// rtdEvents collects a field's events.
type rtdEvents struct {
	mu sync.Mutex
	ev []Event
}

func (r *rtdEvents) add(e Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }

func (r *rtdEvents) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ev)
}

func (r *rtdEvents) reset() { r.mu.Lock(); r.ev = nil; r.mu.Unlock() }

// Found by a review, and fixed (a field buffers only its own events).
// With HashNames, remove collects the events of its step in a
// buffer carried by the context (holdEvents) and hands that context to
// Options.Refs. Options.OnEvent's doc says Refs "may use the field, its
// scopes and other changes". A Refs that finishes a change of ANOTHER
// field with the context it was given (here: it commits a pending Replace
// of field "docs") has that field's events caught in the buffer of field
// "pics": they are reported later through pics' emit, so pics' OnEvent
// and logger get docs' deletion under Field "pics", and docs' OnEvent and
// logger never hear of a file docs deleted. The Result of docs' change
// says the file was deleted; its events say nothing, or the wrong field.
//
// Interleaving (one goroutine): pics Commit → remove(p) with held ctx →
// Refs(ctx, p) → docsChange.Commit(ctx) → docs.remove → docs.emit(ctx)
// finds pics' buffer → appended there → pics releases its buffer through
// pics.emit. Expected: docs' OnEvent sees ActionDelete of docs' old file
// with Field "docs". Actual: pics' OnEvent sees it, as Field "pics".
func TestRTDecideHashRefsOtherFieldEventsMisrouted(t *testing.T) {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	var evPics, evDocs rtdEvents
	docs := New("docs", fsys, Options{Dir: "docs", PendingTimeout: -1, OnEvent: evDocs.add})
	docOld, err := docs.Save(ctx, ccPNG("docold"))
	if err != nil {
		t.Fatal(err)
	}
	docOld.Commit(ctx)
	docChange, err := docs.Replace(ctx, docOld.New, ccPNG("docnew"))
	if err != nil {
		t.Fatal(err)
	}
	var pendingDoc atomic.Pointer[Change]
	pics := New("pics", fsys, Options{Dir: "pics", PendingTimeout: -1, HashNames: true, ReuseGrace: -1,
		OnEvent: evPics.add,
		Refs: RefCheckerFunc(func(rctx context.Context, _ string) (bool, error) {
			if c := pendingDoc.Swap(nil); c != nil {
				c.Commit(rctx) // another field's change, committed as its transaction did
			}
			return false, nil
		})})
	shared, err := pics.Save(ctx, ccPNG("shared"))
	if err != nil {
		t.Fatal(err)
	}
	shared.Commit(ctx)
	del, err := pics.Delete(ctx, shared.New)
	if err != nil {
		t.Fatal(err)
	}
	evPics.reset()
	evDocs.reset()
	pendingDoc.Store(docChange)
	del.Commit(ctx)

	if ccExists(fsys, docOld.New) {
		t.Fatal("setup: docs' old file should be deleted by its change's Commit")
	}
	if r := docChange.Commit(ctx); !slices.Contains(r.Deleted, docOld.New) {
		t.Fatalf("setup: docs' Result should list %s deleted: %+v", docOld.New, r)
	}
	sawDocs := slices.ContainsFunc(evDocs.all(), func(e Event) bool {
		return e.Action == ActionDelete && e.Path == docOld.New && e.Field == "docs"
	})
	if !sawDocs {
		t.Errorf("docs' OnEvent never saw the deletion of its own file %s (docs events: %+v)", docOld.New, evDocs.all())
	}
	for _, e := range evPics.all() {
		if e.Path == docOld.New {
			t.Errorf("pics' OnEvent got docs' event, as field %q: %+v", e.Field, e)
		}
	}
}

// rtdHandler is a slog.Handler that, like an asynchronous handler that
// selects on ctx.Done(), drops a record whose context is done, and
// remembers each record with whether its context was done.
type rtdHandler struct {
	mu   *sync.Mutex
	recs *[]rtdRecord
}

type rtdRecord struct {
	msg, path, reason string
	cancelled         bool
}

func (h rtdHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h rtdHandler) Handle(ctx context.Context, r slog.Record) error {
	rec := rtdRecord{msg: r.Message, cancelled: ctx.Err() != nil}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "path":
			rec.path = a.Value.String()
		case "reason":
			rec.reason = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, rec)
	h.mu.Unlock()
	return ctx.Err()
}

func (h rtdHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h rtdHandler) WithGroup(string) slog.Handler      { return h }

// Found by a review (low; older than the redesign), and fixed: the
// give-back is reported under context.WithoutCancel. Scope.Rollback ignores the
// cancellation of its context (doc: a cancelled request still leaves no
// new file behind), and finishAt reports every event of a finish under
// context.WithoutCancel. The give-back's event (KeptGivenBack, emitted by
// rollbackOne itself) is reported under the caller's context as is: a
// RunInScope whose request was cancelled rolls back with a cancelled
// context, and the logger's handler gets that one. A handler that honours
// ctx (an asynchronous one selecting on ctx.Done()) drops the record of
// the one file the Rollback deliberately left behind, while the records of
// the same Rollback's deletions, under WithoutCancel, go through.
func TestRTDecideGiveBackEventGetsCancelledCtx(t *testing.T) {
	var mu sync.Mutex
	var recs []rtdRecord
	logger := slog.New(rtdHandler{mu: &mu, recs: &recs})
	ctx, fsys, f, old := rttSetup(t, Options{Logger: logger})
	o2, err := f.Save(ctx, ccPNG("old2"))
	if err != nil {
		t.Fatal(err)
	}
	o2.Commit(ctx)
	given, err := f.Replace(ctx, old, ccPNG("given")) // its maker's: no scope
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	sctx, s := NewScope(cctx)
	owned, err := f.Replace(sctx, o2.New, ccPNG("owned"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddClaimed(given); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	recs = nil
	mu.Unlock()
	cancel() // the request went away: the transaction rolled back
	r := s.Rollback(cctx)

	if !ccExists(fsys, given.New) || ccExists(fsys, owned.New) {
		t.Fatalf("setup: the given-back file stays, the owned one goes: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	var sawDelete bool
	for _, rec := range recs {
		if rec.path == owned.New && !rec.cancelled {
			sawDelete = true
		}
		if rec.cancelled {
			t.Errorf("record %q %s (reason %q) reached the handler with a cancelled context, "+
				"unlike the same Rollback's other records (finishAt uses WithoutCancel)", rec.msg, rec.path, rec.reason)
		}
	}
	if !sawDelete {
		t.Errorf("the deletion of the owned change's new file was not logged: %+v", recs)
	}
}

// Guard (events): with HashNames, a Refs that commits another change of
// the same field (a path under another of the 256 locks) and then panics:
// the other change's events, held in the buffer, are reported once,
// before the panic comes out of Commit; the change whose Refs panicked is
// finished (later calls return at once) and its file stays.
func TestRTDecideHashRefsPanicReleasesHeldEventsOnce(t *testing.T) {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	var ev rtdEvents
	var other atomic.Pointer[Change]
	var boom atomic.Pointer[string] // the path whose check panics
	f := New("pics", fsys, Options{Dir: "pics", PendingTimeout: -1, HashNames: true, ReuseGrace: -1,
		OnEvent: ev.add,
		Refs: RefCheckerFunc(func(rctx context.Context, p string) (bool, error) {
			if b := boom.Load(); b == nil || *b != p {
				return false, nil
			}
			if c := other.Swap(nil); c != nil {
				c.Commit(rctx)
			}
			boom.Store(nil)
			panic("refs")
		})})
	a, err := f.Save(ctx, ccPNG("a"))
	if err != nil {
		t.Fatal(err)
	}
	a.Commit(ctx)
	b, err := f.Save(ctx, ccPNG("b"))
	if err != nil {
		t.Fatal(err)
	}
	b.Commit(ctx)
	if f.locks.of(a.New) == f.locks.of(b.New) {
		t.Skip("both paths share one of the 256 locks: the Refs would wait on itself (documented)")
	}
	da, err := f.Delete(ctx, a.New)
	if err != nil {
		t.Fatal(err)
	}
	db, err := f.Delete(ctx, b.New)
	if err != nil {
		t.Fatal(err)
	}
	ev.reset()
	other.Store(db)
	boom.Store(&a.New)
	if p := rttRecover(func() { da.Commit(ctx) }); p == nil {
		t.Fatal("the Refs panic should come out of Commit")
	}
	if !ccExists(fsys, a.New) {
		t.Error("the file whose Refs check panicked was deleted")
	}
	if ccExists(fsys, b.New) {
		t.Error("the other change's stale file should be gone")
	}
	n := 0
	for _, e := range ev.all() {
		if e.Path == b.New && e.Action == ActionDelete {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the other change's deletion was reported %d times (want 1): %+v", n, ev.all())
	}
	rttWithin(t, time.Second, "later calls on the change whose Refs panicked", func() {
		da.Commit(ctx)
		da.Rollback(ctx)
	})
}

// Guard (attack 1): a savepoint's Commit into a parent that already holds
// the change registers nothing (registered does not move), but that
// parent is live, and so seen as a holder, by any decision made before or
// after the hand-up: transaction B's Rollback leaves the change to A
// either way, and A's Rollback then rolls it back.
func TestRTDecideCommitChildIntoHolderSeenLive(t *testing.T) {
	for _, decideFirst := range []bool{false, true} {
		ctx, fsys, f, old := rttSetup(t, Options{})
		bctx, rb := NewScope(ctx)
		c, err := f.Replace(bctx, old, ccPNG("new")) // owned by B
		if err != nil {
			t.Fatal(err)
		}
		actx, ra := NewScope(ctx)
		_, sa := NewScope(actx)
		if ra.AddClaimed(c) != nil || sa.AddClaimed(c) != nil {
			t.Fatal("AddClaimed")
		}
		if ch, ok := rb.take(rolledBack); !ok || len(ch) != 1 {
			t.Fatalf("take: %v %v", ch, ok)
		}
		var left bool
		if decideFirst {
			left, _, _ = rb.rollbackDecide(c)
		}
		c.mu.Lock()
		before := c.registered
		c.mu.Unlock()
		if !sa.commitChild() {
			t.Fatal("commitChild")
		}
		c.mu.Lock()
		after := c.registered
		c.mu.Unlock()
		if after != before {
			t.Logf("commitChild registered the parent again (%d → %d)", before, after)
		}
		if !decideFirst {
			left, _, _ = rb.rollbackDecide(c)
		}
		if !left {
			t.Fatalf("decideFirst=%v: B's end must leave the change to A's root, which holds it live", decideFirst)
		}
		rttEndRollback(rb, Result{})
		ra.Rollback(ctx)
		if !ccExists(fsys, old) || ccExists(fsys, c.New) {
			t.Errorf("decideFirst=%v: both transactions rolled back: old must stay (%v), new go (%v)",
				decideFirst, ccExists(fsys, old), ccExists(fsys, c.New))
		}
	}
}

// Guard (attack 3): Change.Commit's wish against a give-back, at both
// places the wish can land: heldByScope's steps (first check, wish,
// second check) around a savepoint's whole Rollback. Wish after the
// give-back: the second check finds no holder, and the maker's Commit
// finishes it (serially: Rollback, then Commit). Wish before: the
// give-back reads it and keeps both files as unknown, and the second check
// sees the end's mark (serially: Commit, then Rollback). Never a pending
// change with a wish and no holder.
func TestRTDecideWishAroundGiveBack(t *testing.T) {
	for _, wishFirst := range []bool{false, true} {
		ctx, fsys, f, old := rttSetup(t, Options{})
		actx, ra := NewScope(ctx)
		_, s := NewScope(actx)
		c, err := f.Replace(ctx, old, ccPNG("new")) // the maker's
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddClaimed(c); err != nil {
			t.Fatal(err)
		}
		// Change.Commit, goroutine 1: the first check.
		if held, _ := c.heldElsewhere(nil); !held {
			t.Fatal("s holds c")
		}
		wish := func() {
			c.mu.Lock()
			if c.state == pending && c.asked == pending {
				c.asked = committed
			}
			c.mu.Unlock()
		}
		if wishFirst {
			wish()
		}
		s.Rollback(ctx) // goroutine 2
		if !wishFirst {
			wish()
		}
		held, reg := c.heldElsewhere(nil) // the second check
		switch {
		case held:
			// Left to the holder, which read the wish.
		default:
			if _, ok := c.finishAt(ctx, committed, nil, reg); !ok {
				t.Fatalf("wishFirst=%v: no registration came in", wishFirst)
			}
		}
		ra.Commit(ctx)
		c.mu.Lock()
		st := c.state
		c.mu.Unlock()
		switch {
		case st == pending:
			t.Errorf("wishFirst=%v: the change stays pending with its wish and no holder (held=%v)", wishFirst, held)
		case wishFirst && (st != unknown || !ccExists(fsys, old) || !ccExists(fsys, c.New)):
			t.Errorf("wishFirst=%v: the give-back read the wish: both files stay (state %d)", wishFirst, st)
		case !wishFirst && (held || st != committed || ccExists(fsys, old) || !ccExists(fsys, c.New)):
			t.Errorf("wishFirst=%v: given back first, the maker's Commit commits it (held=%v, state %d)", wishFirst, held, st)
		}
	}
}

// Guard (attack 2): A's end decides while B's scope is still live and
// leaves the change to it; Change.Held in the window sees B; B's take
// then marks it, and B's end, deciding next, finds A's mark gone and
// finishes the change. The same with B's take before A's decision. No
// end leaves it to the other, and no moment shows it unheld and pending.
func TestRTDecideLiveHolderThenItsEnd(t *testing.T) {
	for _, takeFirst := range []bool{false, true} {
		ctx, fsys, f, old := rttSetup(t, Options{})
		actx, ra := NewScope(ctx)
		_, rb := NewScope(ctx)
		c, err := f.Replace(actx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		if err := rb.AddClaimed(c); err != nil {
			t.Fatal(err)
		}
		if ch, ok := ra.take(rolledBack); !ok || len(ch) != 1 {
			t.Fatal("ra take")
		}
		takeB := func() {
			if ch, ok := rb.take(rolledBack); !ok || len(ch) != 1 {
				t.Fatal("rb take")
			}
		}
		if takeFirst {
			takeB()
		}
		if left, _, _ := ra.rollbackDecide(c); !left {
			t.Fatalf("takeFirst=%v: A must leave the change to B", takeFirst)
		}
		if !c.Held() {
			t.Fatalf("takeFirst=%v: after A left it, B holds the change", takeFirst)
		}
		if !takeFirst {
			takeB()
		}
		if !c.Held() {
			t.Fatalf("takeFirst=%v: B's end holds it", takeFirst)
		}
		left, d, reg := rb.rollbackDecide(c)
		if left {
			t.Fatalf("takeFirst=%v: both ends left the change to each other", takeFirst)
		}
		rttEndRollback(rb, rttFinishOwn(ctx, rb, c, d, reg))
		rttEndRollback(ra, Result{})
		if !ccExists(fsys, old) || ccExists(fsys, c.New) {
			t.Errorf("takeFirst=%v: both rolled back: old stays (%v), new goes (%v)", takeFirst, ccExists(fsys, old), ccExists(fsys, c.New))
		}
	}
}

// Guard (attack 4): the root Commit finishes what its take marked with
// no registration check. A claim by transaction B's savepoint after the
// take, rolled back before commitAll reaches the change, leaves it to the
// root with B's undone record: the commit keeps both files (as the serial
// order "claim and rollback, then Commit" does); after commitAll, the
// commit deleted the old file (the serial order "Commit, then claim").
// Either way the new file, which B's row may name, stays.
func TestRTDecideClaimAfterRootTake(t *testing.T) {
	for _, beforeFinish := range []bool{true, false} {
		ctx, fsys, f, old := rttSetup(t, Options{})
		actx, ra := NewScope(ctx)
		c, err := f.Replace(actx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		bctx, rb := NewScope(ctx)
		_, sb := NewScope(bctx)
		changes, ok := ra.take(committed)
		if !ok || len(changes) != 1 {
			t.Fatal("take")
		}
		claimAndRollback := func() {
			if err := sb.AddClaimed(c); err != nil {
				t.Fatalf("beforeFinish=%v: AddClaimed: %v", beforeFinish, err)
			}
			sb.Rollback(ctx)
		}
		if beforeFinish {
			claimAndRollback()
		}
		var r Result
		commitAll(ctx, changes, &r)
		ra.setResult(r)
		if !beforeFinish {
			claimAndRollback()
		}
		rb.Commit(ctx)
		if !ccExists(fsys, c.New) {
			t.Errorf("beforeFinish=%v: the new file of a committed change was deleted", beforeFinish)
		}
		if beforeFinish != ccExists(fsys, old) {
			t.Errorf("beforeFinish=%v: old file present=%v", beforeFinish, ccExists(fsys, old))
		}
	}
}

// Guard (attack 1, decideAgain): a claim between a Rollback's decision
// and its finish, then the claimer's savepoint commits it into its root
// while the Rollback decides again: the Rollback leaves it, and the
// claimer's commit keeps the new file its row names.
func TestRTDecideClaimThenHandUpDuringRedecide(t *testing.T) {
	ctx, fsys, f, old := rttSetup(t, Options{})
	actx, ra := NewScope(ctx)
	sctx, s := NewScope(actx)
	c, err := f.Replace(sctx, old, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	bctx, rb := NewScope(ctx)
	_, sb := NewScope(bctx)
	if ch, ok := s.take(rolledBack); !ok || len(ch) != 1 {
		t.Fatal("take")
	}
	left, d, reg := s.rollbackDecide(c)
	if left || d != rolledBack {
		t.Fatalf("no one else holds it: %v %d", left, d)
	}
	if err := sb.AddClaimed(c); err != nil {
		t.Fatal(err)
	}
	if !sb.commitChild() {
		t.Fatal("commitChild")
	}
	if _, ok := c.finishAt(ctx, rolledBack, nil, reg); ok {
		t.Fatal("a registration came in: the finish must not go ahead")
	}
	if left, _, _ := s.rollbackDecide(c); !left {
		t.Fatal("deciding again, S must leave the change to B's root")
	}
	rttEndRollback(s, Result{})
	ra.Commit(ctx)
	rb.Commit(ctx)
	if !ccExists(fsys, c.New) {
		t.Error("B committed a row naming the new file, and it was deleted")
	}
	if !ccExists(fsys, old) {
		t.Error("A's row holds the old path again (its savepoint rolled back): the old file must stay")
	}
}

// Differential guard: a savepoint's give-back races transaction B's
// claim and the maker's Commit; then B ends as its claim allows, A
// commits, and the maker's deferred Rollback runs.
func TestRTDecideLinGiveBackRacingClaimAndMakerCommit(t *testing.T) {
	rttLinearizable(t, 250*time.Millisecond, func() *rttWorld {
		ctx, fsys, f, old := rttSetup(t, Options{})
		actx, ra := NewScope(ctx)
		_, s := NewScope(actx)
		_, rb := NewScope(ctx)
		c, err := f.Replace(ctx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddClaimed(c); err != nil {
			t.Fatal(err)
		}
		var claimed atomic.Bool
		return &rttWorld{fsys: fsys,
			ops: []func(){
				func() { s.Rollback(ctx) },
				func() { claimed.Store(rb.AddClaimed(c) == nil) },
				func() { c.Commit(ctx) },
			},
			close: func() {
				if claimed.Load() {
					rb.Commit(ctx)
				} else {
					rb.Rollback(ctx)
				}
				ra.Commit(ctx)
				c.Rollback(ctx)
			},
			files: func() []string { return []string{old, c.New} },
			note:  func() string { return fmt.Sprintf("claimed=%v", claimed.Load()) },
		}
	})
}

// Differential guard: a savepoint's Commit into a parent that holds the
// change already, the Rollback of the transaction that made it, and the
// parent's root's Commit race; then B's deferred end.
func TestRTDecideLinHandUpIntoHolderRacingOtherRollback(t *testing.T) {
	rttLinearizable(t, 250*time.Millisecond, func() *rttWorld {
		ctx, fsys, f, old := rttSetup(t, Options{})
		bctx, rb := NewScope(ctx)
		c, err := f.Replace(bctx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		actx, ra := NewScope(ctx)
		_, sa := NewScope(actx)
		if ra.AddClaimed(c) != nil || sa.AddClaimed(c) != nil {
			t.Fatal("AddClaimed")
		}
		return &rttWorld{fsys: fsys,
			ops: []func(){
				func() { sa.Commit(ctx) },
				func() { rb.Rollback(ctx) },
				func() { ra.Commit(ctx) },
			},
			close: func() { ra.Rollback(ctx); c.Rollback(ctx) },
			files: func() []string { return []string{old, c.New} },
		}
	})
}

// Differential guard: the root's Commit races transaction B's savepoint
// claiming the change and rolling back, and the change's own Rollback
// (a deferred one); then B commits.
func TestRTDecideLinRootCommitRacingLateClaimRollback(t *testing.T) {
	rttLinearizable(t, 250*time.Millisecond, func() *rttWorld {
		ctx, fsys, f, old := rttSetup(t, Options{})
		actx, ra := NewScope(ctx)
		c, err := f.Replace(actx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		bctx, rb := NewScope(ctx)
		_, sb := NewScope(bctx)
		var claimed atomic.Bool
		return &rttWorld{fsys: fsys,
			ops: []func(){
				func() { ra.Commit(ctx) },
				func() { claimed.Store(sb.AddClaimed(c) == nil); sb.Rollback(ctx) },
				func() { c.Rollback(ctx) },
			},
			close: func() { rb.Commit(ctx) },
			files: func() []string { return []string{old, c.New} },
			note:  func() string { return fmt.Sprintf("claimed=%v", claimed.Load()) },
		}
	})
}

// Differential guard: three transactions' ends race over one change made
// in no scope, claimed by two of them, while the third claims it during
// the race; each claimer that was accepted commits afterwards.
func TestRTDecideLinTwoRollbacksRacingThirdClaim(t *testing.T) {
	rttLinearizable(t, 250*time.Millisecond, func() *rttWorld {
		ctx, fsys, f, old := rttSetup(t, Options{})
		_, ra := NewScope(ctx)
		_, rb := NewScope(ctx)
		_, rc := NewScope(ctx)
		c, err := f.Replace(ctx, old, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		if ra.AddClaimed(c) != nil || rb.AddClaimed(c) != nil {
			t.Fatal("AddClaimed")
		}
		var claimed atomic.Bool
		return &rttWorld{fsys: fsys,
			ops: []func(){
				func() { ra.Rollback(ctx) },
				func() { rb.Rollback(ctx) },
				func() { claimed.Store(rc.AddClaimed(c) == nil) },
			},
			close: func() {
				if claimed.Load() {
					rc.Commit(ctx)
				} else {
					rc.Rollback(ctx)
				}
				c.Rollback(ctx)
			},
			files: func() []string { return []string{old, c.New} },
			note:  func() string { return fmt.Sprintf("claimed=%v", claimed.Load()) },
		}
	})
}

// Found by a review (serial, a design question rather than a race; every
// order of the two ends did the same); fixed: the undone record of a
// change the rolled-back tree made still counts (undoneCounts). Transaction B replaces row X's file (old →
// new) in its scope; transaction A's statement writes the new path into a
// row of its own and claims the change (AddClaimed). B then rolls back as
// a whole: row X holds old again. B's end leaves the change to A with an
// undone record for B's tree, and B's clearMarks took that record off at
// once ("its outermost scope rolled back, so none of its rows holds a path
// it wrote"): but row X, restored, holds the change's OLD path, which B
// did not write and which B's rollback brought back. A commits without
// writing the path again, and its commit deletes old: row X names a
// deleted file. Change's doc: "A scope that rolls back leaves it to
// another that still holds it; if that one then commits without
// registering it again (no retry wrote the path), both files stay, since
// the row may hold either." Expected: old and new stay. Actual: old is
// deleted. (If A's row were row X itself, a double submit, deleting old
// would be right; the library cannot tell, and the product rule prefers
// the leak. The ORM integrations' CheckRefs on claims hides this for
// them; a Scope used directly, or pgxfield's, does not.)
func TestRTDecideMakerRootRollbackThenClaimerCommitDeletesRestoredOld(t *testing.T) {
	ctx, fsys, f, old := rttSetup(t, Options{})
	bctx, rb := NewScope(ctx)
	c, err := f.Replace(bctx, old, ccPNG("new")) // row X: old → new, in B
	if err != nil {
		t.Fatal(err)
	}
	_, ra := NewScope(ctx)
	if err := ra.AddClaimed(c); err != nil { // row Y := new, in A
		t.Fatal(err)
	}
	rb.Rollback(ctx) // row X holds old again
	ra.Commit(ctx)
	if !ccExists(fsys, c.New) {
		t.Error("A committed row Y with the new path, and it was deleted")
	}
	if !ccExists(fsys, old) {
		t.Errorf("B rolled back, so row X holds %s again; A's commit, which never wrote that path, deleted it", old)
	}
}

// Differential guard over random small setups that the other
// differential tests lack: claims (AddClaimed) and CommitEarly among the
// racing operations, next to scope ends and a change's own Commit and
// Rollback, over two transactions with savepoints. RTD_SEEDS sets the
// number of setups (each runs for RTT_BUDGET_MS, or 15 ms), RTD_SEED the
// first.
func TestRTDecideLinRandomClaims(t *testing.T) {
	seeds, first := 12, uint64(time.Now().UnixNano())
	if v := os.Getenv("RTD_SEEDS"); v != "" {
		fmt.Sscan(v, &seeds)
	}
	if v := os.Getenv("RTD_SEED"); v != "" {
		fmt.Sscan(v, &first)
	}
	for i := range seeds {
		seed := first + uint64(i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rttLinearizable(t, 15*time.Millisecond, rtdRandomWorld(t, seed))
		})
	}
}

// rtdRandomWorld returns the builder of seed's setup: scopes 0 (root of
// A), 1 (savepoint of 0), 2 (root of B), 3 (savepoint of 2); one or two
// changes, each made in a scope or in none (then Add'ed to one), some
// claimed by other scopes; three racing operations; a closing step that
// ends every root as the seed says and rolls every change back.
func rtdRandomWorld(t *testing.T, seed uint64) func() *rttWorld {
	r := rand.New(rand.NewPCG(seed, 0xdec1de))
	type chSpec struct {
		maker  int // -1: none
		addTo  int
		claims []int
		save   bool
	}
	parents := []int{-1, 0, -1, 2}
	var specs []chSpec
	for range 1 + r.IntN(2) {
		s := chSpec{maker: r.IntN(5) - 1, save: r.IntN(4) == 0}
		in := s.maker
		if s.maker < 0 {
			s.addTo = r.IntN(4)
			in = s.addTo
		}
		for range r.IntN(3) {
			if x := r.IntN(4); x != in && !slices.Contains(s.claims, x) {
				s.claims = append(s.claims, x)
			}
		}
		specs = append(specs, s)
	}
	type op struct{ kind, a, b int } // kind: 0 scope Commit, 1 scope Rollback, 2 change Commit, 3 change Rollback, 4 AddClaimed(change a into scope b), 5 CommitEarly
	var ops []op
	for len(ops) < 3 {
		var o op
		switch k := r.IntN(10); {
		case k < 4:
			o = op{kind: r.IntN(2), a: r.IntN(4)}
		case k < 6:
			o = op{kind: 2 + r.IntN(2), a: r.IntN(len(specs))}
		case k < 9:
			o = op{kind: 4, a: r.IntN(len(specs)), b: r.IntN(4)}
		default:
			o = op{kind: 5, a: r.IntN(len(specs))}
		}
		if !slices.Contains(ops, o) {
			ops = append(ops, o)
		}
	}
	commitRoot := []bool{r.IntN(3) > 0, r.IntN(3) > 0}
	t.Logf("seed %d: changes %+v, ops %+v, closing commits A=%v B=%v", seed, specs, ops, commitRoot[0], commitRoot[1])
	return func() *rttWorld {
		ctx, fsys, f, old := rttSetup(t, Options{})
		var olds []string
		olds = append(olds, old)
		o2, err := f.Save(ctx, ccPNG("old2"))
		if err != nil {
			t.Fatal(err)
		}
		o2.Commit(ctx)
		olds = append(olds, o2.New)
		ctxs := make([]context.Context, 4)
		scopes := make([]*Scope, 4)
		for i, p := range parents {
			base := ctx
			if p >= 0 {
				base = ctxs[p]
			}
			ctxs[i], scopes[i] = NewScope(base)
		}
		changes := make([]*Change, len(specs))
		for j, s := range specs {
			mctx := ctx
			if s.maker >= 0 {
				mctx = ctxs[s.maker]
			}
			o := olds[j]
			if s.save {
				o = ""
			}
			c, err := f.Replace(mctx, o, ccPNG(fmt.Sprint("new", j)))
			if err != nil {
				t.Fatal(err)
			}
			if s.maker < 0 {
				if err := scopes[s.addTo].AddClaimed(c); err != nil {
					t.Fatal(err)
				}
			}
			for _, x := range s.claims {
				if err := scopes[x].AddClaimed(c); err != nil {
					t.Fatal(err)
				}
			}
			changes[j] = c
		}
		notes := make([]atomic.Value, len(ops))
		var fns []func()
		for i, o := range ops {
			switch o.kind {
			case 0:
				fns = append(fns, func() { scopes[o.a].Commit(ctx) })
			case 1:
				fns = append(fns, func() { scopes[o.a].Rollback(ctx) })
			case 2:
				fns = append(fns, func() { changes[o.a].Commit(ctx) })
			case 3:
				fns = append(fns, func() { changes[o.a].Rollback(ctx) })
			case 4:
				fns = append(fns, func() { notes[i].Store(fmt.Sprint(scopes[o.b].AddClaimed(changes[o.a]) == nil)) })
			case 5:
				fns = append(fns, func() { changes[o.a].CommitEarly(ctx) })
			}
		}
		return &rttWorld{fsys: fsys, ops: fns,
			close: func() {
				for i, root := range []*Scope{scopes[0], scopes[2]} {
					if commitRoot[i] {
						root.Commit(ctx)
					} else {
						root.Rollback(ctx)
					}
				}
				for _, c := range changes {
					c.Rollback(ctx)
				}
			},
			files: func() []string {
				out := slices.Clone(olds)
				for _, c := range changes {
					out = append(out, c.New)
				}
				return out
			},
			note: func() string {
				var b []string
				for i := range notes {
					v, _ := notes[i].Load().(string)
					b = append(b, v)
				}
				return fmt.Sprint(b)
			},
		}
	}
}
