package filefield

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Review of 283b988 (marking), adapted to the shared tree lock (see
// commitchild_review_s14_test.go): a child's Commit and Rollback each end
// it in one step under the tree's lock, so of the two racing, one wins
// whole and the other finds the child ended and does nothing; no trace of
// the loser may stay on the changes.

// loseRollbackToCommit replays a child's Rollback racing its Commit, the
// Commit winning: commitChild ends the child and moves its changes into
// the parent, and the Rollback then finds the child ended, does nothing
// and returns an empty Result. The loser must leave no mark that says a
// scope of the tree is finishing the moved changes.
func loseRollbackToCommit(t *testing.T, child *Scope, cctx context.Context) {
	t.Helper()
	child.tree.mu.Lock()
	moved := slices.Clone(child.changes)
	child.tree.mu.Unlock()
	if r := child.Commit(cctx); !ccEmpty(r) {
		t.Fatalf("the child's Commit did %+v", r)
	}
	if r := child.Rollback(cctx); !ccEmpty(r) { // the Rollback loses
		t.Fatalf("the child's Rollback after its Commit did %+v", r)
	}
	for _, c := range moved {
		c.mu.Lock()
		fin := slices.Clone(c.finishing)
		c.mu.Unlock()
		if len(fin) > 0 {
			t.Errorf("the child's losing Rollback left finishing marks %v on a moved change", fin)
		}
	}
}

// Q1: c made in the outermost scope R (Replace old -> new); a savepoint C
// inside savepoint P writes its path again (AddClaimed) and is released
// while a Rollback of it races (the Commit wins); then P rolls back: the
// row names old again. R commits without writing the path again. P's
// Rollback must leave the undone record (R then keeps both files); when
// the loser's mark stayed on c as a stale finishing entry, undo skipped
// it, and R's commit deleted the old file the committed row names.
func TestMarkingStaleChildMarkSuppressesUndone(t *testing.T) {
	for _, race := range []bool{false, true} {
		name := map[bool]string{false: "control-no-race", true: "child-commit-beats-child-rollback"}[race]
		t.Run(name, func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			rctx, root := NewScope(ctx)
			c, err := f.Replace(rctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			pctx, p := NewScope(rctx)
			cctx, child := NewScope(pctx)
			if err := child.AddClaimed(c); err != nil { // a statement in C wrote c's path
				t.Fatal(err)
			}
			if race {
				loseRollbackToCommit(t, child, cctx)
			} else {
				child.Commit(cctx)
			}
			p.Rollback(pctx) // the row holds old again
			c.mu.Lock()
			fin, undone := slices.Clone(c.finishing), slices.Clone(c.undone)
			c.mu.Unlock()
			r := root.Commit(rctx)
			if !ccExists(fsys, old.New) {
				t.Errorf("savepoint P rolled back (row names %s), R committed: old file deleted (%+v); finishing=%v undone=%v",
					old.New, r, fin, undone)
			}
		})
	}
}

// Q1, the leak side: c saved in savepoint C, C's Commit beats its
// Rollback, then the outermost scope R rolls back. A stale mark of C's
// losing end would count as another finisher, so R's Rollback would
// finish nothing: c pending and Held for good, its new file kept (the
// safe direction, but a change no one ever finishes, and its maker's
// Rollback only a wish). c must be rolled back: new file gone.
func TestMarkingStaleChildMarkHeldForever(t *testing.T) {
	ctx, fsys, f, _ := ccSetup(t, Options{})
	rctx, root := NewScope(ctx)
	cctx, child := NewScope(rctx)
	c, err := f.Save(cctx, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	loseRollbackToCommit(t, child, cctx)
	root.Rollback(rctx)
	c.Rollback(ctx) // the maker's deferred Rollback
	if c.Held() || c.unfinished() {
		c.mu.Lock()
		fin := slices.Clone(c.finishing)
		c.mu.Unlock()
		t.Errorf("after the whole tree rolled back, c is still held=%v / unfinished=%v (finishing=%v)", c.Held(), c.unfinished(), fin)
	}
	if ccExists(fsys, c.New) {
		t.Errorf("new file %s kept (orphan) after the whole tree rolled back", c.New)
	}
}

// Q3: the stamp order must hold whichever way a savepoint's release
// races the outermost scope's Commit. a: Save (P1), b: Replace(P1 -> P2),
// then a stale copy of the row, written in savepoint G, writes P1 again
// (AddClaimed(a) in G) and G is released. The committed row names P1,
// whether G's Commit lands before R's Commit takes the tree ("before"),
// after it took G open with R ("after", G's Commit does nothing), or
// while R commits its changes ("during", paused on b's keep of P1): b's
// commit must not delete P1. (Once a release that found R ended but G not
// yet taken finished G's tree itself, and R ordered its changes without
// G's later stamp.)
func TestMarkingChildCommitInParentTakeTreeLosesStampOrder(t *testing.T) {
	for _, when := range []string{"before", "after", "during"} {
		t.Run(when, func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, _ := ccSetup(t, Options{OnEvent: g.onEvent})
			rctx, root := NewScope(ctx)
			a, err := f.Save(rctx, ccPNG("a"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.Replace(rctx, a.New, ccPNG("b"))
			if err != nil {
				t.Fatal(err)
			}
			gctx, gs := NewScope(rctx)
			if err := gs.AddClaimed(a); err != nil { // the stale copy writes P1 again
				t.Fatal(err)
			}
			var r Result
			switch when {
			case "before":
				gs.Commit(gctx)
				r = root.Commit(rctx)
			case "after":
				r = root.Commit(rctx)
				if res := gs.Commit(gctx); !ccEmpty(res) {
					t.Errorf("G's Commit after R's did %+v", res)
				}
			case "during":
				g.arm(ActionKeep, a.New)
				done := ccGo(func() { r = root.Commit(rctx) })
				g.wait(t)
				if res := gs.Commit(gctx); !ccEmpty(res) {
					t.Errorf("G's Commit during R's did %+v", res)
				}
				g.open()
				ccWait(t, done, "R's Commit")
			}
			if !ccExists(fsys, a.New) {
				t.Errorf("the committed row names %s (written last, in the savepoint), deleted by b's commit: %+v", a.New, r)
			}
			if !ccExists(fsys, b.New) {
				t.Errorf("b.New deleted")
			}
		})
	}
}

// Q1 with real goroutines: savepoint C's Commit and Rollback race (a
// release and a rollback-to of the same savepoint from two goroutines of
// the transaction), then P rolls back and R commits: whichever won, the
// row names the old file, which must stay.
func TestMarkingStaleChildMarkStress(t *testing.T) {
	lost, runs := 0, 30
	for run := range runs {
		ctx, fsys, f, old := ccSetup(t, Options{})
		rctx, root := NewScope(ctx)
		c, err := f.Replace(rctx, old.New, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		pctx, p := NewScope(rctx)
		cctx, child := NewScope(pctx)
		if err := child.AddClaimed(c); err != nil {
			t.Fatal(err)
		}
		for i := range 20 { // open inner savepoints, which the winning end takes with C
			gctx, _ := NewScope(cctx)
			for j := range 3 {
				if _, err := f.Save(gctx, ccPNG(fmt.Sprint(run, "-", i, "-", j))); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; child.Rollback(cctx) }()
		go func() { defer wg.Done(); <-start; runtime.Gosched(); child.Commit(cctx) }()
		close(start)
		wg.Wait()
		p.Rollback(pctx)
		root.Commit(rctx)
		if !ccExists(fsys, old.New) {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("old file a committed row names deleted in %d of %d runs", lost, runs)
	}
}
