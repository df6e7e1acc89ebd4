package orphan_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// awkward are name parts that sort around "/" and each other in byte
// order: "a" next to "a-b", "a.b", "a/x" and "a b", "+", non-ASCII.
var awkward = []string{"a", "a-b", "a.b", "a b", "a+b", "ab", "b", "é", "z", "Z", "0", "a_", "日本", "x-"}

func randomTree(t *testing.T, fsys afero.Fs, rng *rand.Rand) (files []string, refs []string) {
	t.Helper()
	old := time.Now().Add(-48 * time.Hour)
	seen := map[string]bool{}
	for range 40 + rng.IntN(40) {
		depth := 1 + rng.IntN(3)
		parts := make([]string, depth)
		for i := range parts {
			parts[i] = awkward[rng.IntN(len(awkward))]
		}
		p := strings.Join(parts, "/") + ".png"
		// A file cannot also be a directory: skip paths that would clash.
		clash := false
		for q := range seen {
			if strings.HasPrefix(q, strings.TrimSuffix(p, ".png")+"/") || strings.HasPrefix(p, strings.TrimSuffix(q, ".png")+"/") {
				clash = true
			}
		}
		if clash || seen[p] {
			continue
		}
		seen[p] = true
		storagetest.WriteFile(t, fsys, p, []byte(p), old)
		files = append(files, p)
		if rng.IntN(3) > 0 {
			refs = append(refs, p)
		}
	}
	// References to files that do not exist, some in between the others.
	refs = append(refs, "a/missing.png", "a-b/x/y.png", "zz.png")
	return files, refs
}

func planPaths(p *orphan.Plan) []string {
	var out []string
	for _, o := range p.Orphans {
		out = append(out, o.Path)
	}
	return out
}

// The union of the plans of N shards equals the plan of one run, exactly:
// the same orphans, the same scanned and kept counts, the same
// directories refused by the coverage guard, whatever the boundaries
// (drawn from the paths, between them, or equal to each other), on every
// backend.
func TestShardsUnionEqualsTheSingleRun(t *testing.T) {
	for seed := range uint64(10) {
		storagetest.ForEachBackend(t, backends, func(t *testing.T, tree afero.Fs, _ string) {
			rng := rand.New(rand.NewPCG(seed, 42))
			files, refs := randomTree(t, tree, rng)
			// Odd seeds run in merge mode, some with two levels of coverage.
			opts := orphan.Options{MinAge: time.Hour, MaxFraction: -1, Force: true, CoverageDepth: 1 + int(seed%3)/2, Merge: seed%2 == 1, TempDir: t.TempDir()}
			single, err := orphan.New(tree, orphan.Paths(refs...), opts).Find(t.Context())
			require.NoError(t, err)
			require.NotEmpty(t, single.Orphans)
			t.Logf("seed %d: %d files, %d orphans, uncovered %q", seed, len(files), len(single.Orphans), single.Uncovered)

			for _, n := range []int{1, 2, 3, 7} {
				var sample []string
				for range n * 2 {
					sample = append(sample, pick(rng, files, refs))
				}
				m, err := orphan.NewShardMap(sample, n)
				require.NoError(t, err)
				var union []string
				var scanned, kept int
				uncovered := map[string]bool{}
				for i := range m.Shards() {
					r, err := m.Range(i)
					require.NoError(t, err)
					o := opts
					o.Range = r
					p, err := orphan.New(tree, orphan.Paths(refs...), o).Find(t.Context())
					require.NoError(t, err)
					for _, path := range planPaths(p) {
						assert.True(t, r.Contains(path), "shard %d planned %q outside %+v", i, path, r)
					}
					union = append(union, planPaths(p)...)
					scanned += p.Scanned.Files
					for _, c := range p.Kept {
						kept += c.Files
					}
					for _, d := range p.Uncovered {
						uncovered[d] = true
					}
					assert.Equal(t, single.Uncovered, p.Uncovered, "seed %d, shard %d of %d: every shard's coverage guard decides as the single run's", seed, i, n)
				}
				slices.Sort(union)
				assert.Equal(t, planPaths(single), union, "seed %d, %d shards, boundaries %q", seed, n, m.Boundaries)
				assert.Equal(t, single.Scanned.Files, scanned, "every file is scanned by exactly one shard")
				var singleKept int
				for _, c := range single.Kept {
					singleKept += c.Files
				}
				assert.Equal(t, singleKept, kept)
				var u []string
				for d := range uncovered {
					u = append(u, d)
				}
				slices.Sort(u)
				assert.Equal(t, single.Uncovered, u, "the coverage guard decides as the single run")
			}
		})
	}
}

func pick(rng *rand.Rand, files, refs []string) string {
	switch rng.IntN(4) {
	case 0:
		return files[rng.IntN(len(files))]
	case 1:
		return files[rng.IntN(len(files))] + "\x00" // just after a path
	case 2:
		return refs[rng.IntN(len(refs))]
	}
	return awkward[rng.IntN(len(awkward))] // a bare prefix: between others
}

// A shard's Apply deletes nothing outside its range, even from a plan that
// names such files (a plan of another shard, or a tampered one).
func TestShardApplyKeepsWhatIsOutsideItsRange(t *testing.T) {
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		old := time.Now().Add(-48 * time.Hour)
		for _, p := range []string{"a/1.png", "a-b/2.png", "b/3.png"} {
			storagetest.WriteFile(t, fsys, p, []byte(p), old)
		}
		all := orphan.New(fsys, orphan.Paths("b/ref.png", "a/ref.png", "a-b/ref.png"), orphan.Options{MaxFraction: -1})
		plan, err := all.Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 3)
		shard := orphan.New(fsys, orphan.Paths("b/ref.png", "a/ref.png", "a-b/ref.png"), orphan.Options{MaxFraction: -1, Range: orphan.KeyRange{Start: "a/", End: "b"}})
		rep, err := shard.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files, "only a/1.png is in [a/, b)")
		assert.Equal(t, 2, rep.Kept[orphan.KeptExcluded].Files)
		assert.Equal(t, []string{"a-b/2.png", "b/3.png"}, storagetest.Files(t, fsys))
	})
}

func TestShardMap(t *testing.T) {
	m, err := orphan.NewShardMap([]string{"d", "b", "a", "c", "b"}, 3)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "c"}, m.Boundaries)
	for i, want := range []orphan.KeyRange{{End: "b"}, {Start: "b", End: "c"}, {Start: "c"}} {
		r, err := m.Range(i)
		require.NoError(t, err)
		assert.Equal(t, want, r)
	}
	_, err = m.Range(3)
	assert.ErrorIs(t, err, orphan.ErrShardMap)
	_, err = (&orphan.ShardMap{Boundaries: []string{"b", "a"}}).Range(0)
	assert.ErrorIs(t, err, orphan.ErrShardMap)
	// No sample: no boundary can be placed. An empty boundary would be
	// read as "no upper bound", making every shard the whole key space,
	// so neither NewShardMap nor a hand-written map may have one.
	_, err = orphan.NewShardMap(nil, 4)
	assert.ErrorIs(t, err, orphan.ErrShardMap)
	_, err = orphan.NewShardMap([]string{""}, 2)
	assert.ErrorIs(t, err, orphan.ErrShardMap)
	for _, b := range [][]string{{"", ""}, {"", "m"}} {
		_, err = (&orphan.ShardMap{Boundaries: b}).Range(0)
		assert.ErrorIs(t, err, orphan.ErrShardMap, "%q", b)
	}
	m, err = orphan.NewShardMap(nil, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, m.Shards())
	// Whatever the sample, even too small a one (then some shards are
	// empty), each path is in exactly one shard.
	probes := []string{"a", "a-b", "a.b", "a/x", "b", "c", "m", "z", "zz", "é", "\u00ff"}
	for _, sample := range [][]string{{"m"}, {"b", "b"}, {"a/x", "a-b"}, {"c", "a", "z", "m", "b"}} {
		for n := 1; n <= 6; n++ {
			m, err := orphan.NewShardMap(sample, n)
			require.NoError(t, err)
			for _, p := range probes {
				in := 0
				for i := range m.Shards() {
					r, err := m.Range(i)
					require.NoError(t, err)
					if r.Contains(p) {
						in++
					}
				}
				assert.Equal(t, 1, in, "%q in %d of %d shards split at %q", p, in, n, m.Boundaries)
			}
		}
	}
	err = orphan.CheckOptions(orphan.Options{Range: orphan.KeyRange{Start: "b", End: "a"}})
	assert.ErrorIs(t, err, orphan.ErrShardMap)
	assert.Equal(t, fmt.Sprint(true), fmt.Sprint(orphan.KeyRange{}.Contains("anything")))
}

// SampleReferences returns valid stored paths only, at most k, from the
// normalised references.
func TestSampleReferences(t *testing.T) {
	var refs []string
	for i := range 1000 {
		refs = append(refs, fmt.Sprintf("/media/p/%04d.png", i))
	}
	refs = append(refs, "../etc/passwd", "")
	f := orphan.New(afero.NewMemMapFs(), orphan.Paths(refs...), orphan.Options{StripPrefixes: []string{"/media/"}})
	s, err := f.SampleReferences(t.Context(), 50)
	require.NoError(t, err)
	assert.Len(t, s, 50)
	for _, p := range s {
		assert.Regexp(t, `^p/\d{4}\.png$`, p)
	}
}
