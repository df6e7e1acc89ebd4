package sweep

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

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
// every path it matches, or a Dir that is not a valid stored path
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
			if covers(e.Glob, r.Glob) {
				return fmt.Errorf("rule %q never applies: the earlier rule %q matches every path it matches, and the first matching rule decides a file (put the narrower rule first)", r.Glob, e.Glob)
			}
		}
	}
	if err := storage.CheckGlobs(opts.Protected...); err != nil {
		return fmt.Errorf("invalid protected glob: %w", err)
	}
	if _, err := storage.Clean(opts.Dir, true); err != nil {
		return fmt.Errorf("invalid directory to sweep: %w", err)
	}
	return nil
}

// covers reports whether glob a surely matches every path glob b
// matches: a is equal to b; a is made of "*" and "**" segments only
// ("**", "**/*", "*/**") and b's paths have at least as many segments as
// a's "*" need (exactly as many, if a has no "**"); a is "P/**" for a
// literal P that b's literal start lies inside; or b has no wildcard and
// a matches it. It answers false when it cannot tell.
func covers(a, b string) bool {
	if a == b {
		return true
	}
	if strings.ContainsAny(b, "{}") {
		// Each alternative ("{a,b/c}" is "a" and "b/c") must be covered.
		alts, ok := expandBraces(b, 64)
		if !ok {
			return false
		}
		for _, alt := range alts {
			if !covers(a, alt) {
				return false
			}
		}
		return true
	}
	if !strings.ContainsAny(b, `*?[]{}\`) {
		ok, _ := doublestar.Match(a, b)
		return ok
	}
	if stars, globstar, ok := onlyStars(a); ok {
		n := segments(b)
		if globstar {
			return n >= stars
		}
		// Exactly stars segments, as every path of b has if b has no "**".
		return n == stars && n == strings.Count(b, "/")+1
	}
	p, ok := strings.CutSuffix(a, "/**")
	if !ok || strings.ContainsAny(p, `*?[]{}\`) {
		return false
	}
	lit := b
	if i := strings.IndexAny(b, `*?[]{}\`); i >= 0 {
		lit = b[:i]
	}
	return strings.HasPrefix(lit, p+"/")
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

// onlyStars reports whether glob g is made of "*" and "**" segments only,
// with how many "*" segments and whether any "**".
func onlyStars(g string) (stars int, globstar, ok bool) {
	for seg := range strings.SplitSeq(g, "/") {
		switch seg {
		case "*":
			stars++
		case "**":
			globstar = true
		default:
			return 0, false, false
		}
	}
	return stars, globstar, true
}

// segments is the fewest segments a path glob g matches can have: its
// segments other than "**", which may match none.
func segments(g string) int {
	n := 0
	for seg := range strings.SplitSeq(g, "/") {
		if seg != "**" {
			n++
		}
	}
	return n
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

// Sweep runs one sweep: it lists the tree, plans, then deletes (unless
// DryRun). It always returns the report. The error is the listing's (then
// nothing was deleted), ctx's, or one matching storage.ErrDeleteFailed
// when some deletions failed. Budgets are not errors: the report's
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
	err = s.apply(ctx, plan, rep, started)
	return rep, err
}

func (s *Sweeper) event(ctx context.Context, e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
	storage.LogEvent(ctx, s.opts.Logger, "sweep", e.Action, e.Path, e.Size, e.Reason, e.Err, slog.String("rule", e.Rule))
}
