package storage_test

import (
	"context"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// orderedFs is a backend whose listing gives entries in the order it was
// told, true or not.
type orderedFs struct {
	afero.Fs
	entries []storage.Entry
}

func (o *orderedFs) ListFiles(_ context.Context, _ storage.ListOptions, fn func(storage.Entry) error) error {
	for _, e := range o.entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func TestSortedListingThatBreaksOrderFailsClosed(t *testing.T) {
	file := func(p string) storage.Entry { return storage.Entry{Path: p} }
	dir := func(p string) storage.Entry { return storage.Entry{Path: p, Type: fs.ModeDir} }
	for _, tc := range []struct {
		name    string
		entries []storage.Entry
		bad     string // the entry refused; "" for an order that holds
		passed  int    // how many entries reach the caller before it
	}{
		{"in order", []storage.Entry{dir("a"), file("a-b"), file("a.b"), file("a/x"), file("a0")}, "", 5},
		{"directory sorted as its bare name", []storage.Entry{file("a-b"), file("a/x"), file("a.b")}, "a.b", 2},
		{"a repeat", []storage.Entry{file("a"), file("b"), file("b"), file("c")}, "b", 2},
		{"backwards at the end", []storage.Entry{file("a"), file("b"), file("c"), file("b1")}, "b1", 3},
		{"bytes, not runes or case", []storage.Entry{file("Z"), file("a"), file("\u00e9"), file("e")}, "e", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := &orderedFs{Fs: afero.NewMemMapFs(), entries: tc.entries}
			var got []string
			err := storage.List(t.Context(), fsys, storage.ListOptions{Sorted: true}, func(e storage.Entry) error {
				got = append(got, e.Path)
				return nil
			})
			if tc.bad == "" {
				require.NoError(t, err)
				assert.Len(t, got, len(tc.entries))
				return
			}
			require.ErrorIs(t, err, storage.ErrUnsorted)
			var pe *storage.PathError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.bad, pe.Path)
			var want []string
			for _, e := range tc.entries[:tc.passed] {
				want = append(want, e.Path)
			}
			assert.Equal(t, want, got, "the entries before the one out of order, and not it")
			// Unsorted, the same listing passes everything on.
			got = got[:0]
			require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error {
				got = append(got, e.Path)
				return nil
			}))
			assert.Len(t, got, len(tc.entries))
		})
	}
}

// TestCompareSiblingsOrdersFullPaths checks the property that makes a
// depth-first walk sorted: for random siblings, comparing them as
// CompareSiblings does agrees with comparing the full paths of any files
// below them.
func TestCompareSiblingsOrdersFullPaths(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	parts := []string{"a", "b", "-", ".", "/", "0", " ", "+", "\u00e9", "~", "\x7f"}
	name := func() string {
		var b strings.Builder
		for range 1 + r.IntN(4) {
			p := parts[r.IntN(len(parts))]
			if p == "/" {
				p = "_"
			}
			b.WriteString(p)
		}
		return b.String()
	}
	sign := func(c int) int { return min(max(c, -1), 1) }
	for range 20000 {
		a, b := name(), name()
		aDir, bDir := r.IntN(2) == 0, r.IntN(2) == 0
		if a == b {
			continue // a file and a directory cannot share a name
		}
		full := func(n string, dir bool) string {
			if dir {
				return n + "/" + name()
			}
			return n
		}
		fa, fb := full(a, aDir), full(b, bDir)
		require.Equal(t, sign(strings.Compare(fa, fb)), sign(storage.CompareSiblings(a, aDir, b, bDir)),
			"%q (dir %v) against %q (dir %v): full paths %q and %q", a, aDir, b, bDir, fa, fb)
	}
}
