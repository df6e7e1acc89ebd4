package orphan_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
)

// TestReviewLatin1ReferenceWithQueryKeepsFile: the row naming
// pics/café.jpg comes back from a latin1 connection as
// "/media/pics/caf\xe9.jpg?v=3" (a cache-busting query, common in image
// URLs). The Windows-1252 reading was taken of the whole reference, never
// of its cut at '?', so the file was planned as an orphan.
func TestReviewLatin1ReferenceWithQueryKeepsFile(t *testing.T) {
	fsys := afero.NewMemMapFs()
	put(t, fsys, "pics/café.jpg", 10, 10*day)
	put(t, fsys, "pics/plain.jpg", 10, 10*day)
	put(t, fsys, "pics/orphan.jpg", 10, 10*day)
	refs := []string{"/media/pics/plain.jpg", "/media/pics/caf\xe9.jpg?v=3"}
	f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, StripPrefixes: []string{"/media/"}, MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	var got []string
	for _, o := range plan.Orphans {
		got = append(got, o.Path)
	}
	assert.Equal(t, []string{"pics/orphan.jpg"}, got, "pics/café.jpg is referenced (latin1 + query)")
}

// TestReviewBinaryColumnStillNoReferences: a provider pointed at the
// wrong column (BINARY(16) digests) returns only bytes that are not
// UTF-8. Its Windows-1252 readings (and readings cut at a '?' or '#')
// made some of them "valid" references, though none is a stored path as
// written, so the empty-set guard did not fire, and with Force all 20
// files went. Only a reference's own reading counts for the guard now.
func TestReviewBinaryColumnStillNoReferences(t *testing.T) {
	fsys := afero.NewMemMapFs()
	for i := range 20 {
		put(t, fsys, fmt.Sprintf("pics/%d.jpg", i), 10, 10*day)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var refs []string
	for range 200 {
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		refs = append(refs, string(b))
	}
	f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, MaxFraction: -1, Force: true})
	plan, err := f.Find(t.Context())
	if err == nil {
		t.Logf("references %d, invalid %d, orphans %d, uncovered %v", plan.References, plan.InvalidReferences, len(plan.Orphans), plan.Uncovered)
		_, err = f.Apply(t.Context(), plan)
	}
	require.ErrorIs(t, err, orphan.ErrNoReferences)
}
