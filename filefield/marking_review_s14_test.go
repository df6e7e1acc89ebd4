package filefield

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Review of 283b988 (marking). Interleavings are replayed from the parts
// of Scope.take (mark, then takeTree), as in commitchild_review_s14_test.go.

// loseRollbackToCommit replays a child's Rollback racing its Commit, the
// Commit winning: the Rollback's take runs mark(child), then the Commit
// (commitChild) ends the child and moves its changes, then the Rollback's
// takeTree finds the child ended and returns. The mark(child) entries on
// the moved changes are never removed.
func loseRollbackToCommit(t *testing.T, child *Scope, cctx context.Context) {
	t.Helper()
	child.mark(child, nil) // Rollback: take(rolledBack), its mark
	child.Commit(cctx)
	if _, _, ok := child.takeTree(rolledBack, child); ok { // Rollback: its takeTree loses
		t.Fatal("the child's Rollback won")
	}
}

// Q1: c made in the outermost scope R (Replace old -> new); a savepoint C
// inside savepoint P writes its path again (AddClaimed) and is released
// while a Rollback of it races (the Commit wins, the Rollback's mark stays
// on c); then P rolls back: the row names old again. R commits without
// writing the path again. P's Rollback should leave the undone mark (R
// then keeps both files); the stale finishing entry of C makes undo skip
// it, and R's commit deletes the old file the committed row names.
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
// Rollback, then the outermost scope R rolls back. R's Rollback counts the
// stale mark of C as another finisher, so it finishes nothing: c stays
// pending and Held for good, its new file kept (the safe direction, but a
// change no one ever finishes, and its maker's Rollback only a wish).
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
		t.Errorf("after the whole tree rolled back, c is still held=%v / unfinished=%v (finishing=%v)", c.Held(), c.unfinished(), c.finishing)
	}
	if ccExists(fsys, c.New) {
		t.Logf("new file %s kept (orphan)", c.New)
	}
}

// Q3: the stamp order is lost when a savepoint's Commit finds the
// outermost scope already ended (its takeTree set R's state) but not yet
// taken the savepoint: the savepoint takes its tree itself and finishes
// via handOver, and R's commitAll orders its changes without the
// savepoint's later stamp. a: Save (P1), b: Replace(P1 -> P2), then a
// stale copy of the row written in savepoint G writes P1 again
// (AddClaimed(a) in G) and G is released. The committed row names P1.
func TestMarkingChildCommitInParentTakeTreeLosesStampOrder(t *testing.T) {
	for _, race := range []bool{false, true} {
		name := map[bool]string{false: "control-no-race", true: "child-commit-inside-parent-takeTree"}[race]
		t.Run(name, func(t *testing.T) {
			ctx, fsys, f, _ := ccSetup(t, Options{})
			rctx, root := NewScope(ctx)
			a, err := f.Save(rctx, ccPNG("a"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := f.Replace(rctx, a.New, ccPNG("b"))
			if err != nil {
				t.Fatal(err)
			}
			gctx, g := NewScope(rctx)
			if err := g.AddClaimed(a); err != nil { // the stale copy writes P1 again
				t.Fatal(err)
			}
			var r Result
			if !race {
				g.Commit(gctx)
				r = root.Commit(rctx)
			} else {
				// R.Commit: take(committed) = mark(root), then takeTree,
				// whose first part (root's own lock) is replayed here ...
				root.mark(root, nil)
				root.mu.Lock()
				changes, children, written := root.changes, root.children, root.written
				root.state = committed
				root.endedBy.Store(root)
				root.end.Store(endLive)
				root.changes, root.children, root.written = nil, nil, nil
				root.mu.Unlock()
				// ... the savepoint's release lands now ...
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); g.Commit(gctx) }()
				wg.Wait()
				// ... and R's takeTree goes on into its children.
				for _, c := range children {
					more, stamps, ok := c.takeTree(committed, root)
					if !ok {
						continue
					}
					for _, ch := range more {
						st, seen := written[ch]
						if !seen {
							changes = append(changes, ch)
						}
						written[ch] = max(st, stamps[ch])
					}
				}
				slices.SortStableFunc(changes, func(x, y *Change) int { return cmp.Compare(written[x], written[y]) })
				r = commitAll(rctx, changes)
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
// the transaction), then P rolls back and R commits.
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
		for i := range 60 { // open inner savepoints, so that the Rollback's mark takes a while
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
