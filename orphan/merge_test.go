package orphan_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// mergeRefs adds to refs the forms that make a reference name several
// stored paths (a URL with a query, %-escapes, a prefix to strip, padding,
// a leading space, "..") for some of files, found and missing, and
// references that name nothing valid.
func mergeRefs(rng *rand.Rand, files, refs []string) []string {
	out := slices.Clone(refs)
	for _, p := range files {
		switch rng.IntN(8) {
		case 0:
			out = append(out, p+"?v="+strconv.Itoa(rng.IntN(9)))
		case 1:
			out = append(out, "https://CDN.example.com/media/"+p)
		case 2:
			out = append(out, p+"   ")
		case 3:
			out = append(out, " "+p)
		case 4:
			out = append(out, "x/../"+p)
		}
	}
	return append(out,
		"missing%20one.png?x", "  gone.png", "../../etc/passwd", "", "bad\x00name.png",
		"a/missing.png", "a/missing.png", // twice: each reference counts
		"https://cdn.example.com/media/a/not-there.png#frag")
}

// comparable returns a plan as JSON without what differs between two runs
// that made the same plan: when and how long.
func comparablePlan(t *testing.T, p *orphan.Plan) string {
	t.Helper()
	q := *p
	q.Created, q.Duration = time.Time{}, 0
	b, err := json.MarshalIndent(&q, "", " ")
	require.NoError(t, err)
	return string(b)
}

// Merge mode, hash mode and the union of merge-mode shards make the same
// plan: the same orphans with the same sizes and ETags, the same scanned,
// kept, missing and invalid counts, the same missing list and directories,
// the same coverage verdict, over random trees of awkward names with
// references in every form, on every backend; and an Apply in merge mode
// deletes what one in hash mode would.
func TestMergeModeMakesTheHashModePlan(t *testing.T) {
	for seed := range uint64(4) {
		storagetest.ForEachBackend(t, backends, func(t *testing.T, tree afero.Fs, _ string) {
			rng := rand.New(rand.NewPCG(seed, 7))
			files, refs := randomTree(t, tree, rng)
			refs = mergeRefs(rng, files, refs)
			rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
			var dirs []string // some top-level directories of the tree
			for _, p := range files {
				if d, _, ok := strings.Cut(p, "/"); ok && !slices.Contains(dirs, d) && len(dirs) < 4 {
					dirs = append(dirs, d)
				}
			}
			for _, opts := range []orphan.Options{
				{MinAge: time.Hour, MaxFraction: -1, Force: true, StripPrefixes: []string{"https://cdn.example.com/media/"}},
				{MinAge: time.Hour, MaxFraction: -1, Force: true, Dirs: dirs, Protected: []string{"**/b.png"}, CoverageDepth: 2},
				{MinAge: -1, MaxFraction: -1, Force: true, MeasureAll: true, Shapes: []string{"a*/**", "*.png"}, Range: orphan.KeyRange{Start: "a-b", End: "b"}},
			} {
				hash, err := orphan.New(tree, orphan.Paths(refs...), opts).Find(t.Context())
				require.NoError(t, err)
				m := opts
				m.Merge, m.TempDir = true, t.TempDir()
				merged, err := orphan.New(tree, orphan.Paths(refs...), m).Find(t.Context())
				require.NoError(t, err)
				require.Equal(t, comparablePlan(t, hash), comparablePlan(t, merged), "seed %d, options %+v", seed, opts)
			}
			// The union of merge-mode shards.
			opts := orphan.Options{MinAge: time.Hour, MaxFraction: -1, Force: true, Merge: true, TempDir: t.TempDir()}
			single, err := orphan.New(tree, orphan.Paths(refs...), opts).Find(t.Context())
			require.NoError(t, err)
			var sample []string
			for range 8 {
				sample = append(sample, pick(rng, files, refs))
			}
			sm, err := orphan.NewShardMap(sample, 4)
			require.NoError(t, err)
			var union []string
			for i := range sm.Shards() {
				o := opts
				o.Range, err = sm.Range(i)
				require.NoError(t, err)
				p, err := orphan.New(tree, orphan.Paths(refs...), o).Find(t.Context())
				require.NoError(t, err)
				union = append(union, planPaths(p)...)
			}
			slices.Sort(union)
			require.Equal(t, planPaths(single), union, "seed %d, boundaries %q", seed, sm.Boundaries)

			// Apply in merge mode, after a row referencing one orphan
			// was committed: it keeps that one and deletes the rest.
			require.NotEmpty(t, single.Orphans)
			late := single.Orphans[rng.IntN(len(single.Orphans))].Path
			rep, err := orphan.New(tree, orphan.Paths(append(slices.Clone(refs), late+"?late")...), opts).Apply(t.Context(), single)
			require.NoError(t, err)
			assert.Equal(t, len(single.Orphans)-1, rep.Deleted.Files)
			assert.Equal(t, 1, rep.Kept[orphan.KeptReferenced].Files)
			left := storagetest.Files(t, tree)
			for _, o := range single.Orphans {
				assert.Equal(t, o.Path == late, slices.Contains(left, o.Path), "%q", o.Path)
			}
			assert.Len(t, left, len(files)-len(single.Orphans)+1)
		})
	}
}

// More references than one sorted run holds, so that the sort spills to
// disk and merges its runs: the plan is still hash mode's, and the
// temporary files are gone afterwards.
func TestMergeModeSpillsAndCleansUp(t *testing.T) {
	fsys := afero.NewMemMapFs()
	old := time.Now().Add(-48 * time.Hour)
	var refs []string
	for i := range 200_000 {
		p := "u/" + strconv.Itoa(i*7919%200_000) + ".png"
		if i%1000 == 0 {
			storagetest.WriteFile(t, fsys, p, nil, old)
			storagetest.WriteFile(t, fsys, "u/"+strconv.Itoa(i)+"-orphan.png", nil, old)
		}
		refs = append(refs, p, p+"?v=1")
	}
	opts := orphan.Options{MaxFraction: -1}
	hash, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
	require.NoError(t, err)
	tmp := t.TempDir()
	opts.Merge, opts.TempDir = true, tmp
	before := goleak.IgnoreCurrent()
	merged, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
	require.NoError(t, err)
	goleak.VerifyNone(t, before)
	// Over 10,000 missing references, the list holds the first 10,000
	// in byte order, in both modes.
	assert.Len(t, merged.Missing, 10_000)
	assert.True(t, slices.IsSorted(merged.Missing))
	assert.Equal(t, comparablePlan(t, hash), comparablePlan(t, merged))
	assert.Equal(t, 200, merged.Scanned.Files-len(merged.Orphans))
	assert.Len(t, merged.Orphans, 200)
	assert.Equal(t, 400_000-200*2, merged.MissingCount)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "temporary files left behind")
}

// sortedLister lists the files it was given in the order given, sorted or
// not, as a backend claiming byte order might.
type sortedLister struct {
	afero.Fs
	order []string
}

func (s *sortedLister) ListFiles(_ context.Context, _ storage.ListOptions, fn func(storage.Entry) error) error {
	for _, p := range s.order {
		fi, err := s.Stat(p)
		if err != nil {
			return err
		}
		if err := fn(storage.Entry{Path: p, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Whatever breaks merge mode fails the run and deletes nothing: a listing
// out of byte order, a provider that fails midway, a temporary directory
// that cannot be written, a cancelled context. No goroutine is left.
func TestMergeModeFailsClosed(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour)
	mem := afero.NewMemMapFs()
	for _, p := range []string{"a-b/1.png", "a/2.png", "a/3.png", "b/4.png"} {
		storagetest.WriteFile(t, mem, p, nil, old)
	}
	opts := orphan.Options{MaxFraction: -1, Merge: true, TempDir: t.TempDir()}
	before := goleak.IgnoreCurrent()

	// A backend that sorts a directory by its bare name.
	bad := &sortedLister{Fs: mem, order: []string{"a/2.png", "a/3.png", "a-b/1.png", "b/4.png"}}
	_, err := orphan.New(bad, orphan.Paths("b/4.png"), opts).Find(t.Context())
	require.ErrorIs(t, err, storage.ErrUnsorted)
	good := &sortedLister{Fs: mem, order: []string{"a-b/1.png", "a/2.png", "a/3.png", "b/4.png"}}
	plan, err := orphan.New(good, orphan.Paths("b/4.png"), opts).Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, 3)

	// A provider failing midway.
	boom := errors.New("connection reset")
	failing := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
		for i := range 100_000 {
			if err := fn("a/" + strconv.Itoa(i) + ".png"); err != nil {
				return err
			}
		}
		return boom
	})
	_, err = orphan.New(mem, failing, opts).Find(t.Context())
	require.ErrorIs(t, err, orphan.ErrProvider)
	require.ErrorIs(t, err, boom)
	rep, err := orphan.New(mem, failing, opts).Apply(t.Context(), plan)
	require.ErrorIs(t, err, orphan.ErrProvider)
	assert.Zero(t, rep.Deleted.Files)

	// A temporary directory that cannot hold the sorted runs.
	many := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
		for i := range 300_000 {
			if err := fn("a/" + strconv.Itoa(i) + ".png"); err != nil {
				return err
			}
		}
		return nil
	})
	noDir := opts
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	noDir.TempDir = filepath.Join(file, "dir") // below a file: not a directory
	_, err = orphan.New(mem, many, noDir).Find(t.Context())
	require.Error(t, err)
	rep, err = orphan.New(mem, many, noDir).Apply(t.Context(), plan)
	require.Error(t, err)
	assert.Zero(t, rep.Deleted.Files)

	// Cancelled while the references stream.
	ctx, cancel := context.WithCancel(t.Context())
	cancelling := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
		for i := range 300_000 {
			if i == 150_000 {
				cancel()
			}
			if err := fn("a/" + strconv.Itoa(i) + ".png"); err != nil {
				return err
			}
		}
		return nil
	})
	_, err = orphan.New(mem, cancelling, opts).Find(ctx)
	require.ErrorIs(t, err, context.Canceled)

	assert.Equal(t, []string{"a-b/1.png", "a/2.png", "a/3.png", "b/4.png"}, storagetest.Files(t, mem))
	goleak.VerifyNone(t, before)
}

// A provider that panics in merge mode reaches the caller and leaves no
// sorter goroutine behind.
func TestMergeModeProviderPanicLeavesNothing(t *testing.T) {
	mem := afero.NewMemMapFs()
	storagetest.WriteFile(t, mem, "a/1.png", nil, time.Now().Add(-48*time.Hour))
	before := goleak.IgnoreCurrent()
	panicky := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
		for i := range 100_000 {
			if err := fn("a/" + strconv.Itoa(i) + ".png"); err != nil {
				return err
			}
		}
		panic("provider bug")
	})
	f := orphan.New(mem, panicky, orphan.Options{MaxFraction: -1, Merge: true, TempDir: t.TempDir()})
	assert.PanicsWithValue(t, "provider bug", func() { _, _ = f.Find(t.Context()) })
	goleak.VerifyNone(t, before)
	assert.Equal(t, []string{"a/1.png"}, storagetest.Files(t, mem))
}
