package storage

import "github.com/bmatcuk/doublestar/v4"

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
