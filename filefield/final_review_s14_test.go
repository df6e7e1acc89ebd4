package filefield

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/spf13/afero"
)

// Final review of 849c96f, adapted to the shared tree lock (see
// commitchild_review_s14_test.go): an end takes its whole pending subtree
// in one step, so the windows these tests once replayed (an end that had
// ended the outermost scope and not yet reached a savepoint) are gone;
// what is left to race is the end's per-change loop, where ccGate pauses
// it.

// Q1 / (c): R > A > B, c made in B. R's end (Commit, or End with
// ErrCommitUnknown) has taken the tree and is finishing an earlier change
// (paused there). B's Commit then does nothing (Result{}), and the
// savepoint's deferred B.Rollback, a no-op after Commit, says the doc,
// must do nothing either: had it won B, it would roll c back and delete
// the new file of a row R committed (or, under ErrCommitUnknown, a file
// that must be kept), or at least leave a record that turns R's commit
// of c into a keep of both files. c is finished by R: at a Commit its old
// file goes.
func TestFinalS14ChildCommitThenRollbackDuringAncestorEnd(t *testing.T) {
	for _, end := range []string{"commit", "unknown"} {
		for _, rollbackAfter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rollbackAfterCommit=%v", end, rollbackAfter), func(t *testing.T) {
				g := newCCGate(t)
				ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
				old1, err := f.Save(ctx, ccPNG("old1"))
				if err != nil {
					t.Fatal(err)
				}
				old1.Commit(ctx)
				rctx, r := NewScope(ctx)
				if _, err := f.Replace(rctx, old1.New, ccPNG("first")); err != nil { // finished before c
					t.Fatal(err)
				}
				actx, _ := NewScope(rctx)
				bctx, b := NewScope(actx)
				c, err := f.Replace(bctx, old.New, ccPNG("new"))
				if err != nil {
					t.Fatal(err)
				}
				if end == "commit" {
					g.arm(ActionDelete, old1.New)
				} else {
					g.arm(ActionKeep, old1.New)
				}
				done := ccGo(func() {
					if end == "commit" {
						r.Commit(ctx)
					} else {
						r.End(ctx, fmt.Errorf("conn: %w", ErrCommitUnknown))
					}
				})
				g.wait(t)
				if res := b.Commit(bctx); !ccEmpty(res) {
					t.Errorf("child commit during R's end did %+v", res)
				}
				if rollbackAfter {
					if res := b.Rollback(bctx); !ccEmpty(res) { // the savepoint helper's deferred Rollback
						t.Errorf("child rollback after its commit did %+v", res)
					}
				}
				g.open()
				ccWait(t, done, "R's end")
				if !ccExists(fsys, c.New) {
					t.Errorf("new file %s deleted: B committed and R ended %s (c.state=%d)", c.New, end, c.state)
				}
				if end == "unknown" && !ccExists(fsys, old.New) {
					t.Errorf("old file deleted under ErrCommitUnknown")
				}
				if end == "commit" && ccExists(fsys, old.New) {
					t.Errorf("old file %s kept: R committed c, and B's ends after R's take may not change that", old.New)
				}
				if c.unfinished() {
					t.Errorf("c left pending")
				}
			})
		}
	}
}

// Q2 / (a): R.Commit (W) and R.Rollback (L) race. Savepoint B is made in
// R, c saved in it, and B commits into R; W takes the tree and, while it
// commits an earlier change (paused), L comes and loses: it must do
// nothing, and c, still to be committed by W, stays held: its deferred
// Rollback only records a wish (it deleted the new file the committed row
// names when the loser's clean-up took away the winner's mark). The
// control has no L.
func TestFinalS14LoserRemovesMergedMark(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollbackRaces=%v", race), func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
			rctx, r := NewScope(ctx)
			if _, err := f.Replace(rctx, old.New, ccPNG("first")); err != nil { // committed before c
				t.Fatal(err)
			}
			bctx, b := NewScope(rctx)
			c, err := f.Save(bctx, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			b.Commit(bctx) // the savepoint is released into R
			g.arm(ActionDelete, old.New)
			done := ccGo(func() { r.Commit(rctx) }) // W
			g.wait(t)
			if race {
				if res := r.Rollback(rctx); !ccEmpty(res) { // L loses
					t.Errorf("R's Rollback after its Commit did %+v", res)
				}
			}
			held := c.Held()
			c.Rollback(ctx) // the handler's deferred Rollback
			g.open()
			ccWait(t, done, "R's Commit")
			if !held || !ccExists(fsys, c.New) {
				t.Errorf("Held()=%v before W finished it; new file kept=%v (W committed it)", held, ccExists(fsys, c.New))
			}
			if c.unfinished() {
				t.Errorf("c left pending")
			}
		})
	}
}

// Q3 / (d): R.Commit is under way (it has taken the tree and is deleting
// the old file of an earlier change, paused there) when a savepoint T is
// made in R, or was made before and is taken with R: a Save in T must be
// refused with ErrScopeEnded and store nothing, as no scope would finish
// the change (once, one came in unmarked, held by no one, and a Rollback
// of it from an event callback deleted the new file R then committed).
// A Save in T made before R's end, then ended with it, is refused too.
func TestFinalS14ScopeMadeAfterMarkUnmarked(t *testing.T) {
	for _, made := range []string{"during", "before"} {
		t.Run(made, func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
			rctx, r := NewScope(ctx)
			if _, err := f.Replace(rctx, old.New, ccPNG("first")); err != nil {
				t.Fatal(err)
			}
			tctx := rctx
			var ts *Scope
			if made == "before" {
				tctx, ts = NewScope(rctx)
			}
			g.arm(ActionDelete, old.New)
			done := ccGo(func() { r.Commit(ctx) })
			g.wait(t)
			if made == "during" {
				tctx, ts = NewScope(rctx)
			}
			before := ccFiles(t, fsys)
			c, err := f.Save(tctx, ccPNG("late"))
			after := ccFiles(t, fsys)
			if !errors.Is(err, ErrScopeEnded) {
				held := c != nil && c.Held()
				t.Errorf("Save into a savepoint of the ending R: %v (held %v), want ErrScopeEnded", err, held)
			}
			if after != before {
				t.Errorf("a refused Save left files behind: %d files before, %d after", before, after)
			}
			if res := ts.Commit(tctx); !ccEmpty(res) {
				t.Errorf("T's Commit did %+v", res)
			}
			g.open()
			ccWait(t, done, "R's Commit")
		})
	}
}

// ccFiles counts the files under pics.
func ccFiles(t *testing.T, fsys afero.Fs) int {
	t.Helper()
	n := 0
	err := afero.Walk(fsys, "pics", func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
