package filefield

import (
	"sync/atomic"
	"testing"
)

// A callback that panics during a scope's end does not cost the scope its
// Result: the panic comes out of Commit (or Rollback), and a later call
// returns what the end did for the changes whose finish did not panic
// (before, an empty Result). The change whose callback panicked has
// finished too (its file is gone), but its part is missing.
func TestPanickingCallbackKeepsScopeResult(t *testing.T) {
	for _, end := range []string{"commit", "rollback"} {
		t.Run(end, func(t *testing.T) {
			var boom atomic.Bool
			ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
				if e.Action == ActionDelete && boom.CompareAndSwap(true, false) {
					panic("callback")
				}
			}})
			o2, err := f.Save(ctx, ccPNG("o2"))
			if err != nil {
				t.Fatal(err)
			}
			o2.Commit(ctx)
			sctx, s := NewScope(ctx)
			if _, err := f.Replace(sctx, old.New, ccPNG("n1")); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Replace(sctx, o2.New, ccPNG("n2")); err != nil {
				t.Fatal(err)
			}
			boom.Store(true)
			run, again := s.Commit, s.Commit
			if end == "rollback" {
				run, again = s.Rollback, s.Rollback
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("the callback's panic should come out of the end")
					}
				}()
				run(ctx)
			}()
			r := again(ctx)
			if len(r.Deleted) != 1 {
				t.Fatalf("the end's Result after a panicking callback: %+v, want the file the other change deleted", r)
			}
			if ccExists(fsys, r.Deleted[0]) {
				t.Errorf("%s is reported deleted and is there", r.Deleted[0])
			}
		})
	}
}

// A root Rollback whose callback panics still makes its tree's undone
// records on the changes it took in from another transaction count no
// more, so that that transaction's commit deletes the stale file as it
// would have.
func TestPanickingCallbackStillClearsRecords(t *testing.T) {
	var boom atomic.Bool
	ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
		if e.Action == ActionDelete && boom.CompareAndSwap(true, false) {
			panic("callback")
		}
	}})
	actx, a := NewScope(ctx) // the maker's transaction
	c, err := f.Replace(actx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	bctx, b := NewScope(ctx) // a claimer that rolls back, with a file of its own
	if err := b.AddClaimed(c); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Save(bctx, ccPNG("bs")); err != nil {
		t.Fatal(err)
	}
	boom.Store(true)
	func() {
		defer func() { _ = recover() }()
		b.Rollback(ctx) // leaves c to A with a record, deletes its own upload: panics
	}()
	if boom.Load() {
		t.Fatal("the callback did not run")
	}
	a.Commit(ctx)
	if ccExists(fsys, old.New) {
		t.Error("B rolled back whole, so its record should be gone, and A's commit should delete the stale file")
	}
	if !ccExists(fsys, c.New) {
		t.Error("A's new file was deleted")
	}
}
