package filefield

import (
	"testing"
)

// Deterministic form of TestChildRollbackRacingParentCommitFinishesTheChange:
// a savepoint's Rollback racing its parent's Commit must not leave the
// savepoint's change unfinished and held for good (once, the parent's
// mark stayed on it after the savepoint's Rollback won, and the parent's
// end skipped the ended savepoint). The interleavings the tree lock
// leaves: the savepoint's Rollback whole, then the parent's Commit; the
// parent's Commit whole while the savepoint's Rollback is paused in its
// loop (on a newer change); the savepoint's Rollback while the parent's
// Commit is paused in its loop (it took the savepoint: the Rollback does
// nothing). Then a deferred Rollback by hand; the change must be
// finished, held by none, and off the pending list.
func TestStaleFinisherDoesNotLeaveChangeStuck(t *testing.T) {
	for _, how := range []string{"child-then-parent", "parent-during-child", "child-during-parent"} {
		t.Run(how, func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
			pctx, parent := NewScope(ctx)
			if _, err := f.Replace(pctx, old.New, ccPNG("first")); err != nil { // the parent commits it first
				t.Fatal(err)
			}
			cctx, child := NewScope(pctx)
			ch, err := f.Save(cctx, ccPNG("x"))
			if err != nil {
				t.Fatal(err)
			}
			newer, err := f.Save(cctx, ccPNG("newer")) // the child rolls it back first
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "child-then-parent":
				child.Rollback(ctx)
				parent.Commit(ctx)
			case "parent-during-child":
				g.arm(ActionDelete, newer.New)
				done := ccGo(func() { child.Rollback(ctx) })
				g.wait(t)
				parent.Commit(ctx)
				g.open()
				ccWait(t, done, "the child's Rollback")
			case "child-during-parent":
				g.arm(ActionDelete, old.New)
				done := ccGo(func() { parent.Commit(ctx) })
				g.wait(t)
				child.Rollback(ctx)
				g.open()
				ccWait(t, done, "the parent's Commit")
			}
			ch.Rollback(ctx) // a deferred Rollback by hand
			ch.mu.Lock()
			st, fin := ch.state, len(ch.finishing)
			ch.mu.Unlock()
			if st == pending || ch.Held() {
				t.Fatalf("change never finished: state=%d finishing=%d held=%v new file exists=%v, still on the pending list=%v",
					st, fin, ch.Held(), ccExists(fsys, ch.New), len(f.pending.list(ch.New)) == 1)
			}
			if len(f.pending.list(ch.New)) != 0 {
				t.Errorf("finished, but still on the pending list")
			}
		})
	}
}
