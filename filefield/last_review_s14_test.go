package filefield

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Rule (2) of de3656a: undo(s) skips the undone record while a live mark
// of another tree's end is on c. That end may be a Rollback that will
// never finish c (R1 still holds it: heldElsewhere), and its own undone
// record is wiped by its clearMarks. c is made in R1 (owned); savepoint
// S of R1 writes its path (AddClaimed) and rolls back; another
// transaction R2 claimed c too and rolls back, its end under way (it is
// finishing a newer change) while S rolls back. No undone mark is left;
// R1's Commit deletes the old file, which R1's committed row names (S's
// write of the new path was rolled back). Control: R2's Rollback done
// before S's: both files stay.
func TestLastS14OtherTreeRollbackSuppressesUndone(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "control", true: "race"}[race], func(t *testing.T) {
			var c2Path atomic.Value
			c2Path.Store("")
			var gate atomic.Bool
			blocked, release := make(chan struct{}), make(chan struct{})
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
				if gate.Load() && e.Action == ActionDelete && e.Path == c2Path.Load() {
					close(blocked)
					<-release
				}
			}})
			r1ctx, r1 := NewScope(ctx)
			c, err := f.Replace(r1ctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			sctx, s := NewScope(r1ctx)
			if err := s.AddClaimed(c); err != nil {
				t.Fatal(err)
			}
			r2ctx, r2 := NewScope(ctx)
			if err := r2.AddClaimed(c); err != nil {
				t.Fatal(err)
			}
			c2, err := f.Save(r2ctx, ccPNG("c2")) // newer: R2 rolls it back first
			if err != nil {
				t.Fatal(err)
			}
			c2Path.Store(c2.New)
			if race {
				gate.Store(true)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); r2.Rollback(r2ctx) }()
				<-blocked // R2's end has marked c and is finishing c2
				s.Rollback(sctx)
				close(release)
				wg.Wait()
			} else {
				r2.Rollback(r2ctx)
				s.Rollback(sctx)
			}
			c.mu.Lock()
			undone := len(c.undone)
			c.mu.Unlock()
			r1.Commit(r1ctx)
			if !ccExists(fsys, old.New) {
				t.Errorf("old file %s deleted by R1's commit, though S's write of the new path rolled back (undone marks before the commit: %d)", old.New, undone)
			}
			if !ccExists(fsys, c.New) {
				t.Errorf("new file %s deleted", c.New)
			}
		})
	}
}

// Rule (1): finishedElsewhere reads x.endedBy then x.end, while takeTree
// stores endedBy then end: a read of endedBy before R's takeTree reaches
// x and of end after it sees neither (nil, endOver), so R's mark does not
// count for S although R commits c through x. S (c is its own) rolls c
// back and deletes the new file that x's row, committed by R, names.
// The window is two adjacent atomic loads: this stress run rarely if
// ever hits it; it reports a hit as a failure.
func TestLastS14TornEndedByRead(t *testing.T) {
	const rounds = 3000
	for i := 0; i < rounds; i++ {
		ctx, fsys, f, _ := ccSetup(t, Options{})
		rctx, r := NewScope(ctx)
		sctx, s := NewScope(rctx)
		_, x := NewScope(rctx)
		c, err := f.Save(sctx, ccPNG("new"))
		if err != nil {
			t.Fatal(err)
		}
		if err := x.AddClaimed(c); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); r.Commit(rctx) }()
		go func() { defer wg.Done(); s.Rollback(sctx) }()
		wg.Wait()
		c.mu.Lock()
		st := c.state
		c.mu.Unlock()
		if st == rolledBack && !ccExists(fsys, c.New) {
			// R took x (x pending when R's takeTree reached it) yet c rolled back.
			x.mu.Lock()
			xs := x.state
			x.mu.Unlock()
			if xs == committed && x.endedBy.Load() == r {
				t.Fatalf("round %d: new file %s deleted though R committed x, which holds c", i, c.New)
			}
		}
	}
}
