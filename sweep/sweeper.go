package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/afero"
	"golang.org/x/sync/errgroup"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// batchSize is how many deletions go to the backend per call: S3's
// DeleteObjects limit, and large enough to amortise a directory open on
// the local backend.
const batchSize = 1000

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
// value) or a Dir that is not a valid stored path ("../x"): those are
// programming errors, not input.
func New(fsys afero.Fs, opts Options) *Sweeper {
	s := &Sweeper{fs: fsys, opts: opts, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if len(opts.Rules) == 0 {
		panic("sweep: no rules")
	}
	for _, r := range opts.Rules {
		switch {
		case r.Glob == "" || !doublestar.ValidatePattern(r.Glob):
			panic(fmt.Sprintf("sweep: invalid rule glob %q", r.Glob))
		case r.MaxAge < 0 || r.KeepLatest < 0:
			panic(fmt.Sprintf("sweep: rule %q has a negative MaxAge or KeepLatest", r.Glob))
		case r.MaxAge == 0 && r.KeepLatest == 0:
			panic(fmt.Sprintf("sweep: rule %q has neither MaxAge nor KeepLatest: it would delete every file", r.Glob))
		}
		for _, g := range r.Exclude {
			if !doublestar.ValidatePattern(g) {
				panic(fmt.Sprintf("sweep: invalid exclude glob %q", g))
			}
		}
		if r.Name == "" {
			r.Name = r.Glob
		}
		s.rules = append(s.rules, r)
	}
	for _, g := range opts.Protected {
		if !doublestar.ValidatePattern(g) {
			panic(fmt.Sprintf("sweep: invalid protected glob %q", g))
		}
	}
	dir, err := storage.CleanDir(opts.Dir)
	if err != nil {
		panic(fmt.Sprintf("sweep: invalid directory to sweep: %v", err))
	}
	s.opts.Dir = dir
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

// candidate is a file the plan may delete. It is kept small (40 bytes, one
// pointer) because a sweep may hold a million of them.
type candidate struct {
	path string
	size int64
	t    int64 // UnixNano of the file's time
	rule int32 // index into Sweeper.rules; -1 for filefield temp files
}

type groupKey struct {
	rule  int32
	group string
}

func (s *Sweeper) ruleName(c candidate) string {
	if c.rule < 0 {
		return tempRule
	}
	return s.rules[c.rule].Name
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

// old reports whether t is more than maxAge before now. Future times are
// young.
func old(now, t time.Time, maxAge time.Duration) bool {
	return !t.After(now) && now.Sub(t) > maxAge
}

// oldNano is old for UnixNano times.
func oldNano(now, t int64, maxAge time.Duration) bool {
	return t <= now && now-t > int64(maxAge)
}

// Sweep runs one sweep: it lists the tree, plans, then deletes (unless
// DryRun). It always returns the report. The error is the listing's (then
// nothing was deleted), ctx's, or ErrDeleteFailed when some deletions
// failed. Budgets are not errors: the report's Stopped says which was
// reached.
func (s *Sweeper) Sweep(ctx context.Context) (*Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	started := time.Now()
	rep := &Report{DryRun: s.opts.DryRun, Kept: map[string]storage.Count{}, Started: s.now()}
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

// plan lists the tree and decides every file. complete is false when the
// listing ran out of time: the plan may then be partial and is not applied.
func (s *Sweeper) plan(ctx context.Context, rep *Report, started time.Time) (del []candidate, complete bool, err error) {
	now := s.now()
	nowNano := now.UnixNano()
	groups := map[groupKey][]candidate{}
	n := 0
	// tick counts a listed file and, every 1024, checks ctx and the time
	// budget.
	tick := func() error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if s.opts.MaxDuration > 0 && time.Since(started) > s.opts.MaxDuration {
				rep.Stopped = StoppedMaxDuration
				return errStop
			}
		}
		return nil
	}
	visit := func(e storage.Entry) error {
		if e.IsDir() {
			return nil
		}
		if err := tick(); err != nil {
			return err
		}
		ri := s.match(e.Path)
		if !e.IsRegular() && guards.regularOnly {
			if ri >= 0 {
				rep.keep(KeptNotRegular, 0)
				s.event(ctx, Event{Action: "keep", Path: e.Path, Rule: s.rules[ri].Name, Reason: KeptNotRegular})
			}
			return nil
		}
		rep.Scanned.Add(e.Size)
		if storage.IsTempName(e.Path) {
			if s.opts.TempMaxAge >= 0 && old(now, e.ModTime, s.opts.TempMaxAge) {
				del = append(del, candidate{path: e.Path, size: e.Size, t: e.ModTime.UnixNano(), rule: -1})
			} else {
				rep.keep(KeptInFlight, e.Size)
			}
			return nil
		}
		if ri < 0 {
			return nil
		}
		r := &s.rules[ri]
		rep.Matched.Add(e.Size)
		reason := ""
		switch {
		case storage.MatchAny(s.opts.Protected, e.Path):
			reason = KeptProtected
		case storage.MatchAny(r.Exclude, e.Path):
			reason = KeptExcluded
		case guards.validPath && storage.ValidPath(e.Path) != nil:
			reason = KeptUnsafe
		}
		if reason != "" {
			rep.keep(reason, e.Size)
			s.event(ctx, Event{Action: "keep", Path: e.Path, Rule: r.Name, Reason: reason, Size: e.Size})
			return nil
		}
		t := e.ModTime
		if r.TimeFromName != nil {
			var ok bool
			if t, ok = r.TimeFromName(e.Path); !ok {
				rep.keep(KeptNoTime, e.Size)
				s.event(ctx, Event{Action: "keep", Path: e.Path, Rule: r.Name, Reason: KeptNoTime, Size: e.Size})
				return nil
			}
		}
		c := candidate{path: e.Path, size: e.Size, t: t.UnixNano(), rule: ri}
		if r.KeepLatest > 0 {
			g := storage.Dir(e.Path)
			if r.Group != nil {
				g = r.Group(e.Path)
			}
			k := groupKey{ri, g}
			groups[k] = append(groups[k], c)
			return nil
		}
		s.decideAge(ctx, rep, nowNano, c, &del)
		return nil
	}
	if s.namesFirst() {
		err = s.listNamesFirst(ctx, rep, tick, visit)
	} else {
		err = storage.List(ctx, s.fs, s.opts.Dir, visit)
	}
	if errors.Is(err, errStop) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for _, g := range groups {
		// Newest first; equal times by path, so the plan is deterministic.
		slices.SortFunc(g, func(a, b candidate) int { return cmp.Or(cmp.Compare(b.t, a.t), cmp.Compare(a.path, b.path)) })
		for i, c := range g {
			if i < s.rules[c.rule].KeepLatest {
				rep.keep(KeptLatest, c.size)
				s.event(ctx, Event{Action: "keep", Path: c.path, Rule: s.ruleName(c), Reason: KeptLatest, Size: c.size})
				continue
			}
			s.decideAge(ctx, rep, nowNano, c, &del)
		}
	}
	if s.opts.MaxDeletes > 0 || s.opts.MaxBytes > 0 {
		// A budget cuts the plan somewhere: sort it, so that a dry run and
		// the real run cut in the same place.
		slices.SortFunc(del, func(a, b candidate) int { return strings.Compare(a.path, b.path) })
	}
	return s.budget(rep, del), true, nil
}

var errStop = errors.New("stop")

// namesFirst reports whether the sweep should measure, in its listing,
// only the files a rule matches by name and temp files: on a backend that
// lists names faster than sizes, unless a rule matches every file ("**"),
// when all must be measured anyway and asking for each costs a little.
func (s *Sweeper) namesFirst() bool {
	if _, ok := s.fs.(storage.NameLister); !ok {
		return false
	}
	for _, r := range s.rules {
		if r.Glob == "**" || r.Glob == "**/*" {
			return false
		}
	}
	return true
}

// listNamesFirst lists the tree measuring only the files a rule matches
// by name, and filefield temp files (cleaned anywhere); the others are
// counted as scanned and unmeasured (Report.Unmeasured). A matched file
// the listing still left unmeasured (a backend that ignores the wish) is
// stat'ed in one batch afterwards; one gone by then is skipped, as if it
// had not been listed.
func (s *Sweeper) listNamesFirst(ctx context.Context, rep *Report, tick func() error, visit func(storage.Entry) error) error {
	wanted := func(p string) bool { return storage.IsTempName(p) || s.match(p) >= 0 }
	var need []string
	err := storage.ListNames(ctx, s.fs, s.opts.Dir, wanted, func(e storage.Entry) error {
		if !e.IsRegular() || !e.ModTime.IsZero() {
			return visit(e)
		}
		if wanted(e.Path) {
			need = append(need, e.Path)
			return nil
		}
		rep.Scanned.Files++
		rep.Unmeasured++
		return tick()
	})
	if err != nil {
		return err
	}
	return storage.StatFiles(ctx, s.fs, need, func(_ int, e storage.Entry) error { return visit(e) })
}

func (s *Sweeper) decideAge(ctx context.Context, rep *Report, now int64, c candidate, del *[]candidate) {
	maxAge := s.rules[c.rule].MaxAge
	if maxAge == 0 || oldNano(now, c.t, maxAge) {
		*del = append(*del, c)
		return
	}
	rep.keep(KeptYoung, c.size)
	s.event(ctx, Event{Action: "keep", Path: c.path, Rule: s.ruleName(c), Reason: KeptYoung, Size: c.size})
}

// budget cuts the plan at MaxDeletes and MaxBytes, in plan order.
func (s *Sweeper) budget(rep *Report, del []candidate) []candidate {
	var bytes int64
	for i, c := range del {
		stop := ""
		switch {
		case s.opts.MaxDeletes > 0 && i >= s.opts.MaxDeletes:
			stop = StoppedMaxDeletes
		case s.opts.MaxBytes > 0 && bytes+c.size > s.opts.MaxBytes:
			stop = StoppedMaxBytes
		}
		if stop != "" {
			rep.Stopped = stop
			for _, k := range del[i:] {
				rep.keep(KeptBudget, k.size)
			}
			return del[:i]
		}
		bytes += c.size
	}
	return del
}

// apply is the sweeper's one deletion choke point. It re-checks every
// candidate (valid stored path or filefield temp name, not protected),
// honours DryRun and MaxDuration, and deletes in batches with bounded
// concurrency. Nothing else in this package removes files.
func (s *Sweeper) apply(ctx context.Context, plan []candidate, rep *Report, started time.Time) error {
	var tally storage.DirTally
	var mu sync.Mutex
	var emptied []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.Concurrency)
	stopped := false
	for start := 0; start < len(plan); start += batchSize {
		batch := plan[start:min(start+batchSize, len(plan))]
		if s.opts.MaxDuration > 0 && time.Since(started) > s.opts.MaxDuration {
			mu.Lock()
			rep.Stopped = StoppedMaxDuration
			for _, c := range plan[start:] {
				rep.keep(KeptBudget, c.size)
			}
			mu.Unlock()
			stopped = true
			break
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			// Re-check at the choke point: whatever the plan holds, an
			// unsafe or protected path is never removed.
			var refused []candidate
			safe := make([]candidate, 0, len(batch))
			for _, c := range batch {
				if (guards.validPath && !deletable(c.path)) || storage.MatchAny(s.opts.Protected, c.path) {
					refused = append(refused, c)
					continue
				}
				safe = append(safe, c)
			}
			batch = safe
			paths := make([]string, len(batch))
			for i, c := range batch {
				paths[i] = c.path
			}
			var errs []error
			if s.opts.DryRun {
				errs = make([]error, len(paths))
			} else {
				errs = storage.RemoveFiles(gctx, s.fs, paths)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, c := range refused {
				rep.keep(KeptUnsafe, c.size)
			}
			for i, err := range errs {
				c := batch[i]
				rule := s.ruleName(c)
				switch {
				case err == nil:
					rep.Deleted.Add(c.size)
					tally.Add(c.path, c.size)
					emptied = append(emptied, storage.Dir(c.path))
					action := "delete"
					if s.opts.DryRun {
						action = "would_delete"
					}
					s.event(ctx, Event{Action: action, Path: c.path, Rule: rule, Size: c.size})
				case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
					// Not tried.
				case errors.Is(err, fs.ErrNotExist):
					// Gone already: someone else did the job.
				default:
					rep.Failed.Add(c.size)
					if len(rep.Failures) < 100 {
						rep.Failures = append(rep.Failures, Failure{Path: c.path, Error: err.Error()})
					}
					s.event(ctx, Event{Action: "fail", Path: c.path, Rule: rule, Size: c.size, Err: err})
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	rep.TopDirs = tally.Top(s.opts.TopDirs)
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.opts.RemoveEmptyDirs && !s.opts.DryRun && !stopped {
		rep.DirsRemoved = storage.RemoveEmptyDirs(ctx, s.fs, emptied, s.opts.Dir)
	}
	if rep.Failed.Files > 0 {
		return fmt.Errorf("%w: %d files (%d bytes); see the report", ErrDeleteFailed, rep.Failed.Files, rep.Failed.Bytes)
	}
	return nil
}

// ErrDeleteFailed is returned, with the full report, when some planned
// deletions failed (a full disk, a server gone away): the sweep did what
// the report says and no more.
var ErrDeleteFailed = errors.New("sweep: some deletions failed")

// deletable reports whether p may be deleted at all: a valid stored path,
// or a filefield temp file in a valid directory.
func deletable(p string) bool {
	if storage.IsTempName(p) {
		d := storage.Dir(p)
		return d == "." || storage.ValidPath(d) == nil
	}
	return storage.ValidPath(p) == nil
}

func (s *Sweeper) event(ctx context.Context, e Event) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(e)
	}
	if s.opts.Logger == nil || e.Action == "keep" {
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("path", e.Path), slog.String("rule", e.Rule), slog.Int64("size", e.Size)}
	if e.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	s.opts.Logger.LogAttrs(ctx, level, "sweep "+e.Action, attrs...)
}
