package rootfs_test

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// TestSortedListingRandomTrees lists random trees, wide and deep enough
// that the walk reads many directories ahead, in byte order, and checks
// against a model: the sorted listing is the unsorted one sorted; skipping
// a directory leaves out exactly what is below it; stopping, cancelling
// ends the listing with that error and leaves no goroutine and no handle behind.
func TestSortedListingRandomTrees(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	segs := []string{"a", "a-b", "a.b", "a0", "ab", "b", "A", "\u00e9", "e", "a b", "a+b", "z~"}
	before := goleak.IgnoreCurrent()
	for round := range 6 {
		dir := t.TempDir()
		var want []string
		taken := map[string]bool{} // paths used by a file, or by a directory
		for range 150 + r.IntN(250) {
			depth := 1 + r.IntN(4)
			var parts []string
			for range depth {
				parts = append(parts, segs[r.IntN(len(segs))])
			}
			p := strings.Join(parts, "/")
			clash := taken[p]
			for i := 1; i < len(parts) && !clash; i++ {
				clash = slices.Contains(want, strings.Join(parts[:i], "/"))
			}
			if clash {
				continue
			}
			for i := 1; i < len(parts); i++ {
				taken[strings.Join(parts[:i], "/")] = true
			}
			taken[p] = true
			want = append(want, p)
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(strconv.Itoa(round)), 0o644))
		}
		slices.Sort(want)
		rfs, err := rootfs.New(dir)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rfs.Close() })
		list := func(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) ([]string, error) {
			got := []string{}
			err := storage.List(ctx, rfs, opts, func(e storage.Entry) error {
				if err := fn(e); err != nil {
					return err
				}
				if e.Type.IsRegular() {
					got = append(got, e.Path)
				}
				return nil
			})
			return got, err
		}
		pass := func(storage.Entry) error { return nil }

		got, err := list(t.Context(), storage.ListOptions{Sorted: true}, pass)
		require.NoError(t, err)
		require.Equal(t, want, got, "round %d", round)
		got, err = list(t.Context(), storage.ListOptions{Sorted: true, Measure: func(string) bool { return false }}, pass)
		require.NoError(t, err)
		require.Equal(t, want, got, "round %d, names only", round)

		// Skip random directories.
		skipped := map[string]bool{}
		got, err = list(t.Context(), storage.ListOptions{Sorted: true}, func(e storage.Entry) error {
			if e.Type.IsDir() && r.IntN(4) == 0 {
				skipped[e.Path] = true
				return fs.SkipDir
			}
			return nil
		})
		require.NoError(t, err)
		kept := slices.DeleteFunc(slices.Clone(want), func(p string) bool {
			for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
				if skipped[d] {
					return true
				}
			}
			return false
		})
		require.Equal(t, kept, got, "round %d, skipping %d directories", round, len(skipped))

		// Stop at a random entry, by error and by cancelling.
		stop, n := errors.New("stop"), r.IntN(len(want))
		got, err = list(t.Context(), storage.ListOptions{Sorted: true}, func(e storage.Entry) error {
			if e.Type.IsRegular() && e.Path == want[n] {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop)
		require.Equal(t, want[:n], got)
		ctx, cancel := context.WithCancel(t.Context())
		n = r.IntN(len(want) - 1) // not the last: a listing cancelled after its last entry is complete
		got, err = list(ctx, storage.ListOptions{Sorted: true}, func(e storage.Entry) error {
			if e.Type.IsRegular() && e.Path == want[n] {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, want[:n+1], got, "entries after the cancel")

	}
	goleak.VerifyNone(t, before)
}
