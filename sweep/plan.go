package sweep

import (
	"cmp"
	"context"
	"errors"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// candidate is a file the plan may delete. It is kept small (56 bytes,
// two pointers) because a sweep may hold a million of them.
type candidate struct {
	path  string
	etag  string // as listed, on object stores: the deletion is conditional on it
	size  int64
	sec   int64 // the file's time (its name's, with TimeFromName): seconds and
	nsec  int32 // nanoseconds since 1970, exact (nanoseconds alone overflow after 2262)
	rule  int32 // index into Sweeper.rules; -1 for filefield temp files
	msec  int64 // the modification time listed, which the removal re-checks
	mnsec int32
}

// time is the file's time the rules judge.
func (c candidate) time() time.Time { return time.Unix(c.sec, int64(c.nsec)) }

// listed returns a candidate for e, with the time t its rule ages it by.
func listed(e storage.Entry, t time.Time, rule int32) candidate {
	return candidate{path: e.Path, etag: e.ETag, size: e.Size, sec: t.Unix(), nsec: int32(t.Nanosecond()), rule: rule,
		msec: e.ModTime.Unix(), mnsec: int32(e.ModTime.Nanosecond())}
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

var errStop = errors.New("stop")

// planner decides the files of one sweep as the listing reports them.
type planner struct {
	s       *Sweeper
	ctx     context.Context
	rep     *Report
	started time.Time
	now     time.Time
	temps   bool // filefield's temp files are cleaned here
	groups  map[groupKey][]candidate
	del     []candidate
	n       int
}

// plan lists the tree and decides every file. complete is false when the
// listing ran out of time: the plan may then be partial and is not applied.
func (s *Sweeper) plan(ctx context.Context, rep *Report, started time.Time) (del []candidate, complete bool, err error) {
	p := &planner{s: s, ctx: ctx, rep: rep, started: started, now: s.now(), groups: map[groupKey][]candidate{},
		// filefield writes temporary files only where it renames them
		// into place; on object stores such a name is someone else's.
		temps: !storage.FeaturesOf(s.fs).AtomicCreate}
	if s.namesFirst() {
		err = s.listNamesFirst(ctx, rep, p.temps, p.tick, p.visit)
	} else {
		err = storage.List(ctx, s.fs, storage.ListOptions{Dir: s.opts.Dir}, p.visit)
	}
	if errors.Is(err, errStop) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for _, g := range p.groups {
		// Newest first; equal times by path, so the plan is deterministic.
		slices.SortFunc(g, func(a, b candidate) int {
			return cmp.Or(cmp.Compare(b.sec, a.sec), cmp.Compare(b.nsec, a.nsec), cmp.Compare(a.path, b.path))
		})
		kept := 0
		for _, c := range g {
			// A file from the future (a clock ahead) is young and kept,
			// and takes no place among the latest: the newest real file
			// stays.
			if !c.time().After(p.now) && kept < s.rules[c.rule].KeepLatest {
				kept++
				p.keep(c.rule, c.path, KeptLatest, c.size)
				continue
			}
			p.decideAge(c)
		}
	}
	if s.opts.Budget.Files > 0 || s.opts.Budget.Bytes > 0 {
		// A budget cuts the plan somewhere: sort it, so that a dry run and
		// the real run cut in the same place.
		slices.SortFunc(p.del, func(a, b candidate) int { return strings.Compare(a.path, b.path) })
	}
	return s.budget(rep, p.del), true, nil
}

// tick counts a listed file and, every 1024, checks ctx and the time
// budget.
func (p *planner) tick() error {
	if p.n++; p.n%1024 == 0 {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if b := p.s.opts.Budget.Time; b > 0 && time.Since(p.started) > b {
			p.rep.Stopped = StoppedTime
			return errStop
		}
	}
	return nil
}

func (p *planner) keep(ri int32, path, reason string, size int64) {
	p.rep.Kept.Add(reason, size)
	p.s.event(p.ctx, Event{Action: ActionKeep, Path: path, Rule: p.s.ruleName(candidate{rule: ri}), Reason: reason, Size: size})
}

// visit decides one listed entry.
func (p *planner) visit(e storage.Entry) error {
	if e.Type.IsDir() {
		return nil
	}
	if err := p.tick(); err != nil {
		return err
	}
	temp := p.temps && storage.IsTempName(e.Path)
	ri := int32(-1)
	if !temp {
		ri = p.s.match(e.Path)
	}
	switch {
	case !e.Type.IsRegular():
		if ri >= 0 {
			p.keep(ri, e.Path, KeptNotRegular, 0)
		}
		return nil
	case temp:
		p.rep.Scanned.Add(e.Size)
		if p.s.opts.TempMaxAge >= 0 && storage.OlderThan(p.now, e.ModTime, p.s.opts.TempMaxAge) {
			p.del = append(p.del, listed(e, e.ModTime, -1))
		} else {
			p.rep.Kept.Add(KeptInFlight, e.Size)
		}
		return nil
	}
	p.rep.Scanned.Add(e.Size)
	if ri >= 0 {
		p.rep.Matched.Add(e.Size)
		p.matched(e, ri)
	}
	return nil
}

// matched decides a regular file rule ri matched.
func (p *planner) matched(e storage.Entry, ri int32) {
	r := &p.s.rules[ri]
	reason := ""
	switch {
	case storage.Protects(p.s.opts.Protected, e.Path):
		reason = KeptProtected
	case storage.Protects(r.Exclude, e.Path): // an exclude protects: matched as Protected is
		reason = KeptExcluded
	case storage.ValidPath(e.Path) != nil:
		reason = KeptUnsafe
	}
	t, ok := e.ModTime, true
	if reason == "" && r.TimeFromName != nil {
		if t, ok = r.TimeFromName(e.Path); !ok {
			reason = KeptNoTime
		}
	}
	if reason != "" {
		p.keep(ri, e.Path, reason, e.Size)
		return
	}
	c := listed(e, t, ri)
	if r.KeepLatest == 0 {
		p.decideAge(c)
		return
	}
	g := path.Dir(e.Path)
	if r.Group != nil {
		g = r.Group(e.Path)
	}
	k := groupKey{ri, g}
	p.groups[k] = append(p.groups[k], c)
}

// decideAge plans c if it is older than its rule's MaxAge (or the rule
// has none), and keeps it as young otherwise.
func (p *planner) decideAge(c candidate) {
	maxAge := p.s.rules[c.rule].MaxAge
	mod := c.time()
	if mod.After(p.now) {
		// From the future (a clock ahead, a copy that kept its time):
		// young, also for a rule of any age (KeepLatest alone).
		p.keep(c.rule, c.path, KeptYoung, c.size)
		return
	}
	if maxAge == 0 || storage.OlderThan(p.now, mod, maxAge) {
		p.del = append(p.del, c)
		return
	}
	p.keep(c.rule, c.path, KeptYoung, c.size)
}

// namesFirst reports whether the sweep should measure, in its listing,
// only the files a rule matches by name and temp files: on a backend that
// lists names faster than sizes, unless a rule matches every file ("**"),
// when all must be measured anyway and asking for each costs a little.
func (s *Sweeper) namesFirst() bool {
	if !storage.FeaturesOf(s.fs).CheapNames {
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
func (s *Sweeper) listNamesFirst(ctx context.Context, rep *Report, temps bool, tick func() error, visit func(storage.Entry) error) error {
	wanted := func(p string) bool { return (temps && storage.IsTempName(p)) || s.match(p) >= 0 }
	var need []string
	err := storage.List(ctx, s.fs, storage.ListOptions{Dir: s.opts.Dir, Measure: wanted}, func(e storage.Entry) error {
		if !e.Type.IsRegular() || !e.ModTime.IsZero() {
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
	return storage.Restat(ctx, s.fs, need, func(_ int, e storage.Entry) error { return visit(e) })
}

// budget cuts the plan at the files and bytes budgets, in plan order.
func (s *Sweeper) budget(rep *Report, del []candidate) []candidate {
	var bytes int64
	for i, c := range del {
		stop := ""
		switch {
		case s.opts.Budget.Files > 0 && i >= s.opts.Budget.Files:
			stop = StoppedFiles
		case s.opts.Budget.Bytes > 0 && bytes+c.size > s.opts.Budget.Bytes:
			stop = StoppedBytes
		}
		if stop != "" {
			rep.Stopped = stop
			for _, k := range del[i:] {
				rep.Kept.Add(KeptBudget, k.size)
			}
			return del[:i]
		}
		bytes += c.size
	}
	return del
}
