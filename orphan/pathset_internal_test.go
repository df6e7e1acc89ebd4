package orphan

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPathSet checks the bucketed hash set against a map, over sizes that
// give one bucket, a few, and many, with duplicates spread across the
// builders, and against adversarial hashes: all in one bucket, and the
// extremes of the range.
func TestPathSet(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100, 10_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seed := maphash.MakeSeed()
			a, b := &hashes{seed: seed}, &hashes{seed: seed}
			want := map[string]bool{}
			for i := range n {
				p := fmt.Sprintf("pics/%d.jpg", i)
				want[p] = true
				a.add(p)
				if i%3 == 0 {
					b.add(p) // a duplicate in the other builder
				}
			}
			s := newPathSet(seed, a, b)
			assert.Equal(t, n, s.len(), "duplicates are dropped")
			assert.Zero(t, a.n+b.n+len(a.chunks)+len(b.chunks), "the builders were released")
			for p := range want {
				require.True(t, s.has(p), p)
				require.True(t, s.hasBytes([]byte(p)), p)
			}
			for i := range 1000 {
				p := fmt.Sprintf("pics/%d.png", i)
				assert.False(t, s.has(p), p)
			}
		})
	}
	t.Run("adversarial", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		h := &hashes{}
		in := map[uint64]bool{0: true, ^uint64(0): true}
		h.addHash(0)
		h.addHash(^uint64(0))
		for range 5000 {
			x := r.Uint64() >> 20 // all in the lowest buckets
			in[x] = true
			h.addHash(x)
			h.addHash(x)
		}
		s := newPathSet(maphash.Seed{}, h)
		assert.Equal(t, len(in), s.len())
		for x := range in {
			require.True(t, s.hasHash(x), x)
		}
		var batch []uint64
		for range 5000 {
			x := r.Uint64()
			assert.Equal(t, in[x], s.hasHash(x), x)
			batch = append(batch, x, r.Uint64()>>20)
		}
		for x := range in {
			batch = append(batch, x)
		}
		found := make([]bool, len(batch))
		s.hasHashes(batch, found)
		for i, x := range batch {
			require.Equal(t, in[x], found[i], "hasHashes disagrees with the set on %x", x)
		}
		for i := 1; i < len(s.h); i++ {
			require.Less(t, s.h[i-1], s.h[i], "sorted and unique")
		}
	})
}
