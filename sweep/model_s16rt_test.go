package sweep_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// s16Refs is a fixed reference checker.
type s16Refs map[string]bool

func (r s16Refs) IsReferenced(_ context.Context, p string) (bool, error) { return r[p], nil }

var s16Segs = []string{"a", "a-b", "a.b", "a b", "[x]", "{y}", "q?", "é", "Z", "a0", "qr_codes", "keep", "x*"}
var s16Bases = []string{"1.png", "2.png", "a.jpg", "[1].png", "{2}.png", "b b.png", "é.png", "x.PNG", "bad.", ".hidden", "c:d.png", "CON.png"}

// TestS16SweepModel compares what a sweep deletes, on every local
// backend, with an independent model of the documented rules: the first
// matching rule decides; protected, excluded, invalid, referenced,
// future, young and the KeepLatest newest files stay.
func TestS16SweepModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(12) {
		for _, b := range storagetest.LocalBackends() {
			t.Run(fmt.Sprintf("%s/%d", b.Name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 1616))
				fsys, _ := b.New(t)
				type file struct {
					p   string
					mod time.Time
				}
				var all []file
				seen := map[string]bool{}
				for range 60 {
					depth := 1 + rng.IntN(3)
					var segs []string
					for range depth - 1 {
						segs = append(segs, s16Segs[rng.IntN(len(s16Segs))])
					}
					segs = append(segs, s16Bases[rng.IntN(len(s16Bases))])
					p := strings.Join(segs, "/")
					if seen[p] || slices.ContainsFunc(all, func(f file) bool {
						return strings.HasPrefix(f.p, p+"/") || strings.HasPrefix(p, f.p+"/")
					}) {
						continue
					}
					seen[p] = true
					age := time.Duration(rng.IntN(40)-3) * day
					if rng.IntN(10) == 0 {
						age = 7 * day // exactly the boundary
					}
					mod := now.Add(-age)
					storagetest.WriteFile(t, fsys, p, []byte("x"), mod)
					all = append(all, file{p, mod})
				}
				globs := []string{"**", "a/**", "qr_codes/**", "**/*.png", "*/[x]/**", "{a,Z}/*", "a?b/**", "**/\\[1\\].png", "keep/**", "é/**"}
				var rules []sweep.Rule
				for range 1 + rng.IntN(3) {
					r := sweep.Rule{Glob: globs[rng.IntN(len(globs))], MaxAge: time.Duration(1+rng.IntN(20)) * day}
					if rng.IntN(3) == 0 {
						r.KeepLatest = 1 + rng.IntN(2)
						if rng.IntN(2) == 0 {
							r.MaxAge = 0
						}
					}
					if rng.IntN(3) == 0 {
						r.Exclude = []string{globs[rng.IntN(len(globs))]}
					}
					rules = append(rules, r)
				}
				opts := sweep.Options{Rules: rules, Now: clock, TempMaxAge: -1}
				if rng.IntN(2) == 0 {
					opts.Protected = []string{[]string{"keep", "a/[x]", "**/2.png", "Z/*"}[rng.IntN(4)]}
				}
				refs := s16Refs{}
				for _, f := range all {
					if rng.IntN(6) == 0 {
						refs[f.p] = true
					}
				}
				opts.Refs = refs
				if sweep.CheckOptions(opts) != nil {
					// Refused rules (a rule another shadows): New panics,
					// having touched nothing.
					require.Panics(t, func() { sweep.New(fsys, opts) })
					for _, f := range all {
						_, err := fsys.Stat(f.p)
						require.NoError(t, err, f.p)
					}
					return
				}
				// The model.
				want := map[string]bool{}
				type gk struct {
					rule int
					dir  string
				}
				groups := map[gk][]file{}
				for _, f := range all {
					ri := -1
					for i, r := range rules {
						if ok, _ := doublestar.Match(r.Glob, f.p); ok {
							ri = i
							break
						}
					}
					if ri < 0 || storage.ValidPath(f.p) != nil || storage.Protects(opts.Protected, f.p) || storage.Protects(rules[ri].Exclude, f.p) {
						continue
					}
					if rules[ri].KeepLatest > 0 {
						k := gk{ri, path.Dir(f.p)}
						groups[k] = append(groups[k], f)
						continue
					}
					if !f.mod.After(now) && storage.OlderThan(now, f.mod, rules[ri].MaxAge) {
						want[f.p] = true
					}
				}
				for k, g := range groups {
					slices.SortFunc(g, func(a, b file) int {
						if c := b.mod.Compare(a.mod); c != 0 {
							return c
						}
						return strings.Compare(a.p, b.p)
					})
					kept := 0
					for _, f := range g {
						if f.mod.After(now) {
							continue
						}
						if kept < rules[k.rule].KeepLatest {
							kept++
							continue
						}
						if rules[k.rule].MaxAge == 0 || storage.OlderThan(now, f.mod, rules[k.rule].MaxAge) {
							want[f.p] = true
						}
					}
				}
				for p := range refs {
					delete(want, p)
				}
				before := map[string]bool{}
				for _, p := range files(t, fsys) {
					before[p] = true
				}
				rep, err := sweep.New(fsys, opts).Sweep(t.Context())
				require.NoError(t, err)
				after := map[string]bool{}
				for _, p := range files(t, fsys) {
					after[p] = true
				}
				var got []string
				for p := range before {
					if !after[p] {
						got = append(got, p)
					}
				}
				var exp []string
				for p := range want {
					exp = append(exp, p)
				}
				slices.Sort(got)
				slices.Sort(exp)
				require.Equal(t, exp, got, "rules %+v protected %q", rules, opts.Protected)
				require.Equal(t, len(got), rep.Deleted.Files, "report")
			})
		}
	}
}
