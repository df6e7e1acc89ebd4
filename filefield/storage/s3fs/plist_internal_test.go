package s3fs

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// beforeKey cuts whole characters: what it leaves is a proper prefix of
// the bound, valid UTF-8, even when the bound cuts a character.
func TestBeforeKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "", "a": "", "ab": "a", "aé": "a", "a中": "a", "😀": "", "a😀b": "a😀",
		"a\xe4\xb8": "a", "a\xe4": "a", "é\xf0\x9f\x98": "é", "\xc3": "",
	} {
		got := beforeKey(in)
		assert.Equal(t, want, got, "%q", in)
		assert.True(t, utf8.ValidString(got), "%q", in)
	}
}

// The split depth is the shallowest with directories beside the last key
// where its own holds at most half the first page, else the deepest with
// directories beside it; prefixes are grouped to parts of about partKeys
// keys; none for flat keys.
func TestSplitDepth(t *testing.T) {
	t.Parallel()
	es := func(paths ...string) []storage.Entry {
		var out []storage.Entry
		for _, p := range paths {
			out = append(out, storage.Entry{Path: p})
		}
		return out
	}
	for _, c := range []struct {
		base         string
		es           []storage.Entry
		depth, group int
	}{
		{"", es("a", "b", "c"), 0, 1},
		{"", es("d0/a", "d0/b"), 1, 500},
		{"", es("d0/a", "d0/b", "d1/a", "d1/b"), 1, 500},
		{"", es("d0/a", "d1/a", "d2/a", "d3/a"), 1, 1000},
		{"", es("u/m/1/a", "u/m/2/a"), 3, 1000},
		{"", es("u/m/x/1/2/a"), 4, 1000},
		{"u/", es("u/a/x", "u/b/x"), 1, 1000},
		{"", es("a", "b/x", "c"), 1, 333},
		// The last key is a file in a directory with subdirectories.
		{"", es("m-x/a", "m/a/1", "m/b/1", "m/c.png"), 2, 666},
		// One small directory beside the big one the page ends in.
		{"", es("m-x/a", "m/a/1", "m/a/2", "m/b/1", "m/c/1", "m/d/1"), 2, 800},
	} {
		last := strings.TrimPrefix(c.es[len(c.es)-1].Path, c.base)
		d, g := splitDepth(c.es, c.base, last, 1000)
		assert.Equal(t, []int{c.depth, c.group}, []int{d, g}, "%v", c.es)
	}
	assert.Equal(t, "a/b/", dirAt("a/b/c", 2))
	assert.Equal(t, "", dirAt("a/b", 2))
	assert.Equal(t, "", dirAt("a/b", 0))
}
