package storage

import (
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/text/unicode/norm"
)

// MatchAny reports whether the stored path p matches any of the globs
// ("**" for any number of directories). A malformed glob matches nothing;
// callers validate globs when they are configured.
func MatchAny(globs []string, p string) bool {
	for _, g := range globs {
		if ok, _ := doublestar.Match(g, p); ok {
			return true
		}
	}
	return false
}

// Protects reports whether a protected glob matches p, as written or
// without regard to case or Unicode normal form: on a case-insensitive disk (macOS, Windows) a
// row holding "pics/KEEP/x.png" names the file "pics/keep/x.png" a glob
// protects. Protecting more keeps more files, the safe direction, so
// every protection check compares so, on every backend.
func Protects(globs []string, p string) bool {
	if MatchAny(globs, p) {
		return true
	}
	lp := strings.ToLower(p)
	for _, g := range globs {
		if ok, _ := doublestar.Match(strings.ToLower(g), lp); ok {
			return true
		}
		// A glob that is not in NFC (pasted from macOS) matches as NFC,
		// as stored paths are; CheckGlobs refuses it where options are
		// checked.
		if !norm.NFC.IsNormalString(g) {
			if ok, _ := doublestar.Match(strings.ToLower(norm.NFC.String(g)), lp); ok {
				return true
			}
		}
	}
	return false
}
