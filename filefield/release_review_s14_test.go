package filefield

import (
	"context"
	"slices"
	"testing"
)

// Review of 849c96f/6277913 (released, marking copies), adapted to the
// shared tree lock (see commitchild_review_s14_test.go). A savepoint's
// end that races its ancestor's and loses finds itself ended (the
// ancestor's take ended the whole pending subtree in the same step) and
// does nothing; the tests run the loser after the winner's end, and while
// the winner is paused in its per-change loop.

// s14Entry brings c (Replace old -> new) into savepoint A: "add" Saves in
// A, "newscope" Saves in a child D of A left open, "takeover" Saves in a
// child D of A that then commits into A. (These were the ways a change
// came into A's tree after A's losing Rollback had marked it.)
func s14Entry(t *testing.T, how string, actx context.Context, f *Field, old string) *Change {
	t.Helper()
	var c *Change
	var err error
	switch how {
	case "add":
		c, err = f.Replace(actx, old, ccPNG("new"))
	case "newscope":
		dctx, _ := NewScope(actx)
		c, err = f.Replace(dctx, old, ccPNG("new"))
	case "takeover":
		dctx, d := NewScope(actx)
		if c, err = f.Replace(dctx, old, ccPNG("new")); err == nil {
			d.Commit(dctx)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// s14Lose runs end, an end of a savepoint that lost to an ancestor's,
// either after the ancestor's end (run by win) returned, or while it is
// paused on an event of path (action), and checks that it did nothing.
func s14Lose(t *testing.T, g *ccGate, when string, action Action, path string, win, end func() Result) {
	t.Helper()
	var r Result
	switch when {
	case "control":
		win()
		return
	case "after":
		win()
		r = end()
	case "during":
		g.arm(action, path)
		done := ccGo(func() { win() })
		g.wait(t)
		r = end()
		g.open()
		ccWait(t, done, "the ancestor's end")
	}
	if !ccEmpty(r) {
		t.Errorf("the savepoint's losing end did %+v", r)
	}
}

// Q2: savepoint A's Rollback races the outer scope O's Rollback and loses
// (O's take takes A). c came into A's tree in one of the ways of
// s14Entry. Every scope holding c rolled back: c must be finished, held
// by none, its new file gone (once the loser's mark stayed on c, O's
// Rollback saw c held by A and left it unfinished, Held for good).
func TestReleaseS14LosingChildEndLeavesMarkHeldForever(t *testing.T) {
	for _, how := range []string{"add", "newscope", "takeover"} {
		for _, when := range []string{"control", "after", "during"} {
			t.Run(how+"/"+when, func(t *testing.T) {
				g := newCCGate(t)
				ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
				octx, o := NewScope(ctx)
				actx, a := NewScope(octx)
				c := s14Entry(t, how, actx, f, old.New)
				newer, err := f.Save(octx, ccPNG("newer")) // O rolls it back before c
				if err != nil {
					t.Fatal(err)
				}
				s14Lose(t, g, when, ActionDelete, newer.New,
					func() Result { return o.Rollback(octx) },
					func() Result { return a.Rollback(actx) })
				c.mu.Lock()
				fin := slices.Clone(c.finishing)
				c.mu.Unlock()
				if c.Held() || c.unfinished() {
					t.Errorf("after O and A rolled back: Held=%v unfinished=%v finishing=%v (A=%p O=%p)", c.Held(), c.unfinished(), fin, a, o)
				}
				if ccExists(fsys, c.New) {
					t.Errorf("the new file %s of a rolled-back change stays", c.New)
				}
				if !ccExists(fsys, old.New) {
					t.Errorf("old file %s deleted", old.New)
				}
			})
		}
	}
}

// Q2, worst case: c is made in the outermost scope R (Replace old ->
// new); savepoint A (inside savepoint O) writes its path (AddClaimed); A's
// Rollback races O's and loses (the row names old again); R commits
// without writing the path again. O's Rollback must leave the undone
// record, so that R keeps both files, as in the control (once A's mark,
// which its losing end did not remove, made undo skip the record, and R's
// Commit deleted the old file the committed row names).
func TestReleaseS14LosingChildEndSuppressesUndoneOldDeleted(t *testing.T) {
	for _, when := range []string{"control", "after", "during"} {
		t.Run(when, func(t *testing.T) {
			g := newCCGate(t)
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
			rctx, root := NewScope(ctx)
			c, err := f.Replace(rctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			octx, o := NewScope(rctx)
			actx, a := NewScope(octx)
			if err := a.AddClaimed(c); err != nil { // a statement in A wrote c's path
				t.Fatal(err)
			}
			newer, err := f.Save(octx, ccPNG("newer")) // O rolls it back first
			if err != nil {
				t.Fatal(err)
			}
			s14Lose(t, g, when, ActionDelete, newer.New,
				func() Result { return o.Rollback(octx) },
				func() Result { return a.Rollback(actx) })
			c.mu.Lock()
			fin, undone := slices.Clone(c.finishing), slices.Clone(c.undone)
			c.mu.Unlock()
			r := root.Commit(rctx)
			if !ccExists(fsys, old.New) {
				t.Errorf("savepoint O rolled back (row names %s), R committed: old file deleted (%+v); finishing=%v undone=%v A=%p",
					old.New, r, fin, undone, a)
			}
		})
	}
}

// Q1: R's Commit has taken its tree (R, A and B ended in one step) and
// not yet committed it (replayed: take, then commitAll, as Commit does).
// B's Commit, End(ErrCommitUnknown), Rollback and a second Commit, and
// A's Commit, then do nothing; B's change is held meanwhile, and R
// commits it.
func TestReleaseS14ReleasedChildTakenByAncestor(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	rctx, root := NewScope(ctx)
	actx, a := NewScope(rctx)
	bctx, b := NewScope(actx)
	c, err := f.Replace(bctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	changes, ok := root.take(committed) // R.Commit, up to commitAll
	if !ok {
		t.Fatal("R's take lost")
	}
	for _, step := range []struct {
		what string
		end  func() Result
	}{
		{"B.Commit", func() Result { return b.Commit(bctx) }},
		{"B.End(unknown)", func() Result { return b.End(bctx, ErrCommitUnknown) }},
		{"B.Rollback", func() Result { return b.Rollback(bctx) }},
		{"B.Commit again", func() Result { return b.Commit(bctx) }},
		{"A.Commit", func() Result { return a.Commit(actx) }},
	} {
		if r := step.end(); !ccEmpty(r) {
			t.Errorf("%s after R's take did %+v", step.what, r)
		}
	}
	if !c.Held() {
		t.Fatal("c not held while R's end is under way")
	}
	if len(changes) != 1 || changes[0] != c {
		t.Fatalf("R took %v", changes)
	}
	commitAll(ctx, changes, &Result{})
	if ccExists(fsys, old.New) || !ccExists(fsys, c.New) || c.Held() || c.unfinished() {
		t.Errorf("old %v new %v held %v unfinished %v", ccExists(fsys, old.New), ccExists(fsys, c.New), c.Held(), c.unfinished())
	}
}
