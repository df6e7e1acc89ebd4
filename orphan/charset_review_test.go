package orphan

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/text/encoding/charmap"
)

// TestReviewMisdecodedReferenceWithAQueryKeepsItsFile: a Latin-1
// connection returns "pics/caf\xe9.jpg?v=3" (or double-encoded, or
// %-escaped) for the row naming pics/café.jpg with a cache-busting query.
// The charset readings were once taken of the whole reference only, not
// of its cuts at '?', so the file was not among its forms.
func TestReviewMisdecodedReferenceWithAQueryKeepsItsFile(t *testing.T) {
	f := New(nil, Paths(), Options{StripPrefixes: []string{"/media/"}})
	latin, _ := charmap.Windows1252.NewEncoder().String("pics/café.jpg")
	twice := fromWindows1252("pics/café.jpg")
	for _, ref := range []string{
		latin,          // sanity: held
		twice,          // sanity: held
		latin + "?v=3", // Windows-1252 bytes plus a query
		twice + "?v=3", // UTF-8 encoded twice plus a query
		"/media/pics/caf%E9.jpg?v=3",
		"/media/pics/caf%E9.jpg#top",
		twice + "#top",
	} {
		var fs refForms
		f.normalise(ref, &fs)
		assert.Contains(t, fs.paths, "pics/café.jpg", "reference %q: forms %q", ref, fs.paths)
	}
}
