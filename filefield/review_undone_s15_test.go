package filefield

import (
	"context"
	"testing"
)

// Review of 3c6dbe8 (undoneCounts read against tree.rolledBack). Both
// tests failed on 3c6dbe8 and pass since the exception became "the tree
// c was first registered in" (c.scope.tree == t, owned or not).
//
// The tree-made exception (c.owned && c.scope.tree == t) did not cover
// an upload stored with no scope and added to the transaction that writes
// its row (Scope.Add, the documented pattern for "an upload stored
// before the transaction began"): owned stays false. So B's record on
// such a change never counts once B's root rolled back, though B's
// rollback restored row X to the change's OLD path.
//
// Before 3c6dbe8, a record that a savepoint of B made after B's root
// Rollback had run clearMarks stayed for good, and kept old at A's
// commit. Now it is read against rolledBack and A's commit deletes old.
// The interleaving below is made deterministic by running B's root
// Rollback from OnEvent, inside the savepoint's Rollback, between its
// take and its decision on c (a callback may use the field's scopes).

// TestReviewUndoneSavepointRecordAfterRootRollback: regression of
// 3c6dbe8 (b220714 keeps old; 3c6dbe8 deletes it).
func TestReviewUndoneSavepointRecordAfterRootRollback(t *testing.T) {
	var hook func(Event)
	ctx, fsys, f, oldc := ccSetup(t, Options{OnEvent: func(e Event) {
		if hook != nil {
			hook(e)
		}
	}})
	old := oldc.New
	c, err := f.Replace(ctx, old, ccPNG("new")) // upload stored before B began; row X holds old
	if err != nil {
		t.Fatal(err)
	}
	bctx, rb := NewScope(ctx)
	spctx, sp := NewScope(bctx)
	if _, err := sp.Add(c, nil); err != nil { // in B's savepoint: row X := new
		t.Fatal(err)
	}
	c2, err := f.Save(spctx, ccPNG("other")) // a later change of the savepoint, rolled back first
	if err != nil {
		t.Fatal(err)
	}
	_, ra := NewScope(ctx)
	if err := ra.AddClaimed(c); err != nil { // A: row Y := new
		t.Fatal(err)
	}
	done := false
	hook = func(e Event) {
		if done || e.Action != ActionDelete || e.Path != c2.New {
			return
		}
		done = true
		// B's transaction rolls back whole while its savepoint's end is
		// still finishing: row X holds old again.
		rb.Rollback(context.Background())
	}
	sp.Rollback(ctx) // c2 first (newest), then c: left to A with B's record
	if !done {
		t.Fatal("hook did not run")
	}
	hook = nil
	ra.Commit(ctx)
	if !ccExists(fsys, c.New) {
		t.Error("A committed row Y with the new path, and it was deleted")
	}
	if !ccExists(fsys, old) {
		t.Errorf("B rolled back, so row X holds %s again; A's commit deleted it", old)
	}
}

// TestReviewUndoneAddedUploadSerial: the same gap in serial order, which
// b220714 and e93aa66 have too (clearMarks cleared the record since
// owned is false): not a regression of 3c6dbe8, but the e93aa66 scenario
// with Scope.Add instead of a change made in B's scope.
func TestReviewUndoneAddedUploadSerial(t *testing.T) {
	ctx, fsys, f, oldc := ccSetup(t, Options{})
	old := oldc.New
	c, err := f.Replace(ctx, old, ccPNG("new")) // stored before B began
	if err != nil {
		t.Fatal(err)
	}
	_, rb := NewScope(ctx)
	if _, err := rb.Add(c, nil); err != nil { // B: row X := new
		t.Fatal(err)
	}
	_, ra := NewScope(ctx)
	if err := ra.AddClaimed(c); err != nil { // A: row Y := new
		t.Fatal(err)
	}
	rb.Rollback(ctx) // row X holds old again; c left to A
	ra.Commit(ctx)
	if !ccExists(fsys, c.New) {
		t.Error("A committed row Y with the new path, and it was deleted")
	}
	if !ccExists(fsys, old) {
		t.Errorf("B rolled back, so row X holds %s again; A's commit deleted it", old)
	}
}
