package orphan_test

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// rtParts are name parts that sort around '/' (0x2f) and each other:
// bytes below it (' ', '!', '#', '%', '&', '+', ',', '-', '.'), just
// above it ('0', ';', '=', '?'), non-ASCII, a no-break space, and a
// decomposed (NFD) name a disk may hold.
var rtParts = []string{"a", "a-b", "a.b", "a b", "a+b", "a!", "a#1", "a%20", "a?x", "a;x", "a,b", "a&b", "a=b",
	"a~", "a_", "A", "ab", "a0", "é", "e\u0301", "日本", "a\u00a0b", "\u00a0a", "b", "z"}

func rtTree(t *testing.T, fsys afero.Fs, rng *rand.Rand) (files []string) {
	t.Helper()
	old := time.Now().Add(-48 * time.Hour)
	seen := map[string]bool{}
	for range 30 + rng.IntN(40) {
		depth := 1 + rng.IntN(3)
		parts := make([]string, depth)
		for i := range parts {
			parts[i] = rtParts[rng.IntN(len(rtParts))]
		}
		p := strings.Join(parts, "/")
		if rng.IntN(2) == 0 {
			p += ".png"
		}
		clash := false
		for q := range seen {
			if strings.HasPrefix(q, p+"/") || strings.HasPrefix(p, q+"/") || q == p {
				clash = true
			}
		}
		if clash {
			continue
		}
		seen[p] = true
		storagetest.WriteFile(t, fsys, p, []byte(p), old)
		files = append(files, p)
	}
	slices.Sort(files)
	return files
}

// rtRef writes a reference to p in one of the forms that must keep it:
// a leading slash, "./", URL-escaped, behind a prefix that is stripped,
// in NFD, with backslashes. ok is false for a form that names nothing.
func rtRef(rng *rand.Rand, p string) string {
	switch rng.IntN(9) {
	case 0:
		return "/" + p
	case 1:
		return "./" + p
	case 2:
		return (&url.URL{Path: p}).EscapedPath()
	case 3:
		return "https://cdn.example.com/media/" + (&url.URL{Path: p}).EscapedPath()
	case 4:
		return "/media/" + p
	case 5:
		return norm.NFD.String(p)
	case 6:
		return strings.ReplaceAll(p, "/", `\`)
	case 7:
		return p + "   "
	}
	return p
}

// Merge mode, hash mode and the union of merge-mode shards plan alike on
// names around '/' in byte order, with references in forms whose
// normalised order differs from their raw order; no file a reference
// names is ever planned.
func TestRedteamMergeAwkwardNamesAgree(t *testing.T) {
	for seed := range uint64(12) {
		for _, b := range storagetest.LocalBackends() {
			if b.Name == "OsFs" {
				continue
			}
			t.Run(b.Name, func(t *testing.T) {
				fsys, _ := b.New(t)
				rng := rand.New(rand.NewPCG(seed, 99))
				files := rtTree(t, fsys, rng)
				var refs []string
				keep := map[string]bool{}
				for _, p := range files {
					if rng.IntN(3) > 0 {
						refs = append(refs, rtRef(rng, p))
						keep[p] = true
					}
				}
				refs = append(refs, "a/missing.png", "a-b", "a", "a/", "zz")
				rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
				base := orphan.Options{MinAge: time.Hour, MaxFraction: -1, Force: true,
					StripPrefixes: []string{"https://cdn.example.com/media/", "/media/"}}
				var bounds []string
				for range 3 {
					bounds = append(bounds, pick(rng, files, refs))
				}
				slices.Sort(bounds)
				rngs := []orphan.KeyRange{{}, {Start: bounds[0], End: bounds[2]}, {Start: "a", End: "a/"}, {Start: "a/", End: "a0"}, {Start: bounds[1]}}
				for _, r := range rngs {
					opts := base
					opts.Range = r
					hash, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
					require.NoError(t, err)
					m := opts
					m.Merge, m.TempDir = true, t.TempDir()
					merged, err := orphan.New(fsys, orphan.Paths(refs...), m).Find(t.Context())
					require.NoError(t, err)
					require.Equal(t, comparablePlan(t, hash), comparablePlan(t, merged), "seed %d range %+v", seed, r)
					for _, o := range merged.Orphans {
						assert.False(t, keep[o.Path], "seed %d: referenced %q planned", seed, o.Path)
					}
				}
				// Union of merge-mode shards at boundaries drawn from the
				// names, the references and bare prefixes.
				opts := base
				opts.Merge, opts.TempDir = true, t.TempDir()
				single, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
				require.NoError(t, err)
				sm := &orphan.ShardMap{Boundaries: bounds}
				if sm.Check() != nil || bounds[0] == "" {
					return
				}
				var union []string
				for i := range sm.Shards() {
					o := opts
					o.Range, err = sm.Range(i)
					require.NoError(t, err)
					p, err := orphan.New(fsys, orphan.Paths(refs...), o).Find(t.Context())
					require.NoError(t, err)
					union = append(union, planPaths(p)...)
				}
				slices.Sort(union)
				require.Equal(t, planPaths(single), union, "seed %d boundaries %q", seed, bounds)
			})
		}
	}
}

// The coverage guard exists to stop a run whose reference set lacks a
// query (README: "every shard reads all references, so the coverage guard
// and the empty-reference guard decide as the single run would"). Here
// the query for users.avatar is missing: avatars/ holds an old file no
// reference points into, so the single run is refused and deletes
// nothing. But the same missing column also referenced a legacy file in
// pics/. Split at "b", the shard holding pics/ sees no uncovered
// directory of its own, passes its guards, and deletes pics/legacy.png,
// which the single run (and a run with the boundary elsewhere) keeps.
func TestRedteamMergeShardBypassesCoverageRefusal(t *testing.T) {
	for _, merge := range []bool{false, true} {
		fsys := afero.NewMemMapFs()
		old := time.Now().Add(-48 * time.Hour)
		for _, p := range []string{"avatars/1.png", "pics/1.png", "pics/2.png", "pics/3.png", "pics/legacy.png"} {
			storagetest.WriteFile(t, fsys, p, []byte(p), old)
		}
		// The query that is present: posts.image. The missing one,
		// users.avatar, would have returned avatars/1.png and
		// pics/legacy.png.
		refs := orphan.Paths("pics/1.png", "pics/2.png", "pics/3.png")
		base := orphan.Options{Merge: merge, TempDir: t.TempDir()}

		single := orphan.New(fsys, refs, base)
		plan, err := single.Find(t.Context())
		require.NoError(t, err)
		require.ErrorIs(t, single.Check(plan), orphan.ErrUncovered, "the single run refuses")
		_, err = single.Apply(t.Context(), plan)
		require.ErrorIs(t, err, orphan.ErrUncovered)

		sm := &orphan.ShardMap{Boundaries: []string{"b"}}
		for i := range sm.Shards() {
			o := base
			o.Range, err = sm.Range(i)
			require.NoError(t, err)
			f := orphan.New(fsys, refs, o)
			p, err := f.Find(t.Context())
			require.NoError(t, err)
			assert.ErrorIs(t, f.Check(p), orphan.ErrUncovered, "merge=%v shard %d (%+v): the single run's coverage refusal must hold in every shard", merge, i, o.Range)
			if f.Check(p) == nil {
				_, _ = f.Apply(t.Context(), p)
			}
		}
		assert.Contains(t, storagetest.Files(t, fsys), "pics/legacy.png", "merge=%v: the sharded run deleted a file the single run refused to touch", merge)
	}
}

// Found by a red-team pass: one reference of 64 KiB of '?' took 13 s to
// normalise (each cut at a '?' read whole again), and 1 MiB about an
// hour. Such a reference now stops the run at once, in either mode, as
// one with too many forms does; a reference of a thousand '?', and a
// long one cut once or twice (inline data), are read, quickly.
func TestRedteamLongReferenceIsRefusedQuickly(t *testing.T) {
	fsys := afero.NewMemMapFs()
	storagetest.WriteFile(t, fsys, "pics/a.png", []byte("a"), time.Now().Add(-48*time.Hour))
	for _, tc := range []struct {
		ref    string
		refuse bool
	}{
		{"pics/a.png" + strings.Repeat("?", 64<<10), true},
		{strings.Repeat("\x01?", 32<<10), true},
		{"pics/a.png?" + strings.Repeat("x", 1<<20), false}, // long, cut once: read
		{"pics/a.png" + strings.Repeat("?x", 17) + strings.Repeat("x", 16<<10), true},
		{"pics/a.png" + strings.Repeat("?", 1000), false},
		{"pics/a.png?" + strings.Repeat("x", 16<<10-12), false},
	} {
		for _, merge := range []bool{false, true} {
			start := time.Now()
			_, err := orphan.New(fsys, orphan.Paths(tc.ref, "pics/a.png"), orphan.Options{Merge: merge, TempDir: t.TempDir(), MaxFraction: -1}).Find(t.Context())
			if tc.refuse {
				assert.ErrorIs(t, err, orphan.ErrAmbiguousReference, "%d bytes, merge %v", len(tc.ref), merge)
			} else {
				assert.NoError(t, err, "%d bytes, merge %v", len(tc.ref), merge)
			}
			assert.Less(t, time.Since(start), 2*time.Second, "%d bytes, merge %v", len(tc.ref), merge)
		}
	}
}

// Found by a red-team review (it failed before the fix). An avatar column that holds either a stored path or an inline image
// (data:image/png;base64,...): a data URL longer than 16 KiB names no
// stored path (a colon), and is read quickly (one cut, at its ';') and
// counted invalid. A limit on length alone refused every run for good.
func TestReviewLongDataURLDoesNotRefuseTheRun(t *testing.T) {
	fsys := afero.NewMemMapFs()
	storagetest.WriteFile(t, fsys, "pics/a.png", []byte("a"), time.Now().Add(-48*time.Hour))
	storagetest.WriteFile(t, fsys, "pics/b.png", []byte("b"), time.Now().Add(-48*time.Hour))
	dataURL := "data:image/png;base64," + strings.Repeat("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", 200)
	_, err := orphan.New(fsys, orphan.Paths("pics/a.png", dataURL), orphan.Options{TempDir: t.TempDir(), MaxFraction: -1}).Find(t.Context())
	assert.NoError(t, err, "a %d-byte data URL in a references column refuses the whole run", len(dataURL))
}
