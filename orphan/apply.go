package orphan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

const applyBatch = 1000

// Apply deletes (or quarantines) the plan's orphans. A plan no Find could
// have made (an orphan with a negative size, or a path that is not a
// valid stored path: "../x", "/etc/passwd", a dot-file) is refused whole
// with ErrInvalidPlan, before anything is read. It trusts nothing else the
// plan says beyond which files to consider: it streams the references
// again, computes the figures its guards use itself (the number and bytes
// of the orphans, the coverage of their directories, and the number of
// scanned files, from a fresh listing unless this finder's own Find made
// the plan in this process), and refuses as Find's guards would, deleting
// nothing. Then, through storage.Delete, it acts on each file that is
// still a valid, unprotected, unreferenced orphan older than the grace
// period, and only if it still has the size and modification time the
// plan gives: a file that changed since is kept. A cancel midway stops
// after the current batch and returns ctx.Err() with the report so far;
// failed deletions return an error matching ErrDeleteFailed.
func (f *Finder) Apply(ctx context.Context, plan *Plan) (*Report, error) {
	started := time.Now()
	rep := &Report{Kept: storage.KeptTally{}}
	defer func() { rep.Duration = time.Since(started) }()
	orphans, err := candidatesOf(plan)
	if err != nil {
		return rep, err
	}
	for _, o := range orphans {
		rep.Planned.Add(o.Size)
	}
	if len(orphans) == 0 {
		return rep, nil
	}
	referenced, counts, err := f.applyRefs(ctx, orphans)
	if err != nil {
		return rep, err
	}
	if counts.n == counts.invalid && !f.opts.AllowEmpty && f.guards.empty {
		return rep, ErrNoReferences
	}
	var scanned int
	if plan.made != nil && plan.made.finder == f {
		scanned = plan.made.scanned
	} else if scanned, err = f.countScanned(ctx); err != nil {
		return rep, err
	}
	now, recheck := f.now(), f.mustRecheck(plan)
	elsewhere, err := f.uncoveredElsewhere(ctx, counts.covered, now)
	if err != nil {
		return rep, err
	}
	if err := f.check(len(orphans), scanned, rep.Planned.Bytes, mergeSorted(f.uncovered(orphans, counts.covered), elsewhere)); err != nil {
		return rep, err
	}
	targets := make([]storage.Target, 0, len(orphans))
	for i, o := range orphans {
		switch reason := f.excluded(o.Path, o.ModTime, now); {
		case reason != "":
			f.keep(ctx, rep, o.Path, o.Size, reason)
		case recheck && referenced(i):
			f.keep(ctx, rep, o.Path, o.Size, KeptReferenced)
		default:
			targets = append(targets, storage.Target{Path: o.Path, Size: o.Size, ModTime: o.ModTime, ETag: o.ETag, Check: recheck})
		}
	}
	opts := storage.DeleteOptions{Protected: f.opts.Protected, OnOutcome: func(o storage.Outcome) { f.outcome(ctx, rep, o) }}
	if f.opts.Quarantine == "" {
		err = storage.Delete(ctx, f.fs, targets, opts)
	} else {
		err = f.quarantine(ctx, rep, targets, opts)
	}
	rep.ConditionalDeletes = storage.FeaturesOf(f.fs).ConditionalDeletes
	if err != nil {
		return rep, err
	}
	if rep.Failed.Files > 0 {
		return rep, fmt.Errorf("orphan: %w: %d files (%d bytes); see the report", ErrDeleteFailed, rep.Failed.Files, rep.Failed.Bytes)
	}
	return rep, nil
}

// applyRefs reads the references again and reports which of the
// orphans (each path once) they name: from a set of their hashes, or in
// merge mode by merging them, sorted, against the orphans' paths.
func (f *Finder) applyRefs(ctx context.Context, orphans []Orphan) (func(i int) bool, refCounts, error) {
	if !f.opts.Merge {
		refs, counts, err := f.loadRefs(ctx, nil, true)
		if err != nil {
			return nil, refCounts{}, err
		}
		return func(i int) bool { return refs.has(orphans[i].Path) }, counts, nil
	}
	order := make([]int, len(orphans))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(orphans[a].Path, orphans[b].Path) })
	paths := make([]string, len(order))
	for j, i := range order {
		paths[j] = orphans[i].Path
	}
	used, counts, err := f.referencedMerged(ctx, paths)
	if err != nil {
		return nil, refCounts{}, err
	}
	at := make([]int, len(order)) // the position in paths of each orphan
	for j, i := range order {
		at[i] = j
	}
	return func(i int) bool { return used(at[i]) }, counts, nil
}

// candidatesOf returns the plan's orphans, each path once, refusing a
// plan no Find could have made.
func candidatesOf(plan *Plan) ([]Orphan, error) {
	seen := make(map[string]bool, len(plan.Orphans))
	out := make([]Orphan, 0, len(plan.Orphans))
	for _, o := range plan.Orphans {
		if o.Size < 0 {
			return nil, fmt.Errorf("%w: %q has a negative size", ErrInvalidPlan, o.Path)
		}
		if err := storage.ValidPath(o.Path); err != nil {
			// Find keeps such a file (KeptUnsafe): the plan was edited.
			return nil, fmt.Errorf("%w: %w", ErrInvalidPlan, err)
		}
		if seen[o.Path] {
			continue
		}
		seen[o.Path] = true
		out = append(out, o)
	}
	return out, nil
}

// countScanned counts the regular files a Find would scan now.
func (f *Finder) countScanned(ctx context.Context) (int, error) {
	n := 0
	for _, dir := range f.scanRoots() {
		err := storage.List(ctx, f.fs, f.opts.Range.listOptions(dir, measureNone), func(e storage.Entry) error {
			if e.Type.IsRegular() && f.opts.Range.Contains(e.Path) {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (f *Finder) keep(ctx context.Context, rep *Report, p string, size int64, reason string) {
	rep.Kept.Add(reason, size)
	f.event(ctx, Event{Action: ActionKeep, Path: p, Reason: reason, Size: size})
}

// outcome records what storage.Delete did with one file.
func (f *Finder) outcome(ctx context.Context, rep *Report, o storage.Outcome) {
	switch o.Action {
	case storage.ActionDelete:
		rep.Deleted.Add(o.Size)
	case storage.ActionMove:
		rep.Quarantined.Add(o.Size)
	case storage.ActionKeep:
		rep.Kept.Add(o.Reason, o.Size)
	default:
		rep.Failed.Add(o.Size)
		if len(rep.Failures) < storage.MaxFailures {
			rep.Failures = append(rep.Failures, Failure{Path: o.Path, Error: o.Err.Error()})
		}
	}
	f.event(ctx, Event{Action: o.Action, Path: o.Path, Reason: o.Reason, Size: o.Size, Err: o.Err})
}
