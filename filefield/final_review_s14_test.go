package filefield

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Final review of 849c96f.

// waitFor polls cond (which may lock) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Q1 / (c): R > A > B, c made in B. R's end is under way: it has ended R
// and its takeTree has not reached A yet (held here on A.mu). B.Commit
// sees a scope above ended and returns Result{}, leaving B pending. The
// savepoint's deferred B.Rollback (a no-op after Commit, says the doc)
// then wins B's takeTree and rolls c back: the new file of a row R
// committed is deleted (or, for End(ErrCommitUnknown), a file that must be
// kept). Before 849c96f, B.Commit took B itself (take + handOver).
func TestFinalS14ChildCommitThenRollbackDuringAncestorEnd(t *testing.T) {
	for _, end := range []string{"commit", "unknown"} {
		for _, rollbackAfter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rollbackAfterCommit=%v", end, rollbackAfter), func(t *testing.T) {
				ctx, fsys, f, old := ccSetup(t, Options{})
				rctx, r := NewScope(ctx)
				actx, a := NewScope(rctx)
				bctx, b := NewScope(actx)
				c, err := f.Replace(bctx, old.New, ccPNG("new"))
				if err != nil {
					t.Fatal(err)
				}
				b.mu.Lock() // R's mark stops at B ...
				done := make(chan struct{})
				go func() {
					defer close(done)
					if end == "commit" {
						r.Commit(ctx)
					} else {
						r.End(ctx, fmt.Errorf("conn: %w", ErrCommitUnknown))
					}
				}()
				// ... once it has passed A: then A.mu is taken here, so
				// that R's takeTree, after ending R, stops at A.
				waitFor(t, "R's mark to pass A", func() bool {
					a.mu.Lock()
					if len(a.marking) > 0 {
						return true // a.mu stays held
					}
					a.mu.Unlock()
					return false
				})
				b.mu.Unlock()
				waitFor(t, "R to end", func() bool {
					r.mu.Lock()
					defer r.mu.Unlock()
					return r.state != pending
				})
				if res := b.Commit(bctx); len(res.Deleted) != 0 {
					t.Fatalf("child commit deleted %v", res.Deleted)
				}
				if rollbackAfter {
					b.Rollback(bctx) // the savepoint helper's deferred Rollback
				}
				a.mu.Unlock()
				<-done
				if !ccExists(fsys, c.New) {
					t.Errorf("new file %s deleted: B committed and R ended %s (c.state=%d)", c.New, end, c.state)
				}
				if end == "unknown" && !ccExists(fsys, old.New) {
					t.Errorf("old file deleted under ErrCommitUnknown")
				}
				if c.unfinished() {
					t.Errorf("c left pending")
				}
			})
		}
	}
}

// Q2 / (a): R.Commit (W) and R.Rollback (L) race. W marks R before B
// exists; B is made and c saved in it; L marks R and B (c gets one R);
// B commits into R: takeOver's markedIn sees R in c.finishing already (L's)
// and adds none for W; W's takeTree wins; L's takeTree loses and removes
// "its" mark: the only one. c, still to be committed by W, is held by no
// one: its deferred Rollback deletes the new file the committed row names.
// Replayed from the parts of take (mark, takeTree, and the loser's
// removal, copied from take).
func TestFinalS14LoserRemovesMergedMark(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollbackRaces=%v", race), func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			rctx, r := NewScope(ctx)
			r.mark(r, nil) // W: R.Commit's take, its mark (R has no child yet)
			bctx, b := NewScope(rctx)
			c, err := f.Replace(bctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			var lMarked []*Change
			if race {
				lMarked = r.mark(r, nil) // L: R.Rollback's take, its mark
			}
			b.Commit(bctx)                             // the savepoint is released into R
			changes, _, ok := r.takeTree(committed, r) // W wins
			if !ok {
				t.Fatal("W lost")
			}
			if race {
				if _, _, ok := r.takeTree(rolledBack, r); ok {
					t.Fatal("L won")
				}
				for _, x := range lMarked { // take's removal, as in scope.go
					x.mu.Lock()
					if i := slices.Index(x.finishing, r); i >= 0 {
						x.finishing = slices.Delete(x.finishing, i, i+1)
					}
					x.mu.Unlock()
				}
			}
			held := c.Held()
			c.Rollback(ctx) // the handler's deferred Rollback
			commitAll(ctx, changes)
			if !held || !ccExists(fsys, c.New) {
				t.Errorf("Held()=%v before W finished it; new file kept=%v (W committed it)", held, ccExists(fsys, c.New))
			}
		})
	}
}

// Q3 / (d): R.Commit's mark has passed R (and stops at X, held here); a
// savepoint T is made in R then, and c saved in it: T was not in the
// children mark cloned, and T.marking is empty, so c gets no mark; R's
// takeTree (which clones R.children again) takes T and c. While R commits
// its changes in order, c is held by no one (T committed as child, R
// ended, no mark): a Rollback of c, here from an event callback of an
// earlier change, deletes the new file R then fails to commit.
func TestFinalS14ScopeMadeAfterMarkUnmarked(t *testing.T) {
	var (
		mu   sync.Mutex
		late *Change
		bctx context.Context
		held = true
	)
	var oldPath string
	ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
		mu.Lock()
		c := late
		mu.Unlock()
		if c != nil && e.Action == ActionDelete && e.Path == oldPath {
			held = c.Held()
			c.Rollback(bctx)
		}
	}})
	oldPath = old.New
	rctx, r := NewScope(ctx)
	if _, err := f.Replace(rctx, old.New, ccPNG("first")); err != nil {
		t.Fatal(err)
	}
	_, x := NewScope(rctx)
	x.mu.Lock()
	done := make(chan struct{})
	go func() { defer close(done); r.Commit(ctx) }()
	waitFor(t, "R's mark to pass R", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.marking) > 0
	})
	tctx, _ := NewScope(rctx)
	c, err := f.Save(tctx, ccPNG("late"))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	late, bctx = c, tctx
	mu.Unlock()
	x.mu.Unlock()
	<-done
	if !held || !ccExists(fsys, c.New) {
		t.Errorf("c Held()=%v while R was committing it; new file kept=%v", held, ccExists(fsys, c.New))
	}
}
