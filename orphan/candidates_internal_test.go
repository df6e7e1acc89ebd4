package orphan

import (
	"fmt"
	"hash/maphash"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCandidates: paths of every length survive the chunking, measured and
// unmeasured files mix within a block (a listing by name stats what the
// directory record did not type), and unreferenced returns exactly the
// unreferenced files with their sizes, times and ETags (an ETag too long
// to keep is dropped).
func TestCandidates(t *testing.T) {
	var c candidates
	seed := maphash.MakeSeed()
	refs := &hashes{seed: seed}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []Orphan
	var wantRefs []string
	referenced := 0
	for i := range 20_000 {
		p := fmt.Sprintf("d%d/%s%d.jpg", i%7, strings.Repeat("x", i%300), i)
		var mod time.Time
		var size int64 // an unmeasured file has neither
		if i%3 == 0 || i > 15_000 {
			mod, size = base.Add(time.Duration(i)*time.Second), int64(i)
		}
		etag := ""
		switch {
		case i%5 == 1:
			etag = fmt.Sprintf(`"%032x"`, i)
		case i%5 == 2:
			etag = fmt.Sprintf(`"%032x-%d"`, i, i%10000)
		case i == 20_000-1:
			etag = `"` + strings.Repeat("e", maxETag) + `"`
		}
		require.NoError(t, c.add(p, size, mod, etag))
		if i%2 == 0 {
			refs.add(p)
			referenced++
			wantRefs = append(wantRefs, p)
			continue
		}
		if len(etag) > maxETag {
			etag = ""
		}
		want = append(want, Orphan{Path: p, Size: size, ModTime: mod, ETag: etag})
	}
	var gotRefs []string
	got, count := c.unreferenced(newPathSet(seed, refs), func(p string, _ int64) { gotRefs = append(gotRefs, p) })
	assert.Equal(t, referenced, count.Files)
	assert.Equal(t, wantRefs, gotRefs, "every referenced file is reported, in order")
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Path, got[i].Path)
		require.Equal(t, want[i].Size, got[i].Size, want[i].Path)
		require.Equal(t, want[i].ETag, got[i].ETag, want[i].Path)
		require.True(t, want[i].ModTime.Equal(got[i].ModTime), "%s: %v vs %v", want[i].Path, want[i].ModTime, got[i].ModTime)
	}
	assert.Zero(t, c.n, "unreferenced empties the candidates")
}
