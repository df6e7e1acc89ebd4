package sweep

import (
	"context"
	"fmt"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// apply deletes the plan through storage.Delete, the one deletion choke
// point, which checks every path again (a valid stored path, or a
// filefield temp file where filefield writes them; not protected; a
// regular file; no link on the way), honours DryRun, and reports one
// outcome per file on this goroutine, so events and their callbacks never
// run on a worker. MaxDuration is checked between rounds of batches.
func (s *Sweeper) apply(ctx context.Context, plan []candidate, rep *Report, started time.Time) error {
	var tally storage.DirTally
	var emptied []string
	var rules map[string]int32 // the rule of each path of the round, for events
	opts := storage.DeleteOptions{
		Protected:   s.opts.Protected,
		DryRun:      s.opts.DryRun,
		Allow:       storage.AllowTemp,
		Concurrency: s.opts.Concurrency,
		OnOutcome: func(o storage.Outcome) {
			e := Event{Action: o.Action, Path: o.Path, Rule: s.ruleName(candidate{rule: rules[o.Path]}), Reason: o.Reason, Size: o.Size, Err: o.Err}
			switch o.Action {
			case storage.ActionDelete, storage.ActionWouldDelete:
				rep.Deleted.Add(o.Size)
				tally.Add(o.Path, o.Size)
				emptied = append(emptied, storage.Dir(o.Path))
			case storage.ActionKeep:
				if o.Reason == storage.KeptGone || o.Reason == storage.KeptCancelled {
					return // someone else did the job, or it was not tried
				}
				rep.Kept.Add(o.Reason, o.Size)
			case storage.ActionFail:
				rep.Failed.Add(o.Size)
				if len(rep.Failures) < storage.MaxFailures {
					rep.Failures = append(rep.Failures, storage.Failure{Path: o.Path, Error: o.Err.Error()})
				}
			}
			s.event(ctx, e)
		},
	}
	// Rounds of Concurrency batches, so the time budget is checked as the
	// deletions go.
	round := 1000 * s.opts.Concurrency
	stopped := false
	for start := 0; start < len(plan); start += round {
		if s.opts.MaxDuration > 0 && time.Since(started) > s.opts.MaxDuration {
			rep.Stopped = StoppedMaxDuration
			for _, c := range plan[start:] {
				rep.Kept.Add(KeptBudget, c.size)
			}
			stopped = true
			break
		}
		part := plan[start:min(start+round, len(plan))]
		targets := make([]storage.Target, 0, len(part))
		rules = make(map[string]int32, len(part))
		for _, c := range part {
			if reason, err := s.referenced(ctx, c); reason != "" {
				rep.Kept.Add(reason, c.size)
				s.event(ctx, Event{Action: ActionKeep, Path: c.path, Rule: s.ruleName(c), Reason: reason, Size: c.size, Err: err})
				continue
			}
			targets = append(targets, storage.Target{Path: c.path, Size: c.size})
			rules[c.path] = c.rule
		}
		if err := storage.Delete(ctx, s.fs, targets, opts); err != nil {
			break
		}
	}
	rep.TopDirs = tally.Top(s.opts.TopDirs)
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.opts.RemoveEmptyDirs && !s.opts.DryRun && !stopped {
		rep.DirsRemoved = storage.RemoveEmptyDirs(ctx, s.fs, emptied, s.opts.Dir, storage.DeleteOptions{})
	}
	if rep.Failed.Files > 0 {
		return fmt.Errorf("sweep: %w: %d files (%d bytes); see the report", storage.ErrDeleteFailed, rep.Failed.Files, rep.Failed.Bytes)
	}
	return nil
}

// referenced asks Options.Refs about c, just before its deletion, and
// returns why it must be kept, or "". Temp files are nobody's reference.
func (s *Sweeper) referenced(ctx context.Context, c candidate) (string, error) {
	if s.opts.Refs == nil || c.rule < 0 {
		return "", nil
	}
	used, err := s.opts.Refs.IsReferenced(ctx, c.path)
	switch {
	case err != nil:
		return KeptCheckFailed, err
	case used:
		return KeptReferenced, nil
	}
	return "", nil
}

// ErrDeleteFailed is storage.ErrDeleteFailed: some planned deletions
// failed (a full disk, a server gone away), and the sweep did what its
// report says and no more.
var ErrDeleteFailed = storage.ErrDeleteFailed
