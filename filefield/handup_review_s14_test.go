package filefield

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// Review of 7331a35 (handUpFirst, which registered a child's changes with
// the parent before the child ended; replaced by commitChild, which ends
// the child and moves its changes in one step, now under the tree's lock
// that every scope of the tree shares). The interleavings left to race are
// between whole steps (a registration, a child's Commit, an end's take)
// and inside an end's per-change loop, paused with ccGate (see
// commitchild_review_s14_test.go).

// Commit and Rollback of the same savepoint scope race; Rollback wins, so
// Commit "does nothing" (Scope doc). The parent commits concurrently,
// while the child's Rollback is still finishing its changes (paused on a
// newer one). With 7331a35, handUpFirst (the child's Commit's first step)
// had registered the change in the parent, whose commit then deleted the
// old file the rolled-back row still names. The child's Rollback must
// roll the change back (old kept, new gone), and the losing Commit must
// not hand it to the parent.
func TestHandUpCommitRollbackRaceParentCommitDeletesOld(t *testing.T) {
	g := newCCGate(t)
	ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
	pctx, parent := NewScope(ctx)
	cctx, child := NewScope(pctx)
	ch, err := f.Replace(cctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	newer, err := f.Save(cctx, ccPNG("newer")) // rolled back before ch
	if err != nil {
		t.Fatal(err)
	}
	g.arm(ActionDelete, newer.New)
	var rr Result
	done := ccGo(func() { rr = child.Rollback(cctx) }) // T2: child.Rollback wins the take
	g.wait(t)
	cr := child.Commit(cctx)  // T1: does nothing
	pr := parent.Commit(pctx) // T3: the parent commits meanwhile
	g.open()
	ccWait(t, done, "the child's Rollback")
	if !ccEmpty(cr) {
		t.Errorf("the losing child Commit did %+v", cr)
	}
	if !ccExists(fsys, old.New) {
		t.Errorf("savepoint rolled back (its Rollback won): the old file %s the row names was deleted; child Rollback %+v, child Commit %+v, parent Commit %+v", old.New, rr, cr, pr)
	}
	if ccExists(fsys, ch.New) {
		t.Errorf("savepoint rolled back: its change's new file %s stays; child Rollback %+v, parent Commit %+v", ch.New, rr, pr)
	}
}

func TestHandUpCommitRollbackRaceRollbackNoLongerDeletesNew(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	pctx, parent := NewScope(ctx)
	cctx, child := NewScope(pctx)
	ch, err := f.Replace(cctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	rr := child.Rollback(cctx)
	child.Commit(cctx)
	pr := parent.Commit(pctx)
	if ccExists(fsys, ch.New) {
		t.Errorf("child Rollback won, but the new file %s stayed: child Rollback %+v, parent Commit %+v", ch.New, rr, pr)
	}
	if !ccExists(fsys, old.New) {
		t.Errorf("old file deleted")
	}
}

// Same race, with an upload stored with no scope and Scope.Add-ed to the
// child: the child's Rollback must give it back (pending, claimable,
// KeptGivenBack); with 7331a35 the parent kept it and its commit finished
// it.
func TestHandUpCommitRollbackRaceUnownedNotGivenBack(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	up, err := f.Replace(ctx, old.New, ccPNG("up")) // no scope
	if err != nil {
		t.Fatal(err)
	}
	pctx, parent := NewScope(ctx)
	cctx, child := NewScope(pctx)
	if _, err := child.Add(up, nil); err != nil {
		t.Fatal(err)
	}
	rr := child.Rollback(cctx)
	child.Commit(cctx)
	pr := parent.Commit(pctx)
	if !up.unfinished() {
		t.Errorf("child Rollback won: the unowned upload should be given back, pending; it was finished by the parent (child Rollback %+v, parent Commit %+v)", rr, pr)
	}
	up.Rollback(ctx) // the maker gives up
	if ccExists(fsys, up.New) {
		t.Errorf("the maker's Rollback could not remove %s", up.New)
	}
	if !ccExists(fsys, old.New) {
		t.Errorf("old file deleted")
	}
}

// A Save into the child (or a grandchild) racing the child's Commit: with
// 7331a35 one that registered after handUpFirst's snapshot and before the
// child's end was handed over only after it, and a parent committing in
// between left it unheld: the deferred Change.Rollback deleted the new
// file of a change every scope committed. The child's end and the move of
// its changes are one step (commitChild, under the tree's lock): a change
// made before it is the parent's at once (held), one after is refused.
func TestHandUpSaveAroundChildCommit(t *testing.T) {
	for _, depth := range []string{"child", "grandchild"} {
		t.Run(depth, func(t *testing.T) {
			ctx, fsys, f, _ := ccSetup(t, Options{})
			pctx, parent := NewScope(ctx)
			cctx, child := NewScope(pctx)
			sctx := cctx
			if depth == "grandchild" {
				sctx, _ = NewScope(cctx)
			}
			ch, err := f.Save(sctx, ccPNG("a"))
			if err != nil {
				t.Fatal(err)
			}
			if !child.commitChild() { // the child's Commit
				t.Fatal("commitChild found the child ended")
			}
			if !ch.Held() {
				t.Error("right after the child's end its change is held by no scope")
			}
			parent.tree.mu.Lock()
			inParent := slices.Contains(parent.changes, ch)
			parent.tree.mu.Unlock()
			if !inParent {
				t.Error("the child's change is not the parent's")
			}
			if _, err := f.Save(sctx, ccPNG("b")); !errors.Is(err, ErrScopeEnded) {
				t.Errorf("a Save into the ended %s: %v, want ErrScopeEnded", depth, err)
			}
			parent.Commit(pctx)   // the transaction commits
			r := ch.Rollback(ctx) // deferred
			if !ccExists(fsys, ch.New) {
				t.Errorf("every scope committed, yet %s was deleted (Rollback %+v)", ch.New, r)
			}
		})
	}
}

// Item 2: the move of a child's changes into its parent, with the child's
// write stamps, must not change which stale file is kept: the same path
// replaced in the child and in the parent, in both orders, with and
// without the replaced path written again afterwards (a stale copy,
// AddClaimed).
func TestHandUpStampsSamePathReplacedTwice(t *testing.T) {
	type tc struct {
		name      string
		childLast bool // the second replace happens in the child
		rewrite   bool // the first change's path is written again at the end, in the scope that made the second replace
	}
	for _, c := range []tc{{"parent-then-child", true, false}, {"parent-then-child-rewrite", true, true},
		{"child-then-parent", false, false}, {"child-then-parent-rewrite", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			pctx, parent := NewScope(ctx)
			var cctx context.Context
			var child *Scope
			var first, second *Change
			var err error
			if c.childLast {
				first, err = f.Replace(pctx, old.New, ccPNG("a"))
				if err != nil {
					t.Fatal(err)
				}
				cctx, child = NewScope(pctx)
				if second, err = f.Replace(cctx, first.New, ccPNG("b")); err != nil {
					t.Fatal(err)
				}
				if c.rewrite {
					if err := child.AddClaimed(first); err != nil {
						t.Fatal(err)
					}
				}
				child.Commit(cctx)
			} else {
				cctx, child = NewScope(pctx)
				if first, err = f.Replace(cctx, old.New, ccPNG("a")); err != nil {
					t.Fatal(err)
				}
				child.Commit(cctx)
				if second, err = f.Replace(pctx, first.New, ccPNG("b")); err != nil {
					t.Fatal(err)
				}
				if c.rewrite {
					if err := parent.AddClaimed(first); err != nil {
						t.Fatal(err)
					}
				}
			}
			r := parent.Commit(pctx)
			if ccExists(fsys, old.New) {
				t.Errorf("old %s stays: %+v", old.New, r)
			}
			if got := ccExists(fsys, first.New); got != c.rewrite {
				t.Errorf("first.New %s exists=%v, want %v: %+v", first.New, got, c.rewrite, r)
			}
			if !ccExists(fsys, second.New) {
				t.Errorf("second.New deleted")
			}
		})
	}
}
