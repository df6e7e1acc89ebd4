package filefield

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// Review of 5cef95e (Scope.end, finishingNow).

// Q2: root R's Commit has marked savepoint A (its mark names R on c, a
// change of A that an unrelated open transaction T also registered);
// A's Rollback then wins A before R's takeTree reaches it. R never
// finishes c, but its mark counts (endNone, then endLive) in undo, which
// unlike heldElsewhere applies no ancestor rule: no undone mark is left,
// and T's later Commit deletes the old file, which R's committed row
// names (A's write of the new path was rolled back). The control (A's
// Rollback before R's Commit starts) keeps both files.
func TestLiveS14AncestorMarkSuppressesUndone(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "race"}[race], func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			rctx, r := NewScope(ctx)
			actx, a := NewScope(rctx)
			tctx, tr := NewScope(ctx)
			c, err := f.Replace(actx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.AddClaimed(c); err != nil {
				t.Fatal(err)
			}
			if race {
				// R.Commit, replayed from take: mark, then (after A's
				// Rollback) takeTree, commitAll, and the deferred endOver.
				r.mark(r, nil)
				a.Rollback(actx)
				changes, _, ok := r.takeTree(committed, r)
				if !ok {
					t.Fatal("R's end lost")
				}
				commitAll(rctx, changes)
				r.end.Store(endOver)
			} else {
				a.Rollback(actx)
				r.Commit(rctx)
			}
			c.mu.Lock()
			undone := len(c.undone)
			c.mu.Unlock()
			tr.Commit(tctx)
			if !ccExists(fsys, old.New) {
				t.Errorf("old file %s, named by R's committed row, deleted by T's commit (undone marks at T's commit: %d)", old.New, undone)
			}
		})
	}
}

// Q1/Q3: c is made in savepoint A (left open) and registered in its
// sibling savepoint B too. B's Rollback takes B; while it finishes a
// newer change of B, R's Commit takes R and A (c is R's to commit) and
// is finishing an earlier change. B then reaches c: A is not open (R has
// ended), and R's mark, which names the end that is finishing c, does
// not count for B under heldElsewhere's ancestor rule (c is A's, not in
// R.scopes). B rolls c back and deletes its new file, which A's row,
// committed by R, names. The control (B's Rollback done before R's
// Commit) leaves c to R with an undone mark: both files stay.
func TestLiveS14SiblingRollbackDeletesNewFileRCommits(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "race"}[race], func(t *testing.T) {
			var c0Path, old1Path atomic.Value
			c0Path.Store("")
			old1Path.Store("")
			var gate atomic.Bool
			bBlocked, releaseB := make(chan struct{}), make(chan struct{})
			rBlocked, releaseR := make(chan struct{}), make(chan struct{})
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
				if !gate.Load() || e.Action != ActionDelete {
					return
				}
				switch e.Path {
				case c0Path.Load():
					close(bBlocked)
					<-releaseB
				case old1Path.Load():
					close(rBlocked)
					<-releaseR
				}
			}})
			old1, err := f.Save(ctx, ccPNG("old1"))
			if err != nil {
				t.Fatal(err)
			}
			old1.Commit(ctx)
			old1Path.Store(old1.New)

			rctx, r := NewScope(ctx)
			// c1: an earlier change of R, committed first by R.
			if _, err := f.Replace(rctx, old1.New, ccPNG("new1")); err != nil {
				t.Fatal(err)
			}
			actx, _ := NewScope(rctx)
			bctx, b := NewScope(rctx)
			c, err := f.Replace(actx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.AddClaimed(c); err != nil {
				t.Fatal(err)
			}
			c0, err := f.Save(bctx, ccPNG("c0")) // newer: B rolls it back first
			if err != nil {
				t.Fatal(err)
			}
			c0Path.Store(c0.New)

			if !race {
				b.Rollback(bctx)
				r.Commit(rctx)
			} else {
				gate.Store(true)
				var wg sync.WaitGroup
				bDone := make(chan struct{})
				wg.Add(2)
				go func() { defer wg.Done(); defer close(bDone); b.Rollback(bctx) }()
				<-bBlocked // B has taken B, is finishing c0
				go func() { defer wg.Done(); r.Commit(rctx) }()
				<-rBlocked // R has taken R and A, is finishing c1
				close(releaseB)
				<-bDone
				close(releaseR)
				wg.Wait()
			}
			if !ccExists(fsys, c.New) {
				t.Errorf("new file %s deleted, though R committed A's row that names it (c unfinished %v)", c.New, c.unfinished())
			}
			if !ccExists(fsys, old.New) {
				t.Errorf("old file %s deleted", old.New)
			}
		})
	}
}

var _ = context.Background
