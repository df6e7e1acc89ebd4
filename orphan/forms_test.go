package orphan_test

import (
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
)

// Forms gives the stored paths a reference may name, its own readings
// first; none for a reference that names no stored path.
func TestFormsOfAReference(t *testing.T) {
	t.Parallel()
	f := orphan.New(afero.NewMemMapFs(), orphan.Paths(), orphan.Options{StripPrefixes: []string{"https://cdn.example.com/media/"}})
	assert.Equal(t, []string{"pics/a.jpg"}, f.Forms("pics/a.jpg"))
	url := f.Forms("https://cdn.example.com/media/pics/a.jpg?v=3")
	assert.Equal(t, "pics/a.jpg?v=3", url[0], "its own reading first: a name may hold '?'")
	assert.Contains(t, url, "pics/a.jpg", "then the path cut at the query")
	assert.Contains(t, f.Forms(`"pics/say ""hi"".jpg"`), `pics/say "hi".jpg`)
	assert.Empty(t, f.Forms("../etc/passwd"))
	assert.Empty(t, f.Forms("\x00"))
}

// ReferenceSet.Uncovered names the directories of the given paths into
// which no valid reference points, as the coverage guard would, leaving
// out what Options.Unreferenced declares: what a sweep with references
// asks before deleting by age.
func TestReferenceSetUncovered(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	refs := orphan.Paths("pics/a.jpg", "qr/1/x.png")
	set, err := orphan.New(fsys, refs, orphan.Options{}).LoadReferences(t.Context())
	require.NoError(t, err)
	paths := []string{"qr/2/y.png", "docs/d.pdf", "pics/b.jpg", "tmp/t.bin", "docs/e.pdf"}
	assert.Equal(t, []string{"docs", "tmp"}, set.Uncovered(paths))
	set, err = orphan.New(fsys, refs, orphan.Options{Unreferenced: []string{"tmp/**"}, CoverageDepth: 2}).LoadReferences(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"docs", "qr/2"}, set.Uncovered(paths), "a file at the top of docs has docs as its key")
	assert.Empty(t, set.Uncovered(nil))
}
