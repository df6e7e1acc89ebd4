package orphan_test

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/encoding/charmap"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// latinLetters are characters Windows-1252 has: Latin-1's letters and
// signs, and some of the ones it adds (€, œ, Š, ™, curly quotes).
var latinLetters = []rune("éèêëàâäçñüöïîôûÿßæøåÉÈÀÇÑÜÖØÅÆ£§°±µ¿¡«»€œŠšŽžŸ™‘’“”–—…")

// TestReferencesReadInTheWrongCharacterSetKeepTheirFiles stores files
// named with random Latin letters, and references each of them as a
// database connection in the wrong character set returns it: its
// Windows-1252 bytes (not UTF-8), those bytes %-escaped, or its UTF-8
// encoded a second time ("cafÃ©"); and files the application itself
// stored encoded twice, referenced by their right names. Every one is
// kept; the files no reference means, with names of the same letters,
// are still orphans, so keeping everything cannot pass.
func TestReferencesReadInTheWrongCharacterSetKeepTheirFiles(t *testing.T) {
	t.Parallel()
	enc := charmap.Windows1252.NewEncoder()
	// twice reads UTF-8 bytes as Windows-1252, as MySQL's latin1 does:
	// the five bytes Windows-1252 leaves undefined are C1 controls.
	twice := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if r := charmap.Windows1252.DecodeByte(s[i]); r != utf8.RuneError {
				b.WriteRune(r)
			} else {
				b.WriteRune(rune(s[i]))
			}
		}
		return b.String()
	}
	storagetest.ForEachBackend(t, storagetest.LocalBackends(), func(t *testing.T, fsys afero.Fs, _ string) {
		r := rand.New(rand.NewPCG(1, uint64(len(t.Name()))))
		name := func(i int) string {
			var b strings.Builder
			fmt.Fprintf(&b, "%d-", i)
			for range 1 + r.IntN(6) {
				if r.IntN(3) == 0 {
					b.WriteByte(byte('a' + r.IntN(26)))
				} else {
					b.WriteRune(latinLetters[r.IntN(len(latinLetters))])
				}
			}
			return b.String() + ".jpg"
		}
		var refs, want []string
		for i := range 400 {
			n := name(i)
			p := "pics/" + n
			switch i % 5 {
			case 0: // Windows-1252 bytes
				b, err := enc.String(p)
				require.NoError(t, err)
				refs = append(refs, b)
			case 1: // the same, %-escaped in a URL
				b, err := enc.String(n)
				require.NoError(t, err)
				refs = append(refs, "/media/pics/"+url.PathEscape(b))
			case 2: // UTF-8 read as Windows-1252 and encoded again
				refs = append(refs, twice(p))
			case 3: // stored encoded twice, referenced right
				if storage.ValidPath(twice(p)) != nil {
					continue // a C1 control, which no stored path has
				}
				p = twice(p)
				refs = append(refs, "pics/"+n)
			case 4: // no reference: an orphan
				want = append(want, p)
			}
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, StripPrefixes: []string{"/media/"}, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		var got []string
		for _, o := range plan.Orphans {
			got = append(got, o.Path)
		}
		slices.Sort(want)
		assert.Equal(t, want, got)
		// A reference that is no stored path as written (bytes that are
		// not UTF-8, a C1 control from a byte read twice) keeps its file,
		// but counts as invalid for the empty-set guard.
		invalid := 0
		for _, ref := range refs {
			if storage.ValidPath(strings.TrimPrefix(ref, "/media/")) != nil {
				invalid++
			}
		}
		assert.Positive(t, invalid)
		assert.Equal(t, invalid, plan.InvalidReferences)
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, len(want), rep.Deleted.Files)
		left, err := afero.ReadDir(fsys, "pics")
		require.NoError(t, err)
		assert.Len(t, left, len(refs), "every referenced file is still there")
	})
}

// A URL escaped twice (a template escaping an escaped URL) keeps the file
// it names once unescaped twice, and the one it names unescaped once; a
// file no reference names is still an orphan.
func TestDoublyEscapedURLKeepsItsFile(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	for _, p := range []string{"pics/my photo.jpg", "pics/my%20photo.jpg", "pics/50% off.jpg", "pics/other photo.jpg"} {
		put(t, fsys, p, 10, 10*day)
	}
	f := orphan.New(fsys, orphan.Paths("/media/pics/my%2520photo.jpg", "https://cdn.example.com/media/pics/50%2525%2520off.jpg"),
		orphan.Options{Now: clock, StripPrefixes: []string{"/media/", "https://cdn.example.com/media/"}, MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	var got []string
	for _, o := range plan.Orphans {
		got = append(got, o.Path)
	}
	assert.Equal(t, []string{"pics/other photo.jpg"}, got)
}
