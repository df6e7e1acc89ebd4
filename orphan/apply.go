package orphan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Report says what Apply did (R1).
type Report struct {
	Planned storage.Count `json:"planned"`
	Deleted storage.Count `json:"deleted"`
	// Quarantined counts files moved to QuarantineRun instead of deleted.
	Quarantined   storage.Count            `json:"quarantined"`
	QuarantineRun string                   `json:"quarantine_run,omitempty"`
	Kept          map[string]storage.Count `json:"kept"`
	Failed        storage.Count            `json:"failed"`
	Failures      []Failure                `json:"failures,omitempty"`
	Duration      time.Duration            `json:"duration_ns"`
}

// Failure is one failed deletion or move.
type Failure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Event is one per-file decision (R3).
type Event struct {
	// Action is "orphan" (found by Find), "delete", "quarantine", "purge"
	// (a quarantined file deleted for good), "keep" (by Find or Apply,
	// with the Reason) or "fail".
	Action string `json:"action"`
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
	Size   int64  `json:"size"`
	Err    error  `json:"-"`
}

func (f *Finder) event(ctx context.Context, e Event) {
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(e)
	}
	if f.opts.Logger == nil || e.Action == "orphan" || e.Action == "keep" {
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("path", e.Path), slog.Int64("size", e.Size)}
	if e.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	f.opts.Logger.LogAttrs(ctx, level, "orphan "+e.Action, attrs...)
}

const applyBatch = 1000

// Apply deletes (or quarantines) the plan's orphans. It refuses a plan over
// a limit unless forced, then loads the references again (or asks the
// provider's Lookup) and, just before each batch, re-checks every file:
// still there, a regular file of the same size and mtime, a valid stored
// path, still unreferenced. Files that changed are kept and reported.
// A provider error or cancelled context before deletion deletes nothing;
// a cancel midway stops after the current batch and returns ctx.Err()
// with the report so far. Apply is the package's one deletion choke point.
func (f *Finder) Apply(ctx context.Context, plan *Plan) (*Report, error) {
	started := time.Now()
	rep := &Report{Kept: map[string]storage.Count{}}
	defer func() { rep.Duration = time.Since(started) }()
	for _, o := range plan.Orphans {
		rep.Planned.Add(o.Size)
	}
	if !f.opts.Force && guards.limits {
		if err := f.CheckLimits(plan); err != nil {
			return rep, err
		}
	}
	if len(plan.Orphans) == 0 {
		return rep, nil
	}
	referenced, err := f.referenced(ctx, plan)
	if err != nil {
		return rep, err
	}
	stateCheck, err := f.stateCheck(ctx, plan)
	if err != nil {
		return rep, err
	}
	keep := func(o Orphan, reason string) {
		c := rep.Kept[reason]
		c.Add(o.Size)
		rep.Kept[reason] = c
		f.event(ctx, Event{Action: "keep", Path: o.Path, Reason: reason, Size: o.Size})
	}
	now := f.now()
	var q *quarantine
	for start := 0; start < len(plan.Orphans); start += applyBatch {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		batch := plan.Orphans[start:min(start+applyBatch, len(plan.Orphans))]
		var checked []Orphan
		for i, o := range batch {
			switch reason := f.excluded(o.Path, o.ModTime, now); {
			case reason != "":
				keep(o, reason)
			case guards.recheck && referenced(start+i, o.Path):
				keep(o, KeptReferenced)
			default:
				checked = append(checked, o)
			}
		}
		todo := checked
		if guards.recheck && len(checked) > 0 {
			unchanged, err := stateCheck(checked)
			if err != nil {
				return rep, err
			}
			todo = nil
			for _, o := range checked {
				if unchanged(o) {
					todo = append(todo, o)
				} else {
					keep(o, KeptChanged)
				}
			}
		}
		if f.opts.Quarantine != "" {
			if q == nil {
				if q, err = f.newQuarantine(); err != nil {
					return rep, err
				}
			}
			// Write-ahead: the manifest lists the batch before any file
			// moves, so every moved file is in a saved manifest even if a
			// later write fails; then it is saved with what really moved.
			moved := q.manifest.Files
			q.manifest.Files = append(moved[:len(moved):len(moved)], todo...)
			if err := q.save(f.fs); err != nil {
				return rep, err // nothing of this batch has moved
			}
			rep.QuarantineRun = q.run // a manifest exists from here on
			for _, o := range todo {
				if err := q.move(f.fs, o); err != nil {
					f.fail(ctx, rep, o, err)
					continue
				}
				moved = append(moved, o)
				rep.Quarantined.Add(o.Size)
				f.event(ctx, Event{Action: "quarantine", Path: o.Path, Size: o.Size})
			}
			q.manifest.Files = moved
			if err := q.save(f.fs); err != nil {
				return rep, err // the write-ahead manifest still lists them
			}
			continue
		}
		paths := make([]string, len(todo))
		for i, o := range todo {
			paths[i] = o.Path
		}
		for i, err := range storage.RemoveFiles(ctx, f.fs, paths) {
			o := todo[i]
			switch {
			case err == nil:
				rep.Deleted.Add(o.Size)
				f.event(ctx, Event{Action: "delete", Path: o.Path, Size: o.Size})
			case errors.Is(err, fs.ErrNotExist):
				keep(o, KeptChanged)
			case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			default:
				f.fail(ctx, rep, o, err)
			}
		}
	}
	return rep, ctx.Err()
}

func (f *Finder) fail(ctx context.Context, rep *Report, o Orphan, err error) {
	rep.Failed.Add(o.Size)
	if len(rep.Failures) < 100 {
		rep.Failures = append(rep.Failures, Failure{Path: o.Path, Error: err.Error()})
	}
	f.event(ctx, Event{Action: "fail", Path: o.Path, Size: o.Size, Err: err})
}

// referenced returns the re-check of references for Apply: the provider's
// Lookup when it has one, else a fresh full stream.
func (f *Finder) referenced(ctx context.Context, plan *Plan) (func(i int, p string) bool, error) {
	if lk, ok := f.refs.(Lookup); ok {
		paths := make([]string, len(plan.Orphans))
		for i, o := range plan.Orphans {
			paths[i] = o.Path
		}
		used, err := lk.Referenced(ctx, paths)
		if err == nil && len(used) != len(paths) {
			err = fmt.Errorf("lookup returned %d answers for %d paths", len(used), len(paths))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProvider, err)
		}
		return func(i int, _ string) bool { return used[i] }, nil
	}
	refs, counts, err := f.loadRefs(ctx, nil)
	if err != nil {
		return nil, err
	}
	if counts.n == 0 && plan.Scanned.Files > 0 && !f.opts.AllowEmpty && guards.empty {
		return nil, ErrNoReferences
	}
	return func(_ int, p string) bool { return refs.has(p) }, nil
}

// relistAbove is the plan size from which Apply re-checks files on a
// backend with a fast listing by listing them rather than by a stat each:
// on S3 a stat is a HEAD request, while a listing takes 1000 keys a
// request.
const relistAbove = 100

// stateCheck returns what tells, batch by batch, whether an orphan is
// still the regular file Find saw: same size, and the same mtime to the
// second (S3 gives listings in milliseconds and HEAD responses in whole
// seconds). The returned function is called with each batch just before
// the batch is acted on, with the files that passed the other checks.
//
//   - On a local disk (a backend that lists names faster than sizes), the
//     batch's files are stat'ed together, one verified handle per
//     directory: fresh, and no stat of files outside the plan.
//   - Large plans on backends that list a range of keys cheaply (S3,
//     where a stat is a request) are checked against a listing of the
//     batch's key range, taken just before the batch: one request per
//     batch of adjacent keys, and for a sorted plan (as Find makes) the
//     ranges do not overlap, so together they list no more keys than the
//     store holds.
//   - Large plans on other backends with a fast listing are checked
//     against one fresh listing.
//   - Otherwise each file is stat'ed as it is checked.
func (f *Finder) stateCheck(ctx context.Context, plan *Plan) (func(batch []Orphan) (func(Orphan) bool, error), error) {
	same := func(o Orphan, size int64, mod time.Time) bool {
		return size == o.Size && mod.Truncate(time.Second).Equal(o.ModTime.Truncate(time.Second))
	}
	each := func(o Orphan) bool {
		fi, err := storage.Lstat(f.fs, o.Path)
		return err == nil && fi.Mode().IsRegular() && same(o, fi.Size(), fi.ModTime())
	}
	// against checks orphans against entries read for them; one missing
	// from now is gone or no longer a regular file.
	against := func(now map[string]storage.Entry) func(Orphan) bool {
		return func(o Orphan) bool {
			e, ok := now[o.Path]
			return ok && same(o, e.Size, e.ModTime)
		}
	}
	if _, local := f.fs.(storage.NameLister); local {
		return func(batch []Orphan) (func(Orphan) bool, error) {
			paths := make([]string, len(batch))
			for i, o := range batch {
				paths[i] = o.Path
			}
			now := make(map[string]storage.Entry, len(batch))
			err := storage.StatFiles(ctx, f.fs, paths, func(_ int, e storage.Entry) error {
				if e.IsRegular() {
					now[e.Path] = e
				}
				return nil
			})
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				// A directory that cannot be opened safely (through a
				// link, say): check file by file; what fails is kept.
				return each, nil
			}
			return against(now), nil
		}, nil
	}
	if _, ranged := f.fs.(storage.RangeLister); ranged && len(plan.Orphans) > relistAbove {
		return func(batch []Orphan) (func(Orphan) bool, error) {
			first, last := batch[0].Path, batch[0].Path
			want := make(map[string]bool, len(batch))
			for _, o := range batch {
				first, last = min(first, o.Path), max(last, o.Path)
				want[o.Path] = true
			}
			now := make(map[string]storage.Entry, len(batch))
			err := storage.ListRange(ctx, f.fs, first, last, func(e storage.Entry) error {
				if e.IsRegular() && want[e.Path] {
					now[e.Path] = e
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			return against(now), nil
		}, nil
	}
	if _, fast := f.fs.(storage.Lister); !fast || len(plan.Orphans) <= relistAbove {
		return func([]Orphan) (func(Orphan) bool, error) { return each, nil }, nil
	}
	planned := make(map[string]bool, len(plan.Orphans))
	for _, o := range plan.Orphans {
		planned[o.Path] = true
	}
	now := make(map[string]storage.Entry, len(plan.Orphans))
	dirs := f.opts.Dirs
	if len(dirs) == 0 {
		dirs = []string{""}
	}
	for _, dir := range dirs {
		err := storage.List(ctx, f.fs, dir, func(e storage.Entry) error {
			if e.IsRegular() && planned[e.Path] {
				now[e.Path] = e
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	listed := against(now)
	return func([]Orphan) (func(Orphan) bool, error) { return listed, nil }, nil
}
