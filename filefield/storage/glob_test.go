package storage_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// A glob that no stored path can match is malformed: as a protection or
// an exclude it would protect nothing. The error names the spelling that
// matches where there is one.
func TestCheckGlobsRefusesWhatNoStoredPathMatches(t *testing.T) {
	t.Parallel()
	for g, hint := range map[string]string{
		"/defaults/**":        `"defaults/**"`,
		"./defaults/**":       `"defaults/**"`,
		"defaults/":           `"defaults/**"`,
		"a//b":                `"a/b"`,
		"a/./b":               `"a/b"`,
		"../x":                "",
		"/":                   "",
		"me\u0301dias/**":     "\"m\u00e9dias/**\"",
		`defaults\keep.png`:   `"defaults/keep.png"`,
		"defaults/** ":        `"defaults/**"`,
		"defaults /keep.png":  `"defaults/keep.png"`,
		"":                    "",
		"[":                   "",
		"defaults/{a,b":       "",
		"tmp/**/../secret/**": "",
	} {
		err := storage.CheckGlobs(g)
		assert.ErrorIs(t, err, storage.ErrBadGlob, "%q", g)
		if hint != "" && err != nil {
			assert.Contains(t, err.Error(), "did you mean "+hint, "%q", g)
		}
	}
	for _, g := range []string{"**", "**/*.png", "defaults/**", "m\u00e9dias/**", `a/\*.png`, "a/[a-z]*.png", "{a,b}/**", " lead/x"} {
		assert.NoError(t, storage.CheckGlobs(g), "%q", g)
	}
}
