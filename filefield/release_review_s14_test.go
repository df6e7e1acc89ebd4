package filefield

import (
	"context"
	"slices"
	"testing"
)

// Review of 849c96f/6277913 (released, marking copies). Interleavings are
// replayed from the parts of Scope.take, as in the other s14 reviews:
// s14Mark is take's mark, s14Lose is its takeTree losing plus the
// clean-up take does then (copied from scope.go).

func s14Mark(s *Scope) []*Change { return s.mark(s, nil) }

func s14Lose(t *testing.T, s *Scope, to int, marked []*Change) {
	t.Helper()
	if _, _, ok := s.takeTree(to, s); ok {
		t.Fatal("the child's end won")
	}
	for _, c := range marked { // as in take
		c.mu.Lock()
		if i := slices.Index(c.finishing, s); i >= 0 {
			c.finishing = slices.Delete(c.finishing, i, i+1)
		}
		c.mu.Unlock()
	}
}

// s14Entry brings c (Replace old -> new) into savepoint A of O after A's
// Rollback has marked A: "add" Saves in A (addStamped copies A.marking),
// "newscope" Saves in a child D made after the mark (NewScope copies it),
// "takeover" Saves in a child D before the mark and commits D into A
// after it (takeOver adds A.marking to the mark A's walk gave it).
func s14Entry(t *testing.T, how string, actx context.Context, a *Scope, f *Field, old string) (*Change, []*Change) {
	t.Helper()
	var c *Change
	var err error
	var marked []*Change
	switch how {
	case "add":
		marked = s14Mark(a)
		c, err = f.Replace(actx, old, ccPNG("new"))
	case "newscope":
		marked = s14Mark(a)
		dctx, _ := NewScope(actx)
		c, err = f.Replace(dctx, old, ccPNG("new"))
	case "takeover":
		dctx, d := NewScope(actx)
		c, err = f.Replace(dctx, old, ccPNG("new"))
		marked = s14Mark(a)
		d.Commit(dctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, marked
}

// Q2: savepoint A's Rollback races the outer scope O's Rollback and loses
// (O's takeTree takes A first). A change that came into A's tree after
// A's mark, through A.marking, keeps A's mark: the loser removes marks
// only from the changes its own walk saw (once each). O's Rollback then
// sees c held by A (heldElsewhere), leaves it unfinished: Held() for
// good, its new file never deleted, though every scope holding it rolled
// back.
func TestReleaseS14LosingChildEndLeavesMarkHeldForever(t *testing.T) {
	for _, how := range []string{"add", "newscope", "takeover"} {
		for _, race := range []bool{false, true} {
			t.Run(how+map[bool]string{false: "/control", true: "/race"}[race], func(t *testing.T) {
				ctx, fsys, f, old := ccSetup(t, Options{})
				octx, o := NewScope(ctx)
				actx, a := NewScope(octx)
				var c *Change
				var marked []*Change
				if race {
					c, marked = s14Entry(t, how, actx, a, f, old.New)
				} else {
					var err error
					if c, err = f.Replace(actx, old.New, ccPNG("new")); err != nil {
						t.Fatal(err)
					}
				}
				o.Rollback(octx) // wins: its takeTree takes A
				if race {
					s14Lose(t, a, rolledBack, marked) // A's Rollback: takeTree loses
				}
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
// new); savepoint A (inside savepoint O) writes its path (AddClaimed)
// after A's Rollback has marked A; O's Rollback wins over A's (the row
// names old again), R commits without writing the path again. O's
// Rollback should leave the undone mark (R then keeps both files, as the
// control shows); A's mark, which came to c through A.marking and which
// A's losing end does not remove, makes undo skip it, and R's Commit
// deletes the old file the committed row names.
func TestReleaseS14LosingChildEndSuppressesUndoneOldDeleted(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "race"}[race], func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			rctx, root := NewScope(ctx)
			c, err := f.Replace(rctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			octx, o := NewScope(rctx)
			_, a := NewScope(octx)
			var marked []*Change
			if race {
				marked = s14Mark(a) // A's Rollback: its mark
			}
			if err := a.AddClaimed(c); err != nil { // a statement in A wrote c's path
				t.Fatal(err)
			}
			o.Rollback(octx) // wins: takes A; the row names old again
			if race {
				s14Lose(t, a, rolledBack, marked)
			}
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

// Q1: R's Commit is inside its takeTree (R ended, A and B not yet taken);
// B's Commit is then released; B's End(ErrCommitUnknown), Rollback and a
// second Commit do nothing; R's takeTree (top=false) still takes B, and
// B's change is held meanwhile and committed by R.
func TestReleaseS14ReleasedChildTakenByAncestor(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	rctx, root := NewScope(ctx)
	actx, a := NewScope(rctx)
	bctx, b := NewScope(actx)
	c, err := f.Replace(bctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	marked := root.mark(root, nil)
	if len(marked) != 1 {
		t.Fatalf("marked %d", len(marked))
	}
	// First step of root.takeTree(committed, root).
	root.mu.Lock()
	root.state = committed
	root.endedBy.Store(root)
	root.end.Store(endLive)
	changes, children, written := root.changes, root.children, root.written
	root.changes, root.children, root.written = nil, nil, nil
	root.mu.Unlock()
	if r := b.Commit(bctx); len(r.Deleted) != 0 || !b.released {
		t.Fatalf("b not released: %+v", r)
	}
	b.End(bctx, ErrCommitUnknown)
	b.Rollback(bctx)
	b.Commit(bctx)
	a.Commit(actx) // released too
	if !c.Held() {
		t.Fatal("c not held while R's end is under way")
	}
	if written == nil {
		written = map[*Change]uint64{}
	}
	for _, ch := range children {
		more, stamps, ok := ch.takeTree(committed, root)
		if !ok {
			continue
		}
		for _, m := range more {
			if _, seen := written[m]; !seen {
				changes = append(changes, m)
			}
			written[m] = max(written[m], stamps[m])
		}
	}
	if len(changes) != 1 || changes[0] != c {
		t.Fatalf("R took %v", changes)
	}
	commitAll(ctx, changes)
	if ccExists(fsys, old.New) || !ccExists(fsys, c.New) || c.Held() {
		t.Errorf("old %v new %v held %v", ccExists(fsys, old.New), ccExists(fsys, c.New), c.Held())
	}
}
