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

var errStop = errors.New("stop")

// plan lists the tree and decides every file. complete is false when the
// listing ran out of time: the plan may then be partial and is not applied.
func (s *Sweeper) plan(ctx context.Context, rep *Report, started time.Time) (del []candidate, complete bool, err error) {
	now := s.now()
	// filefield writes temporary files only where it renames them into
	// place; on object stores such a name is someone else's file.
	temps := !storage.FeaturesOf(s.fs).AtomicCreate
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
	keep := func(ri int32, p, reason string, size int64) {
		rep.Kept.Add(reason, size)
		s.event(ctx, Event{Action: ActionKeep, Path: p, Rule: s.ruleName(candidate{rule: ri}), Reason: reason, Size: size})
	}
	visit := func(e storage.Entry) error {
		if e.Type.IsDir() {
			return nil
		}
		if err := tick(); err != nil {
			return err
		}
		temp := temps && storage.IsTempName(e.Path)
		ri := int32(-1)
		if !temp {
			ri = s.match(e.Path)
		}
		if !e.Type.IsRegular() {
			if ri >= 0 {
				keep(ri, e.Path, KeptNotRegular, 0)
			}
			return nil
		}
		rep.Scanned.Add(e.Size)
		if temp {
			if s.opts.TempMaxAge >= 0 && storage.OlderThan(now, e.ModTime, s.opts.TempMaxAge) {
				del = append(del, candidate{path: e.Path, size: e.Size, t: e.ModTime.UnixNano(), rule: -1})
			} else {
				rep.Kept.Add(KeptInFlight, e.Size)
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
		case storage.ValidPath(e.Path) != nil:
			reason = KeptUnsafe
		}
		if reason != "" {
			keep(ri, e.Path, reason, e.Size)
			return nil
		}
		t := e.ModTime
		if r.TimeFromName != nil {
			var ok bool
			if t, ok = r.TimeFromName(e.Path); !ok {
				keep(ri, e.Path, KeptNoTime, e.Size)
				return nil
			}
		}
		c := candidate{path: e.Path, size: e.Size, t: t.UnixNano(), rule: ri}
		if r.KeepLatest > 0 {
			g := path.Dir(e.Path)
			if r.Group != nil {
				g = r.Group(e.Path)
			}
			k := groupKey{ri, g}
			groups[k] = append(groups[k], c)
			return nil
		}
		s.decideAge(ctx, rep, now, c, &del)
		return nil
	}
	if s.namesFirst() {
		err = s.listNamesFirst(ctx, rep, temps, tick, visit)
	} else {
		err = storage.List(ctx, s.fs, storage.ListOptions{Dir: s.opts.Dir}, visit)
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
				keep(c.rule, c.path, KeptLatest, c.size)
				continue
			}
			s.decideAge(ctx, rep, now, c, &del)
		}
	}
	if s.opts.MaxDeletes > 0 || s.opts.MaxBytes > 0 {
		// A budget cuts the plan somewhere: sort it, so that a dry run and
		// the real run cut in the same place.
		slices.SortFunc(del, func(a, b candidate) int { return strings.Compare(a.path, b.path) })
	}
	return s.budget(rep, del), true, nil
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

func (s *Sweeper) decideAge(ctx context.Context, rep *Report, now time.Time, c candidate, del *[]candidate) {
	maxAge := s.rules[c.rule].MaxAge
	if maxAge == 0 || storage.OlderThan(now, time.Unix(0, c.t), maxAge) {
		*del = append(*del, c)
		return
	}
	rep.Kept.Add(KeptYoung, c.size)
	s.event(ctx, Event{Action: ActionKeep, Path: c.path, Rule: s.ruleName(c), Reason: KeptYoung, Size: c.size})
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
				rep.Kept.Add(KeptBudget, k.size)
			}
			return del[:i]
		}
		bytes += c.size
	}
	return del
}
