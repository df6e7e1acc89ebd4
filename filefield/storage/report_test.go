package storage_test

import (
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// TestDirTallyMatchesAModel adds files in random orders, grouped and
// interleaved, and checks every directory's count against a map.
func TestDirTallyMatchesAModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var tally storage.DirTally
		want := map[string]storage.Count{}
		files := r.IntN(300)
		var paths []string
		for i := range files {
			dir := fmt.Sprintf("d%d/e%d", r.IntN(5), r.IntN(3))
			if r.IntN(4) == 0 {
				dir = "."
			}
			paths = append(paths, path.Join(dir, fmt.Sprintf("f%d.jpg", i)))
		}
		if round%2 == 0 {
			slices.Sort(paths) // grouped, as in a sorted plan
		}
		for i, p := range paths {
			tally.Add(p, int64(i))
			c := want[path.Dir(p)]
			c.Add(int64(i))
			want[path.Dir(p)] = c
		}
		got := map[string]storage.Count{}
		for _, dc := range tally.Top(0) {
			got[dc.Dir] = dc.Count
		}
		if len(want) == 0 {
			want = map[string]storage.Count{}
		}
		assert.Equal(t, want, got, "round %d", round)
	}
}
