package orphan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSortByPathSortsAsOneSortWould checks the parallel sort against
// slices.SortFunc, on sizes around its split threshold, for random,
// sorted, reversed and constant inputs, and any number of workers; every
// orphan must come out exactly once, with its own size.
func TestSortByPathSortsAsOneSortWould(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	for _, n := range []int{0, 1, 100, 1<<14 - 1, 1 << 14, 50_000} {
		for _, order := range []string{"random", "sorted", "reversed", "same", "few"} {
			for _, workers := range []int{1, 2, 3, 8} {
				in := make([]Orphan, n)
				for i := range in {
					p := fmt.Sprintf("d%03d/%08d.jpg", r.IntN(300), r.IntN(1<<30))
					switch order {
					case "same":
						p = "a/x.jpg"
					case "few":
						p = fmt.Sprintf("d/%d", r.IntN(3))
					}
					in[i] = Orphan{Path: p, Size: int64(i)}
				}
				byPath := func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) }
				switch order {
				case "sorted":
					slices.SortFunc(in, byPath)
				case "reversed":
					slices.SortFunc(in, func(a, b Orphan) int { return byPath(b, a) })
				}
				want := slices.Clone(in)
				slices.SortStableFunc(want, func(a, b Orphan) int {
					if c := byPath(a, b); c != 0 {
						return c
					}
					return int(a.Size - b.Size)
				})
				got := slices.Clone(in)
				sortByPath(got, workers)
				require.True(t, slices.IsSortedFunc(got, byPath), "%d %s %d: not sorted", n, order, workers)
				slices.SortStableFunc(got, func(a, b Orphan) int { // ties in any order
					if c := byPath(a, b); c != 0 {
						return c
					}
					return int(a.Size - b.Size)
				})
				require.Equal(t, want, got, "%d %s %d", n, order, workers)
			}
		}
	}
}
