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
// run on a worker. The time budget ends the deletions through their context.
func (s *Sweeper) apply(ctx context.Context, plan []candidate, rep *Report, started time.Time) error {
	// The time budget ends the deletions through a context of their own:
	// what they had not reached when it ran out is kept, as over budget.
	dctx := ctx
	if s.opts.Budget.Time > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, started.Add(s.opts.Budget.Time))
		defer cancel()
	}
	a := &applier{s: s, ctx: ctx, dctx: dctx, rep: rep}
	opts := storage.DeleteOptions{
		Protected:   s.opts.Protected,
		DryRun:      s.opts.DryRun,
		AllowTemp:   true,
		Concurrency: s.opts.Concurrency,
		OnOutcome:   a.outcome,
	}
	// Rounds bound the memory of the targets; each keeps every worker busy.
	const round = 64 * 1000
	next := 0 // the first candidate no round reached
	for ; next < len(plan) && dctx.Err() == nil; next += len(a.part) {
		a.part = plan[next:min(next+round, len(plan))]
		_ = storage.Delete(dctx, s.fs, a.targets(), opts)
	}
	stopped := a.overBudget()
	if stopped {
		rep.Stopped = StoppedTime
		for _, c := range plan[next:] {
			rep.Kept.Add(KeptBudget, c.size)
		}
	}
	rep.TopDirs = a.tally.Top(s.opts.TopDirs)
	rep.ConditionalDeletes = storage.FeaturesOf(s.fs).ConditionalDeletes
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.opts.RemoveEmptyDirs && !s.opts.DryRun && !stopped {
		rep.DirsRemoved = storage.RemoveEmptyDirs(ctx, s.fs, a.emptied, s.opts.Dir, storage.DeleteOptions{Protected: s.opts.Protected})
	}
	if rep.Failed.Files > 0 {
		return fmt.Errorf("sweep: %w: %d files (%d bytes); see the report", storage.ErrDeleteFailed, rep.Failed.Files, rep.Failed.Bytes)
	}
	return nil
}

// applier records the outcomes of one sweep's deletions.
type applier struct {
	s         *Sweeper
	ctx, dctx context.Context // the sweep's, and the deletions' (with the time budget)
	rep       *Report
	tally     storage.DirTally
	emptied   []string    // directories of deleted files
	part      []candidate // the round whose outcomes come in
}

func (a *applier) overBudget() bool { return a.dctx.Err() != nil && a.ctx.Err() == nil }

// targets returns the round's files to delete, keeping those Options.Refs
// says rows reference.
func (a *applier) targets() []storage.Target {
	targets := make([]storage.Target, 0, len(a.part))
	for i, c := range a.part {
		if reason, err := a.s.referenced(a.ctx, c); reason != "" {
			a.rep.Kept.Add(reason, c.size)
			a.s.event(a.ctx, Event{Action: ActionKeep, Path: c.path, Rule: a.s.ruleName(c), Reason: reason, Size: c.size, Err: err})
			continue
		}
		// Every file is re-checked just before its removal (on an object
		// store, a listing of the batch's key range), and kept if its
		// size or time changed since it was listed: rewritten in place,
		// it is young, also with the same bytes (a regenerated QR code),
		// which the same ETag would not tell. An ETag then makes the
		// removal itself conditional where the backend can, for a
		// rewrite in the moment between the re-check and the removal.
		targets = append(targets, storage.Target{Path: c.path, Size: c.size, ModTime: time.Unix(c.msec, int64(c.mnsec)), Check: true, ETag: c.etag, Index: i})
	}
	return targets
}

// outcome records what storage.Delete did with one file.
func (a *applier) outcome(o storage.Outcome) {
	rep := a.rep
	switch o.Action {
	case storage.ActionDelete, storage.ActionWouldDelete:
		rep.Deleted.Add(o.Size)
		a.tally.Add(o.Path, o.Size)
		a.emptied = append(a.emptied, path.Dir(o.Path))
	case storage.ActionKeep:
		switch {
		case o.Reason == storage.KeptCancelled && a.overBudget():
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
	a.s.event(a.ctx, Event{Action: o.Action, Path: o.Path, Rule: a.s.ruleName(a.part[o.Index]), Reason: o.Reason, Size: o.Size, Err: o.Err})
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
