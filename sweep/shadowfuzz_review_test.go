package sweep_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/sweep"
)

var fuzzSegs = []string{"a", "b", "qr", "*", "*.png", "*.pdf", "?", "[0-9]*", "[!.]*", "*[0-9]", "{a,b}", "x-*", "*_thumb*", ".*", "*.*", "*~", "[a-z]*", "??", "???*"}

func fuzzGlob(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	var segs []string
	for range n {
		if r.IntN(5) == 0 {
			segs = append(segs, "**")
		} else {
			segs = append(segs, fuzzSegs[r.IntN(len(fuzzSegs))])
		}
	}
	return strings.Join(segs, "/")
}

// broad is the alphabet randomPathFor fills b's wildcards from.
var broad = []rune("abcxyzQRZ0123456789._-~@()+ ,'&=éüß日")

func randomPathFor(r *rand.Rand, b string) string {
	var sb strings.Builder
	for i := 0; i < len(b); {
		switch {
		case strings.HasPrefix(b[i:], "**"):
			k := r.IntN(4)
			for j := range k {
				if j > 0 {
					sb.WriteByte('/')
				}
				for range 1 + r.IntN(4) {
					sb.WriteRune(broad[r.IntN(len(broad))])
				}
			}
			i += 2
		case b[i] == '*':
			for range r.IntN(5) {
				sb.WriteRune(broad[r.IntN(len(broad))])
			}
			i++
		case b[i] == '?':
			sb.WriteRune(broad[r.IntN(len(broad))])
			i++
		case b[i] == '[':
			end := strings.IndexByte(b[i:], ']')
			sb.WriteRune(broad[r.IntN(len(broad))])
			i += end + 1
		case b[i] == '{':
			end := strings.IndexByte(b[i:], '}')
			alts := strings.Split(b[i+1:i+end], ",")
			sb.WriteString(alts[r.IntN(len(alts))])
			i += end + 1
		default:
			sb.WriteByte(b[i])
			i++
		}
	}
	p := sb.String()
	p = strings.ReplaceAll(p, "//", "/")
	p = strings.Trim(p, "/")
	return p
}

// TestReviewShadowFalseRefusals: of 20,000 random pairs of globs, none
// whose later rule is refused as shadowed has a path (drawn from a broad
// alphabet, 3000 tries) that the later glob matches and the earlier does
// not: a refusal is never wrong where a path shows it.
func TestReviewShadowFalseRefusals(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	found := 0
	for range 20000 {
		a, b := fuzzGlob(r), fuzzGlob(r)
		if a == b {
			continue
		}
		err := sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: a, MaxAge: 1}, {Glob: b, MaxAge: 2}}})
		if err == nil || !strings.Contains(err.Error(), "never applies") {
			continue
		}
		for range 3000 {
			w := randomPathFor(r, b)
			if storage.ValidPath(w) != nil {
				continue
			}
			if ok, _ := doublestar.Match(b, w); !ok {
				continue
			}
			if ok, _ := doublestar.Match(a, w); !ok {
				found++
				if found <= 25 {
					t.Errorf("refused %q then %q, but %q matches the second and not the first", a, b, w)
				}
				break
			}
		}
	}
	t.Logf("%d false refusals", found)
}
