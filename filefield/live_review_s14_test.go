package filefield

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Review of 5cef95e (Scope.end, finishingNow), adapted to the shared tree
// lock (see commitchild_review_s14_test.go).

// Q2: root R commits while its savepoint A rolls back; c, a change of A,
// is registered too by an unrelated open transaction T. A's Rollback
// takes A first, so R's Commit does not commit c, and A's Rollback leaves
// c to T with an undone record for R's tree: T's later Commit must keep
// both files, the old one being what R's committed row names. (Once R's
// Commit marked c before A's Rollback won A, and that mark, of an end
// that would never finish c, suppressed the record.) The race: A's
// Rollback paused in its loop (on a newer change, before it reaches c)
// while R commits whole; the control: A's Rollback, then R's Commit.
func TestLiveS14AncestorMarkSuppressesUndone(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "race"}[race], func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
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
			newer, err := f.Save(actx, ccPNG("newer")) // A rolls it back first
			if err != nil {
				t.Fatal(err)
			}
			if race {
				g.arm(ActionDelete, newer.New)
				done := ccGo(func() { a.Rollback(actx) })
				g.wait(t) // A has ended; its loop is on newer
				r.Commit(rctx)
				g.open()
				ccWait(t, done, "A's Rollback")
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
// sibling savepoint B too. B's Rollback takes B (c stays A's, with an
// undone record) and pauses while it finishes a newer change of B; R's
// Commit then takes R and A (c is R's to commit) and pauses on an earlier
// change; B's Rollback completes. B must not roll c back: that would
// delete the new file which A's row, committed by R, names (once B did,
// as R's mark did not count for B). R's commit of c keeps both files
// (undone). The control (B's Rollback done before R's Commit) leaves c
// to R with an undone record: both files stay.
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
				var openB, openR sync.Once
				t.Cleanup(func() { // a failure does not leave an end blocked
					openB.Do(func() { close(releaseB) })
					openR.Do(func() { close(releaseR) })
				})
				gate.Store(true)
				bDone := ccGo(func() { b.Rollback(bctx) })
				ccWait(t, bBlocked, "B's Rollback reaching c0") // B has taken B, is finishing c0
				rDone := ccGo(func() { r.Commit(rctx) })
				ccWait(t, rBlocked, "R's Commit reaching c1") // R has taken R and A, is finishing c1
				openB.Do(func() { close(releaseB) })
				ccWait(t, bDone, "B's Rollback")
				openR.Do(func() { close(releaseR) })
				ccWait(t, rDone, "R's Commit")
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
