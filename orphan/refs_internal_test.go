package orphan

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// refAlphabet leans on the bytes normalise treats specially: white space
// of every kind at either end, dots, URL characters, a byte-order mark,
// Unicode spaces and letters, and separators.
var refAlphabet = []string{
	"a", "b", "x.png", "/", "//", ".", "..", "../", "./", " ", "\t", "\r", "\n", "\v", "\f",
	"?", "#", "%", "%20", "%2F", "%zz", "+", "-", "\ufeff", "\u00a0", "\u0085", "\u2003", "é", "\x00", "\xff",
	"https://cdn.example.com/media/", "HTTPS://CDN.EXAMPLE.COM/media/", "media/",
}

func randomRef(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(refAlphabet[r.IntN(len(refAlphabet))])
	}
	return b.String()
}

// TestNormaliseShortcutEqualsTheFullPath checks that normalise's shortcut
// for plain references gives exactly what the full path gives, on random
// references built from the bytes it treats specially, with and without
// prefixes to strip.
func TestNormaliseShortcutEqualsTheFullPath(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, prefixes := range [][]string{nil, {"https://cdn.example.com/media/", "media/"}} {
		f := New(nil, Paths(), Options{StripPrefixes: prefixes})
		plain := 0
		for range 200_000 {
			ref := randomRef(r)
			var got, want refForms
			f.normalise(ref, &got)
			f.normaliseAll(ref, &want)
			require.Equal(t, want, got, "%q", ref)
			if plainRef(ref) {
				plain++
			}
		}
		assert.Greater(t, plain, 10_000, "the shortcut must be exercised")
	}
	f := New(nil, Paths(), Options{})
	for _, ref := range []string{"a/x.png", "a/../x.png", "a/x.png ", " a/x.png", "a/x.png\v", "a/x.png?v=2", "a/my%20x.png", "a/x#y", "\ufeffa/x.png", "a/x.png\u00a0", ".hidden/..x"} {
		var got, want refForms
		f.normalise(ref, &got)
		f.normaliseAll(ref, &want)
		assert.Equal(t, want, got, "%q", ref)
	}
}

// FuzzNormaliseShortcut is TestNormaliseShortcutEqualsTheFullPath for the
// fuzzer.
func FuzzNormaliseShortcut(f *testing.F) {
	for _, s := range []string{"a/x.png", "a/../x", "x?v=1", " a", "a\v", "\ufeffa", "a..b", "é"} {
		f.Add(s)
	}
	fd := New(nil, Paths(), Options{})
	f.Fuzz(func(t *testing.T, ref string) {
		var got, want refForms
		fd.normalise(ref, &got)
		fd.normaliseAll(ref, &want)
		if got.over != want.over || got.cover != want.cover || !slices.Equal(want.paths, got.paths) {
			t.Fatalf("%q: shortcut %+v, full %+v", ref, got, want)
		}
	})
}

// TestCoverSetKeepsEveryKey checks the recent-key cache against a map:
// every key added is in the set, whatever the order and repetition.
func TestCoverSetKeepsEveryKey(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, distinct := range []int{1, 7, 8, 9, 40} {
		c, want := newCoverSet(), map[string]bool{}
		for range 5000 {
			k := strings.Repeat("d", 1+r.IntN(distinct))
			c.add(k)
			want[k] = true
		}
		assert.Equal(t, want, c.keys, "%d distinct keys", distinct)
	}
}

// BenchmarkLoadRefs measures loading a million references, as T3 does
// without storage: half name a shuffled tree's files, half files gone.
func BenchmarkLoadRefs(b *testing.B) {
	tr := storagetest.Tree{Files: 1_000_000}
	refs := make([]string, tr.Files)
	for i := range refs {
		if j := (i * 7919) % tr.Files; j%2 == 0 {
			refs[i] = tr.Path(j)
		} else {
			refs[i] = fmt.Sprintf("gone/%08d.png", j) // a file deleted long ago
		}
	}
	f := New(nil, Paths(refs...), Options{})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := f.loadRefs(b.Context(), nil, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNormaliseFindsTheStoredPathInURLForms: whatever a stored path holds
// ('?', '#', '%', spaces, dots, non-ASCII), a reference that names it the
// ways a web app writes one (escaped or not, behind a prefix to strip,
// with ".." detours before it, a query or fragment after it, padded) has
// it among its forms. Random paths and references, checked against the
// path they were made from.
func TestNormaliseFindsTheStoredPathInURLForms(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 17))
	segAlphabet := []string{"a", "b", "x", ".", "..", "?", "#", "%", "%20", "%zz", " ", "+", "-", "é", "what?", "c#1", "100%"}
	f := New(nil, Paths(), Options{StripPrefixes: []string{"https://cdn.example.com/media/", "/media/", "/m\u00e9dias/"}})
	checked := 0
	for range 100_000 {
		segs := make([]string, 1+r.IntN(3))
		for i := range segs {
			var b strings.Builder
			for range 1 + r.IntN(4) {
				b.WriteString(segAlphabet[r.IntN(len(segAlphabet))])
			}
			segs[i] = b.String()
		}
		stored := strings.Join(segs, "/")
		if p, err := storage.Clean(stored, false); err != nil || p != stored || strings.TrimSpace(stored) != stored {
			continue // not a stored path as a backend lists it
		}
		ref := slices.Clone(segs)
		if r.IntN(2) == 0 {
			for i := range ref {
				ref[i] = url.PathEscape(ref[i])
			}
		}
		if r.IntN(3) == 0 {
			at := r.IntN(len(ref))
			ref = slices.Insert(ref, at, "x", "..")
		}
		s := strings.Join(ref, "/")
		switch r.IntN(5) {
		case 1:
			s = "/media/" + s
		case 2:
			s = "https://cdn.example.com/media/" + s
		case 3:
			s = "/media/../media/" + s
		case 4:
			s = "/me\u0301dias/" + s // the prefix decomposed (NFD)
		}
		if r.IntN(5) == 0 {
			s = norm.NFD.String(s) // as a name written on macOS arrives
		}
		switch r.IntN(4) {
		case 1:
			s += "?v=3"
		case 2:
			s += "#top"
		case 3:
			s += "?v=3&w=4#top"
		}
		if r.IntN(4) == 0 {
			s = "  " + s + " \r"
		}
		var fs refForms
		f.normalise(s, &fs)
		require.False(t, fs.over, "%q has too many forms: %q", s, fs.paths)
		require.Contains(t, fs.paths, stored, "reference %q", s)
		checked++
	}
	assert.Greater(t, checked, 20_000)
}
