package orphan_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"

	"github.com/mediaclean/mediaclean/orphan"
)

// Merge and hash mode agree on references in the wrong character set.
func TestReviewMergeAgreesOnMisdecodedRefs(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	enc := charmap.Windows1252.NewEncoder()
	fsys := afero.NewMemMapFs()
	var refs []string
	for i := range 600 {
		var b strings.Builder
		fmt.Fprintf(&b, "d%d/%d-", i%4, i)
		for range 1 + r.IntN(5) {
			b.WriteRune([]rune("aéüÃ©€?#%+ ")[r.IntN(11)])
		}
		p := b.String() + ".jpg"
		put(t, fsys, p, 10, 10*day)
		switch r.IntN(5) {
		case 0:
			if s, err := enc.String(p); err == nil {
				refs = append(refs, s)
			}
		case 1:
			refs = append(refs, p+"?v=1")
		case 2:
			refs = append(refs, strings.ToUpper(p[:1])+p[1:])
		case 3:
			refs = append(refs, p)
		}
	}
	var got [2][]string
	for i, merge := range []bool{false, true} {
		f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, MaxFraction: -1, Merge: merge, TempDir: t.TempDir()})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		for _, o := range plan.Orphans {
			got[i] = append(got[i], o.Path)
		}
	}
	require.Equal(t, got[0], got[1])
	t.Logf("%d orphans", len(got[0]))
}
