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
	t.Parallel()
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	errDB := errors.New("connection reset")
	scenarios := []struct {
		name  string
		off   func(g *guards)
		refs  func(refs *[]string) Provider
		opts  Options
		young bool // c.jpg is young
		// between runs Find and Apply, to simulate a row committing.
		between func(refs *[]string)
	}{
		{name: "provider", off: func(g *guards) { g.provider = false }, refs: func(r *[]string) Provider {
			return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				fn("pics/a.jpg")
				return errDB // the stream breaks before b.jpg and c.jpg
			})
		}, opts: Options{MaxFraction: -1}},
		{name: "empty", off: func(g *guards) { g.empty = false }, refs: func(r *[]string) Provider { return Paths() }, opts: Options{MaxFraction: -1, Unreferenced: []string{"**"}}},
		{name: "grace", off: func(g *guards) { g.grace = false }, refs: func(r *[]string) Provider { return Paths("pics/a.jpg", "pics/b.jpg") }, young: true},
		{name: "limits", off: func(g *guards) { g.limits = false }, refs: func(r *[]string) Provider { return Paths("pics/a.jpg") }, opts: Options{MaxFraction: 0.5}},
		{name: "coverage", off: func(g *guards) { g.coverage = false }, refs: func(r *[]string) Provider { return Paths("docs/a.pdf") }, opts: Options{MaxFraction: -1}},
		{name: "recheck", off: func(g *guards) { g.recheck = false }, refs: func(r *[]string) Provider {
			return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				for _, p := range *r {
					fn(p)
				}
				return nil
			})
		}, opts: Options{MaxFraction: -1}, between: func(r *[]string) { *r = append(*r, "pics/b.jpg", "pics/c.jpg") }},
	}
	run := func(s int, on bool) (deleted int) {
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
		if !on {
			sc.off(&f.guards)
		}
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
			t.Parallel()
			with := run(i, true)
			without := run(i, false)
			if without <= with {
				t.Fatalf("guard %s: %d deleted with it, %d without: it is not load-bearing", sc.name, with, without)
			}
			if sc.name != "grace" && with != 0 {
				t.Fatalf("guard %s: %d deleted with the guard on, want 0", sc.name, with)
			}
		})
	}
}
