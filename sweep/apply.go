package sweep

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// apply deletes the plan through storage.Delete, the one deletion choke
// point, which checks every path again (a valid stored path, or a
// filefield temp file where filefield writes them; not protected; a
// regular file; no link on the way), honours DryRun, and reports one
// outcome per file on this goroutine, so events and their callbacks never
// run on a worker. MaxDuration ends the deletions through their context.
func (s *Sweeper) apply(ctx context.Context, plan []candidate, rep *Report, started time.Time) error {
	var tally storage.DirTally
	var emptied []string
	// The time budget ends the deletions through a context of their own:
	// what they had not reached when it ran out is kept, as over budget.
	dctx := ctx
	if s.opts.MaxDuration > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, started.Add(s.opts.MaxDuration))
		defer cancel()
	}
	overBudget := func() bool { return dctx.Err() != nil && ctx.Err() == nil }
	var part []candidate // the round whose outcomes come in
	opts := storage.DeleteOptions{
		Protected:   s.opts.Protected,
		DryRun:      s.opts.DryRun,
		AllowTemp:   true,
		Concurrency: s.opts.Concurrency,
		OnOutcome: func(o storage.Outcome) {
			e := Event{Action: o.Action, Path: o.Path, Rule: s.ruleName(part[o.Index]), Reason: o.Reason, Size: o.Size, Err: o.Err}
			switch o.Action {
			case storage.ActionDelete, storage.ActionWouldDelete:
				rep.Deleted.Add(o.Size)
				tally.Add(o.Path, o.Size)
				emptied = append(emptied, path.Dir(o.Path))
			case storage.ActionKeep:
				switch {
				case o.Reason == storage.KeptCancelled && overBudget():
					rep.Kept.Add(KeptBudget, o.Size)
					return
				case o.Reason == storage.KeptGone || o.Reason == storage.KeptCancelled:
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
	// Rounds bound the memory of the targets; each keeps every worker busy.
	const round = 64 * 1000
	next := 0 // the first candidate no round reached
	for ; next < len(plan) && dctx.Err() == nil; next += len(part) {
		part = plan[next:min(next+round, len(plan))]
		targets := make([]storage.Target, 0, len(part))
		for i, c := range part {
			if reason, err := s.referenced(ctx, c); reason != "" {
				rep.Kept.Add(reason, c.size)
				s.event(ctx, Event{Action: ActionKeep, Path: c.path, Rule: s.ruleName(c), Reason: reason, Size: c.size, Err: err})
				continue
			}
			targets = append(targets, storage.Target{Path: c.path, Size: c.size, Index: i})
		}
		_ = storage.Delete(dctx, s.fs, targets, opts)
	}
	stopped := overBudget()
	if stopped {
		rep.Stopped = StoppedMaxDuration
		for _, c := range plan[next:] {
			rep.Kept.Add(KeptBudget, c.size)
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
