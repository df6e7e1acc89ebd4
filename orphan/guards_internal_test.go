package orphan

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// TestGuardsAreLoadBearing (P8): each scenario deletes nothing with its
// guard on, and deletes a file that must be kept with the guard off.
func TestGuardsAreLoadBearing(t *testing.T) {
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	errDB := errors.New("connection reset")
	scenarios := []struct {
		name  string
		guard *bool
		refs  func(refs *[]string) Provider
		opts  Options
		young bool // c.jpg is young
		// between runs Find and Apply, to simulate a row committing.
		between func(refs *[]string)
	}{
		{name: "provider", guard: &guards.provider, refs: func(r *[]string) Provider {
			return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				fn("pics/a.jpg")
				return errDB // the stream breaks before b.jpg and c.jpg
			})
		}, opts: Options{MaxFraction: -1}},
		{name: "empty", guard: &guards.empty, refs: func(r *[]string) Provider { return Paths() }, opts: Options{MaxFraction: -1}},
		{name: "grace", guard: &guards.grace, refs: func(r *[]string) Provider { return Paths("pics/a.jpg", "pics/b.jpg") }, young: true},
		{name: "limits", guard: &guards.limits, refs: func(r *[]string) Provider { return Paths("pics/a.jpg") }, opts: Options{MaxFraction: 0.5}},
		{name: "recheck", guard: &guards.recheck, refs: func(r *[]string) Provider {
			return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				for _, p := range *r {
					fn(p)
				}
				return nil
			})
		}, opts: Options{MaxFraction: -1}, between: func(r *[]string) { *r = append(*r, "pics/b.jpg", "pics/c.jpg") }},
	}
	run := func(s int) (deleted int) {
		sc := scenarios[s]
		fsys := afero.NewMemMapFs()
		for _, p := range []string{"a.jpg", "b.jpg", "c.jpg"} {
			mt := old
			if p == "c.jpg" && sc.young {
				mt = now
			}
			storagetest.WriteFile(t, fsys, "pics/"+p, []byte(p), mt)
		}
		refs := []string{"pics/a.jpg"}
		prov := sc.refs(&refs)
		opts := sc.opts
		opts.Now = func() time.Time { return now }
		f := New(fsys, prov, opts)
		plan, err := f.Find(context.Background())
		if err != nil {
			return 0
		}
		if sc.between != nil {
			sc.between(&refs)
		}
		// A refused Apply still returns its report, with nothing deleted.
		rep, _ := f.Apply(context.Background(), plan)
		return rep.Deleted.Files
	}
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			with := run(i)
			*sc.guard = false
			without := run(i)
			*sc.guard = true
			if without <= with {
				t.Fatalf("guard %s: %d deleted with it, %d without: it is not load-bearing", sc.name, with, without)
			}
			if sc.name != "grace" && with != 0 {
				t.Fatalf("guard %s: %d deleted with the guard on, want 0", sc.name, with)
			}
		})
	}
}
