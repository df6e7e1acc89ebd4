package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

const tempRule = "filefield temp files"

// Sweeper removes files by age under rules. It is safe for concurrent use;
// sweeps run one at a time.
type Sweeper struct {
	fs    afero.Fs
	opts  Options
	rules []Rule
	now   func() time.Time
	mu    sync.Mutex // one sweep at a time
}

// New returns a Sweeper over fsys. It panics on a malformed rule or glob
// (an empty Glob, a rule with neither MaxAge nor KeepLatest, a negative
// value), a rule that can never apply because an earlier rule matches
// every path it matches (judged on sample paths of the later rule: a rule
// some sample escapes the earlier one with is accepted, so the check may
// refuse a rule only paths unlike any sample would reach, never accept
// one that cannot apply, except a glob with a backslash escape, a '/'
// in a class or nested braces, which it does not read), or a Dir that is not a valid stored path
// ("../x"): those are programming errors, not input. [CheckOptions]
// returns the same problems as an error, for options built from input.
func New(fsys afero.Fs, opts Options) *Sweeper {
	if err := CheckOptions(opts); err != nil {
		panic("sweep: " + err.Error())
	}
	s := &Sweeper{fs: fsys, opts: opts, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for _, r := range opts.Rules {
		if r.Name == "" {
			r.Name = r.Glob
		}
		s.rules = append(s.rules, r)
	}
	s.opts.Dir, _ = storage.Clean(opts.Dir, true)
	if s.opts.Concurrency <= 0 {
		s.opts.Concurrency = DefaultConcurrency
	}
	if s.opts.TempMaxAge == 0 {
		s.opts.TempMaxAge = DefaultTempMaxAge
	}
	if s.opts.TopDirs == 0 {
		s.opts.TopDirs = DefaultTopDirs
	}
	if s.opts.Jitter == 0 {
		s.opts.Jitter = DefaultJitter
	}
	return s
}

// CheckOptions returns what New would panic on, as an error: for options
// built from a command line or a configuration file.
func CheckOptions(opts Options) error {
	if len(opts.Rules) == 0 {
		return fmt.Errorf("no rules")
	}
	dir, err := storage.Clean(opts.Dir, true)
	if err != nil {
		return fmt.Errorf("invalid directory to sweep: %w", err)
	}
	for i, r := range opts.Rules {
		if err := storage.CheckGlobs(r.Glob); err != nil {
			return fmt.Errorf("invalid rule glob: %w", err)
		}
		switch {
		case r.MaxAge < 0 || r.KeepLatest < 0:
			return fmt.Errorf("rule %q has a negative MaxAge or KeepLatest", r.Glob)
		case r.MaxAge == 0 && r.KeepLatest == 0:
			return fmt.Errorf("rule %q has neither MaxAge nor KeepLatest: it would delete every file", r.Glob)
		}
		if err := storage.CheckGlobs(r.Exclude...); err != nil {
			return fmt.Errorf("rule %q: invalid exclude glob: %w", r.Glob, err)
		}
		for _, e := range opts.Rules[:i] {
			if covers(e.Glob, r.Glob, dir) {
				return fmt.Errorf("rule %q never applies: the earlier rule %q matches every path it matches, and the first matching rule decides a file (put the narrower rule first)", r.Glob, e.Glob)
			}
		}
	}
	if err := storage.CheckGlobs(opts.Protected...); err != nil {
		return fmt.Errorf("invalid protected glob: %w", err)
	}
	return nil
}

// covers reports whether glob a matches every path glob b matches inside
// dir ("" for the root): a is equal to b; a is "P/**" for a literal P
// that b's literal start lies inside; b has no wildcard and a matches it;
// or a matches every witness of b (matchesAllWitnesses), alternative by
// alternative. It answers false when it cannot read b.
func covers(a, b, dir string) bool {
	if a == b {
		return true
	}
	if strings.ContainsAny(b, "{}") {
		// Each alternative ("{a,b/c}" is "a" and "b/c") must be covered.
		alts, ok := expandBraces(b, 64)
		if !ok {
			// Too many to expand: samples of each alternative.
			return matchesAllWitnesses(a, b, dir)
		}
		for _, alt := range alts {
			if !covers(a, alt, dir) {
				return false
			}
		}
		return true
	}
	if !strings.ContainsAny(b, `*?[]{}\`) {
		ok, _ := doublestar.Match(a, b)
		return ok
	}
	if p, ok := strings.CutSuffix(a, "/**"); ok && !strings.ContainsAny(p, `*?[]{}\`) {
		lit := b
		if i := strings.IndexAny(b, `*?[]{}\`); i >= 0 {
			lit = b[:i]
		}
		if strings.HasPrefix(lit, p+"/") {
			return true
		}
	}
	return matchesAllWitnesses(a, b, dir)
}

// matchesAllWitnesses reports whether a matches every witness of b: the
// stored paths b matches that are made by filling each of its wildcards
// with a few different values ("*" with "", "a", "Zq-9.x" and others,
// "**" with no segment, one or two, a class with several of its
// members), one wildcard at a time and some at random. A witness a does
// not match is a path b decides, so false is then certain; true may
// refuse a rule that a path no witness shows would reach, the safe side
// for a check whose miss lets a rule delete at another rule's age. It
// answers false when it cannot read b. Only paths inside dir (a sweep's
// Options.Dir; "" for all) are witnesses: the only ones a sweep lists.
func matchesAllWitnesses(a, b, dir string) bool {
	toks, ok := globTokens(b)
	if !ok {
		return false
	}
	pick := make([]int, len(toks))
	seen := 0
	witness := func(w string) bool { // false if w escapes a
		if storage.ValidPath(w) != nil || (dir != "" && !strings.HasPrefix(w, dir+"/")) {
			return true
		}
		if ok, _ := doublestar.Match(b, w); !ok {
			return true
		}
		seen++
		ok, _ := doublestar.Match(a, w)
		return ok
	}
	try := func() bool {
		var sb strings.Builder
		for i, t := range toks {
			sb.WriteString(t.fill[pick[i]])
		}
		w := sb.String()
		return witness(w) && (dir == "" || witness(dir+"/"+w))
	}
	if !try() {
		return false
	}
	for i, t := range toks {
		for j := 1; j < len(t.fill); j++ {
			pick[i] = j
			if !try() {
				return false
			}
		}
		pick[i] = 0
	}
	r := rand.New(rand.NewPCG(uint64(len(a)), uint64(len(b))))
	for range 256 {
		for i, t := range toks {
			pick[i] = r.IntN(len(t.fill))
		}
		if !try() {
			return false
		}
	}
	return seen > 0
}

// globToken is a piece of a glob with the texts it may stand for: a
// literal's own, or a wildcard's fillers.
type globToken struct{ fill []string }

// Fillers of the wildcards, the first the most ordinary: names of
// letters, digits, dots, signs and spaces, in either case and none.
var (
	starFill      = []string{"a", "", "Zq-9.x", "é ü", "a.b.c", "_", ".x", "1", "42", "B7", "x.png"}
	globstarSegs  = []string{"a", "Zq-9.x/b_c", ".x", "1", "B/Z9", "x.png/c"}
	charProbes    = []string{"a", "Z", "0", ".", "-", "_", " ", "é", "x", "9", "+"}
	globstarInner = withEach(withNone(globstarSegs), "", "/") // "**/": segments and a slash, or none
	globstarEnd   = withEach(withNone(globstarSegs), "/", "") // "/**" at the end: a slash and segments, or none
)

// withNone is ss with "" second: the first stays the most ordinary.
func withNone(ss []string) []string {
	return append([]string{ss[0], ""}, ss[1:]...)
}

func withEach(ss []string, before, after string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if s != "" {
			s = before + s + after
		}
		out[i] = s
	}
	return out
}

// globTokens splits glob g (braces are alternatives) into tokens, and
// false if g holds a construct it does not read (an escape, a '/' in a
// class, nested braces).
func globTokens(g string) ([]globToken, bool) {
	var toks []globToken
	for i := 0; i < len(g); {
		c := g[i]
		var (
			tok globToken
			ok  = true
		)
		switch {
		case c == '\\':
			return nil, false
		case c == '*' && strings.HasPrefix(g[i:], "**") && (i == 0 || g[i-1] == '/') && (i+2 == len(g) || g[i+2] == '/'):
			if toks, i, ok = globstarTokens(g, i, toks); !ok {
				return nil, false
			}
			continue
		case c == '*':
			for i < len(g) && g[i] == '*' {
				i++
			}
			tok = globToken{fill: starFill}
		case c == '?':
			tok, i = globToken{fill: charProbes}, i+1
		case c == '[':
			tok, i, ok = classToken(g, i)
		case c == '{':
			tok, i, ok = braceToken(g, i)
		default:
			j := i
			for j < len(g) && !strings.ContainsRune(`*?[{\`, rune(g[j])) {
				j++
			}
			tok, i = globToken{fill: []string{g[i:j]}}, j
		}
		if !ok {
			return nil, false
		}
		toks = append(toks, tok)
	}
	return toks, true
}

// globstarTokens adds the globstar segment at g[i:] ("**", at a segment
// start and end) to toks: none, one or more segments. It returns the
// tokens and the index after it.
func globstarTokens(g string, i int, toks []globToken) ([]globToken, int, bool) {
	switch last := len(toks) - 1; {
	case i+2 < len(g): // "**/": the slash goes with it
		return append(toks, globToken{fill: globstarInner}), i + 3, true
	case i == 0: // "**" alone
		return append(toks, globToken{fill: globstarSegs}), i + 2, true
	default: // "x/**", which matches "x" itself too: the slash goes with it
		prev := toks[last].fill
		if len(prev) != 1 || !strings.HasSuffix(prev[0], "/") {
			return nil, 0, false
		}
		toks[last].fill = []string{strings.TrimSuffix(prev[0], "/")}
		return append(toks, globToken{fill: globstarEnd}), i + 2, true
	}
}

// classToken reads the character class at g[i:]: its fillers are the
// probes it matches and its first member. It returns the index after it.
func classToken(g string, i int) (globToken, int, bool) {
	end := strings.IndexByte(g[i+1:], ']')
	if end < 0 {
		return globToken{}, 0, false
	}
	class := g[i : i+2+end]
	if strings.Contains(class, "/") {
		return globToken{}, 0, false
	}
	var fill []string
	for _, p := range charProbes {
		if ok, _ := doublestar.Match(class, p); ok {
			fill = append(fill, p)
		}
	}
	// Its first member, for classes of letters the probes miss.
	if m := class[1:]; len(m) > 1 && m[0] != '!' && m[0] != '^' && m[0] != ']' {
		if r, _ := utf8.DecodeRuneInString(m); r != utf8.RuneError {
			fill = append(fill, string(r))
		}
	}
	if len(fill) == 0 {
		return globToken{}, 0, false
	}
	return globToken{fill: fill}, i + len(class), true
}

// braceToken reads the alternatives at g[i:] ("{a,b*}"): each
// alternative, its wildcards filled with the first and the last of their
// fillers. It returns the index after the closing brace.
func braceToken(g string, i int) (globToken, int, bool) {
	depth, j := 0, i
	for ; j < len(g); j++ {
		if g[j] == '{' {
			depth++
		} else if g[j] == '}' {
			if depth--; depth == 0 {
				break
			}
		}
	}
	if j == len(g) || strings.ContainsAny(g[i+1:j], "{}") {
		return globToken{}, 0, false
	}
	var fill []string
	for alt := range strings.SplitSeq(g[i+1:j], ",") {
		at, ok := globTokens(alt)
		if !ok {
			return globToken{}, 0, false
		}
		first, last := "", ""
		for _, t := range at {
			first, last = first+t.fill[0], last+t.fill[len(t.fill)-1]
		}
		fill = append(fill, first)
		if last != first {
			fill = append(fill, last)
		}
	}
	return globToken{fill: fill}, j + 1, true
}

// expandBraces returns the globs without braces that g's alternatives
// make ("x{a,b}" is "xa" and "xb"), at most max of them, and false if
// there are more or g is one it cannot read (an escaped brace, an
// unbalanced one).
func expandBraces(g string, max int) ([]string, bool) {
	if strings.Contains(g, `\`) {
		return nil, false
	}
	open := strings.IndexByte(g, '{')
	if open < 0 {
		return []string{g}, !strings.Contains(g, "}")
	}
	depth, start := 0, open+1
	var alts []string
	for i := open; i < len(g); i++ {
		switch g[i] {
		case '{':
			depth++
		case ',':
			if depth == 1 {
				alts, start = append(alts, g[start:i]), i+1
			}
		case '}':
			if depth--; depth > 0 {
				continue
			}
			alts = append(alts, g[start:i])
			var out []string
			for _, alt := range alts {
				more, ok := expandBraces(g[:open]+alt+g[i+1:], max-len(out))
				if !ok || len(out)+len(more) > max {
					return nil, false
				}
				out = append(out, more...)
			}
			return out, true
		}
	}
	return nil, false
}

// match returns the index of the first rule matching p, or -1.
func (s *Sweeper) match(p string) int32 {
	for i := range s.rules {
		if s.rules[i].Glob == "**" { // matches every path: skip the matcher
			return int32(i)
		}
		if ok, _ := doublestar.Match(s.rules[i].Glob, p); ok {
			return int32(i)
		}
	}
	return -1
}

// Sweep runs one sweep: it lists the tree, plans, asks Options.Approve,
// then deletes (unless DryRun). It always returns the report. The error
// is the listing's or Approve's (then nothing was deleted), ctx's, or one
// matching storage.ErrDeleteFailed when some deletions failed. Budgets are not errors: the report's
// Stopped says which was reached.
func (s *Sweeper) Sweep(ctx context.Context) (*Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	started := time.Now()
	rep := &Report{DryRun: s.opts.DryRun, Kept: storage.KeptTally{}, Started: s.now()}
	defer func() { rep.Duration = time.Since(started) }()

	plan, complete, err := s.plan(ctx, rep, started)
	if err != nil || !complete {
		// The listing failed or ran out of time: delete nothing, since the
		// plan may be incomplete.
		rep.TopDirs = []storage.DirCount{}
		return rep, err
	}
	if err := s.approve(ctx, plan, rep); err != nil {
		rep.TopDirs = []storage.DirCount{}
		return rep, err
	}
	err = s.apply(ctx, plan, rep, started)
	return rep, err
}

// approve asks Options.Approve about the plan; a refusal keeps every
// planned file (KeptRefused) and returns the hook's error, wrapped.
func (s *Sweeper) approve(ctx context.Context, plan []candidate, rep *Report) error {
	if s.opts.Approve == nil {
		return nil
	}
	paths := make([]string, len(plan))
	for i, c := range plan {
		paths[i] = c.path
	}
	slices.Sort(paths)
	err := s.opts.Approve(ctx, paths)
	if err == nil {
		return nil
	}
	for _, c := range plan {
		rep.Kept.Add(KeptRefused, c.size)
		s.event(ctx, Event{Action: ActionKeep, Path: c.path, Rule: s.ruleName(c), Reason: KeptRefused, Size: c.size})
	}
	return fmt.Errorf("sweep refused: %w", err)
}

func (s *Sweeper) event(ctx context.Context, e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
	storage.LogEvent(ctx, s.opts.Logger, "sweep", e.Action, e.Path, e.Size, e.Reason, e.Err, slog.String("rule", e.Rule))
}
