package filefield

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spf13/afero"
)

// Rule (2) of de3656a: a savepoint's rollback must record undone against
// its own tree whoever else is finishing c: the other may be another
// tree's Rollback that will never finish c (R1 still holds it), whose own
// undone record its end clears. c is made in R1 (owned); savepoint S of
// R1 writes its path (AddClaimed) and rolls back; another transaction R2
// claimed c too and rolls back, its end under way (paused while it
// finishes a newer change, with c taken and marked as R2's) while S rolls
// back. If no undone record is left, R1's Commit deletes the old file,
// which R1's committed row names (S's write of the new path was rolled
// back). Control: R2's Rollback done before S's: both files stay.
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
				var open sync.Once
				t.Cleanup(func() { open.Do(func() { close(release) }) }) // a failure does not leave R2 blocked
				gate.Store(true)
				done := ccGo(func() { r2.Rollback(r2ctx) })
				ccWait(t, blocked, "R2's Rollback reaching c2") // R2's end has taken c and is finishing c2
				s.Rollback(sctx)
				open.Do(func() { close(release) })
				ccWait(t, done, "R2's Rollback")
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

// Rule (1): R commits while its savepoint S, in which c was made, rolls
// back, and S's sibling X, which claimed c, is open. Whichever end takes
// the tree first, c's new file stays: R first takes S and X and commits c
// (S's Rollback then does nothing); S first leaves c to X with an undone
// record, and R's commit of X keeps both files. (Once, a Rollback of S
// that read X's end in two loads, torn by R's, could see neither and
// delete the new file that X's row, committed by R, names.) The
// interleavings: each end whole before the other, S's Rollback paused in
// its loop (on a newer change) while R commits, and a stress run of the
// two ends at once.
func TestLastS14TornEndedByRead(t *testing.T) {
	type world struct {
		fsys       afero.Fs
		r, s       *Scope
		rctx, sctx context.Context
		c, newer   *Change
		g          *ccGate
	}
	build := func(t *testing.T, withGate bool) *world {
		w := &world{}
		opts := Options{}
		if withGate {
			w.g = newCCGate(t)
			opts.OnEvent = w.g.onEvent
		}
		ctx, fsys, f, _ := ccSetup(t, opts)
		w.fsys = fsys
		w.rctx, w.r = NewScope(ctx)
		w.sctx, w.s = NewScope(w.rctx)
		_, x := NewScope(w.rctx)
		var err error
		if w.c, err = f.Save(w.sctx, ccPNG("new")); err != nil {
			t.Fatal(err)
		}
		if err := x.AddClaimed(w.c); err != nil {
			t.Fatal(err)
		}
		if w.newer, err = f.Save(w.sctx, ccPNG("newer")); err != nil { // S rolls it back first
			t.Fatal(err)
		}
		return w
	}
	check := func(t *testing.T, w *world, how string) {
		t.Helper()
		if !ccExists(w.fsys, w.c.New) {
			t.Errorf("%s: new file %s deleted though R committed X, which holds c", how, w.c.New)
		}
		if w.c.unfinished() {
			t.Errorf("%s: c left pending", how)
		}
	}
	t.Run("r-first", func(t *testing.T) {
		w := build(t, false)
		w.r.Commit(w.rctx)
		w.s.Rollback(w.sctx)
		check(t, w, "R.Commit; S.Rollback")
	})
	t.Run("s-first", func(t *testing.T) {
		w := build(t, false)
		w.s.Rollback(w.sctx)
		w.r.Commit(w.rctx)
		check(t, w, "S.Rollback; R.Commit")
	})
	t.Run("r-during-s", func(t *testing.T) {
		w := build(t, true)
		w.g.arm(ActionDelete, w.newer.New)
		done := ccGo(func() { w.s.Rollback(w.sctx) })
		w.g.wait(t)
		w.r.Commit(w.rctx)
		w.g.open()
		ccWait(t, done, "S's Rollback")
		check(t, w, "S.Rollback paused, R.Commit")
	})
	t.Run("stress", func(t *testing.T) {
		for i := range 300 {
			w := build(t, false)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); w.r.Commit(w.rctx) }()
			go func() { defer wg.Done(); w.s.Rollback(w.sctx) }()
			wg.Wait()
			check(t, w, fmt.Sprint("round ", i))
			if t.Failed() {
				return
			}
		}
	})
}
