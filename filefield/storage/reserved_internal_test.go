package storage

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestQuarantinePath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, dir, run, rest string
		ok                bool
	}{
		{"trash/.mediaclean-quarantine/r1/a/b.jpg", "trash", "r1", "a/b.jpg", true},
		{".mediaclean-quarantine/r1/b.jpg", "", "r1", "b.jpg", true},
		{"x/trash/.mediaclean-quarantine/r1/manifest.json", "x/trash", "r1", "manifest.json", true},
		{"trash/.mediaclean-quarantine/r1", "", "", "", false},
		{"trash/.mediaclean-quarantine/../a.jpg", "", "", "", false},
		{"trash/.mediaclean-quarantine/r1/../../a.jpg", "", "", "", false},
		{"trash/x.mediaclean-quarantine/r1/a.jpg", "", "", "", false},
		{"../.mediaclean-quarantine/r1/a.jpg", "", "", "", false},
		{"t/.mediaclean-quarantine/r/.mediaclean-quarantine/r/a.jpg", "", "", "", false},
		{"x.mediaclean-quarantine/.mediaclean-quarantine/r/a.jpg", "x.mediaclean-quarantine", "r", "a.jpg", true},
		{"a/.mediaclean-quarantine", "", "", "", false},
		// A name holding the reserved one twice is an ordinary name.
		{"qr/x.mediaclean-quarantine.mediaclean-quarantine/old.png", "", "", "", false},
		{"qr/.mediaclean-quarantine.mediaclean-quarantine/old.png", "", "", "", false},
		{"qr/x.mediaclean-quarantine.mediaclean-quarantine/.mediaclean-quarantine/r/a.png", "qr/x.mediaclean-quarantine.mediaclean-quarantine", "r", "a.png", true},
	} {
		dir, run, rest, ok := quarantinePath(c.p)
		assert.Equal(t, c.ok, ok, c.p)
		if c.ok {
			assert.Equal(t, []string{c.dir, c.run, c.rest}, []string{dir, run, rest}, c.p)
		}
		assert.Equal(t, strings.Contains(c.p+"/", "/.mediaclean-quarantine/") || strings.HasPrefix(c.p, ".mediaclean-quarantine/"), InQuarantine(c.p), c.p)
	}
}
