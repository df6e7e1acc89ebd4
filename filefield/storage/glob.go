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

// Protects reports whether a protected glob matches p or a directory p
// is in ("receipts" protects "receipts/2024/a.pdf", as an operator who
// writes it means), as written or without regard to case or Unicode
// normal form: on a case-insensitive disk (macOS, Windows) a row holding
// "pics/KEEP/x.png" names the file "pics/keep/x.png" a glob protects.
// Protecting more keeps more files, the safe direction, so every
// protection check compares so, on every backend.
func Protects(globs []string, p string) bool {
	if len(globs) == 0 {
		return false
	}
	if protects(globs, p) {
		return true
	}
	for k, g := range globs {
		if g == "**" || strings.HasSuffix(g, "/**") {
			continue // it matches p if it matches a directory p is in
		}
		one := globs[k : k+1]
		if !strings.Contains(g, "**") && !strings.ContainsAny(g, "{[") {
			// It matches only paths of its own number of segments: of
			// the directories p is in, one at most.
			n, i := strings.Count(g, "/")+1, -1
			for ; n > 0 && i < len(p); n-- {
				j := strings.IndexByte(p[i+1:], '/')
				if j < 0 {
					i = len(p)
					break
				}
				i += 1 + j
			}
			if n == 0 && i < len(p) && protects(one, p[:i]) {
				return true
			}
			continue
		}
		for i := len(p) - 1; i > 0; i-- {
			if p[i] == '/' && protects(one, p[:i]) {
				return true
			}
		}
	}
	return false
}

// protects reports whether a glob matches p as written or without
// regard to case or normal form.
func protects(globs []string, p string) bool {
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
