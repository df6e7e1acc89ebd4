package orphan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Quarantine is a trash folder below the storage root that orphans are
// moved into instead of being deleted: a run of [Finder.Apply] with
// Options.Quarantine set moves its files to
// "DIR/.mediaclean-quarantine/RUN/<stored path>" and records them in that
// run's manifest.json. The reserved name makes the area recognisable from
// storage alone: every listing skips it, so no sweep or orphan search
// sees a quarantined file whatever its options, and nothing but Restore
// and Purge deletes or moves what is inside.
type Quarantine struct {
	fs   afero.Fs
	dir  string
	opts QuarantineOptions
}

// QuarantineOptions configure a [Quarantine]. The zero value gives
// documented defaults.
type QuarantineOptions struct {
	// DryRun makes Restore and Purge report what they would do, and do
	// nothing.
	DryRun bool
	// Now is the clock for Purge. Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per event: restores and purges at Info,
	// failures at Warn, decisions to keep at Debug. Nil is silent.
	Logger *slog.Logger
	// OnEvent, when set, receives every per-file decision.
	OnEvent func(Event)
}

// Manifest records a quarantine run, for Restore and Purge.
type Manifest struct {
	Run     string    `json:"run"`     // the run's folder name
	Created time.Time `json:"created"` // when the run started; Purge ages runs by it
	Files   []Orphan  `json:"files"`   // the files the run moved, by their stored paths
}

const manifestName = "manifest.json"

// NewQuarantine returns the quarantine at dir, a directory below the root.
// It panics if dir is not a valid stored path.
func NewQuarantine(fsys afero.Fs, dir string, opts QuarantineOptions) *Quarantine {
	dir = strings.Trim(dir, "/")
	if err := storage.ValidPath(dir); err != nil {
		panic(fmt.Sprintf("orphan: invalid quarantine directory: %v", err))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Quarantine{fs: fsys, dir: dir, opts: opts}
}

func (q *Quarantine) event(ctx context.Context, e Event) { emit(ctx, q.opts.OnEvent, q.opts.Logger, e) }

// runDir is the folder of run.
func (q *Quarantine) runDir(run string) string {
	return path.Join(q.dir, storage.QuarantineDirName, run)
}

// quarantine moves targets into a new run of the finder's quarantine, a
// batch at a time. The manifest is written ahead: it lists a batch before
// any of its files moves, so every moved file is in a saved manifest even
// if a later write fails; then it is saved with what moved, or may have
// (a failed move).
func (f *Finder) quarantine(ctx context.Context, rep *Report, targets []storage.Target, opts storage.DeleteOptions) error {
	if len(targets) == 0 {
		return nil
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	now := f.now().UTC()
	run := now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	q := NewQuarantine(f.fs, f.opts.Quarantine, QuarantineOptions{})
	m := Manifest{Run: run, Created: now, Files: []Orphan{}}
	outcome := opts.OnOutcome
	var moved []Orphan
	opts.OnOutcome = func(o storage.Outcome) {
		// A failed or cancelled move may have moved the file (an answer
		// lost after the copy): it stays listed as written ahead, so that
		// Restore can put it back if it is in the quarantine, and finds
		// it at its path if it is not.
		if o.Action == storage.ActionMove || o.Action == storage.ActionFail || o.Reason == storage.KeptCancelled {
			moved = append(moved, Orphan{Path: o.Path, Size: o.Size, ModTime: o.ModTime})
		}
		outcome(o)
	}
	for start := 0; start < len(targets); start += applyBatch {
		batch := slices.Clone(targets[start:min(start+applyBatch, len(targets))])
		for i := range batch {
			batch[i].MoveTo = path.Join(q.runDir(run), batch[i].Path)
		}
		ahead := m
		for _, t := range batch {
			ahead.Files = append(slices.Clip(ahead.Files), Orphan{Path: t.Path, Size: t.Size, ModTime: t.ModTime})
		}
		if err := q.save(ctx, ahead); err != nil {
			return err // nothing of this batch has moved
		}
		rep.QuarantineRun = run // a manifest exists from here on
		moved = m.Files
		err := storage.Delete(ctx, f.fs, batch, opts)
		m.Files = moved
		if serr := q.save(ctx, m); serr != nil {
			return serr // the write-ahead manifest still lists them
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (q *Quarantine) save(ctx context.Context, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	// Replaced atomically: a failed save must leave the previous
	// (write-ahead) manifest intact, or moved files could not be restored.
	name := path.Join(q.runDir(m.Run), manifestName)
	pf, err := storage.Create(ctx, q.fs, name, storage.WriteOptions{Replace: true})
	if err != nil {
		return err
	}
	if _, err := pf.Write(b); err != nil {
		pf.Abort()
		return err
	}
	return pf.Commit(name)
}

// Manifest reads the manifest of run.
func (q *Quarantine) Manifest(ctx context.Context, run string) (*Manifest, error) {
	if err := storage.ValidPath(run); err != nil || strings.Contains(run, "/") {
		return nil, &storage.PathError{Op: "read", Path: run, Err: storage.ErrUnsafePath}
	}
	p := path.Join(q.runDir(run), manifestName)
	b, err := afero.ReadFile(storage.WithContext(ctx, q.fs), p)
	if err != nil {
		return nil, &storage.PathError{Op: "read", Path: p, Err: err}
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &storage.PathError{Op: "read", Path: p, Err: err}
	}
	if m.Run != run {
		return nil, &storage.PathError{Op: "read", Path: p, Err: errors.New("manifest of another run")}
	}
	return &m, nil
}

// Runs returns the manifests of the quarantine's runs, oldest first. Runs
// whose manifest cannot be read are left out.
func (q *Quarantine) Runs(ctx context.Context) ([]*Manifest, error) {
	area := path.Join(q.dir, storage.QuarantineDirName)
	entries, err := afero.ReadDir(storage.WithContext(ctx, q.fs), area)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &storage.PathError{Op: "list", Path: area, Err: err}
	}
	var out []*Manifest
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() {
			continue
		}
		if m, err := q.Manifest(ctx, e.Name()); err == nil {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Manifest) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Run    string `json:"run"`     // the run restored
	DryRun bool   `json:"dry_run"` // nothing was moved
	// Restored counts the files put back (in a dry run, that would be).
	Restored storage.Count `json:"restored"`
	// NotMoved counts files the manifest lists that are not in the
	// quarantine but at their own path: the run was stopped before it
	// moved them (or they were restored already).
	NotMoved storage.Count `json:"not_moved"`
	// Failed counts files that could not be put back: their path is taken
	// again, their directory cannot be made, or they are lost.
	// Failures lists the first storage.MaxFailures of them.
	Failed   storage.Count     `json:"failed"`
	Failures []storage.Failure `json:"failures,omitempty"`
}

// Restore moves the files of a quarantine run back to their stored paths.
// A file is never put back over anything at its path (a file, a
// directory, a link, even a dangling one): it stays in quarantine and is
// reported as failed. The error matches ErrDeleteFailed when some files
// could not be restored.
func (q *Quarantine) Restore(ctx context.Context, run string) (*RestoreReport, error) {
	rep := &RestoreReport{Run: run, DryRun: q.opts.DryRun}
	m, err := q.Manifest(ctx, run)
	if err != nil {
		return rep, err
	}
	fail := func(p string, size int64, why string) {
		rep.Failed.Add(size)
		if len(rep.Failures) < storage.MaxFailures {
			rep.Failures = append(rep.Failures, storage.Failure{Path: p, Error: why})
		}
		q.event(ctx, Event{Action: ActionFail, Path: p, Size: size, Reason: why})
	}
	targets := make([]storage.Target, 0, len(m.Files))
	for _, o := range m.Files {
		if storage.ValidPath(o.Path) != nil {
			fail(o.Path, o.Size, "unsafe path in manifest")
			continue
		}
		targets = append(targets, storage.Target{Path: path.Join(q.runDir(run), o.Path), MoveTo: o.Path, Size: o.Size, Index: len(targets)})
	}
	var dryOutcomes map[int]storage.Outcome
	if q.opts.DryRun {
		// A dry run finds what the moves would: the file still in
		// quarantine, and its path free.
		if dryOutcomes, err = q.dryRestore(ctx, targets); err != nil {
			return rep, err
		}
	}
	err = storage.Delete(ctx, q.fs, targets, storage.DeleteOptions{
		DryRun:          q.opts.DryRun,
		AllowQuarantine: true,
		OnOutcome: func(o storage.Outcome) {
			if d, ok := dryOutcomes[o.Index]; ok && o.Action == storage.ActionWouldMove {
				o = d
			}
			switch {
			case o.Action == storage.ActionMove || o.Action == storage.ActionWouldMove:
				rep.Restored.Add(o.Size)
				q.event(ctx, Event{Action: o.Action, Path: o.MoveTo, Size: o.Size})
			case o.Reason == storage.KeptGone || o.Reason == storage.KeptTaken && !present(ctx, q.fs, o.Path):
				// Not in quarantine: never moved, or restored already, if
				// a regular file of its size is at its path; lost
				// otherwise. (A backend may see the path taken before it
				// sees the quarantined file gone.)
				if restoredAt(ctx, q.fs, o.MoveTo, o.Size) {
					rep.NotMoved.Add(o.Size)
					q.event(ctx, Event{Action: ActionKeep, Path: o.MoveTo, Size: o.Size, Reason: "not_moved"})
				} else {
					fail(o.MoveTo, o.Size, "not in quarantine, and not at its path")
				}
			case o.Reason == storage.KeptTaken:
				fail(o.MoveTo, o.Size, "path is taken")
			case o.Reason == storage.KeptCancelled:
			case o.Err != nil:
				fail(o.MoveTo, o.Size, o.Err.Error())
			default:
				fail(o.MoveTo, o.Size, o.Reason)
			}
		},
	})
	if err != nil {
		return rep, err
	}
	if rep.Failed.Files > 0 {
		return rep, fmt.Errorf("orphan: restore %s: %w: %d files not restored", run, ErrDeleteFailed, rep.Failed.Files)
	}
	return rep, nil
}

// present reports whether anything is at p; an error counts as yes.
func present(ctx context.Context, fsys afero.Fs, p string) bool {
	found := false
	err := storage.Restat(ctx, fsys, []string{p}, func(int, storage.Entry) error {
		found = true
		return nil
	})
	return found || err != nil
}

// restoredAt reports whether a regular file of size bytes is at p: the
// quarantined file, back at its path (its time may differ: on S3 a move is
// a copy).
func restoredAt(ctx context.Context, fsys afero.Fs, p string, size int64) bool {
	found := false
	_ = storage.Restat(ctx, fsys, []string{p}, func(_ int, e storage.Entry) error {
		found = e.Type.IsRegular() && e.Size == size
		return nil
	})
	return found
}

// statQuarantined returns what is at each of paths, inside a quarantine
// area, by index: nil where nothing is. One stat each: a re-check by
// listing (storage.Restat, on S3) does not see the quarantine.
func statQuarantined(ctx context.Context, fsys afero.Fs, paths []string) ([]fs.FileInfo, error) {
	out := make([]fs.FileInfo, len(paths))
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fi, err := storage.Lstat(fsys, p)
		switch {
		case err == nil:
			out[i] = fi
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	return out, nil
}

// dryRestore returns, by target index, the outcomes a restore's moves
// would have that are not moves: the file no longer in quarantine
// (KeptGone), or its path taken (KeptTaken).
func (q *Quarantine) dryRestore(ctx context.Context, targets []storage.Target) (map[int]storage.Outcome, error) {
	src, dst := make([]string, len(targets)), make([]string, len(targets))
	for i, t := range targets {
		src[i], dst[i] = t.Path, t.MoveTo
	}
	inQuarantine, taken := make([]bool, len(targets)), make([]bool, len(targets))
	found, err := statQuarantined(ctx, q.fs, src)
	if err != nil {
		return nil, err
	}
	for i, fi := range found {
		inQuarantine[i] = fi != nil && fi.Mode().IsRegular()
	}
	if err := storage.Restat(ctx, q.fs, dst, func(i int, _ storage.Entry) error { taken[i] = true; return nil }); err != nil {
		return nil, err
	}
	out := map[int]storage.Outcome{}
	for i, t := range targets {
		t.Index = i
		switch {
		case !inQuarantine[i]:
			out[i] = storage.Outcome{Target: t, Action: storage.ActionKeep, Reason: storage.KeptGone}
		case taken[i]:
			out[i] = storage.Outcome{Target: t, Action: storage.ActionKeep, Reason: storage.KeptTaken}
		}
	}
	return out, nil
}

// PurgeReport says what Purge did.
type PurgeReport struct {
	DryRun bool `json:"dry_run"` // nothing was deleted
	// Runs names the runs purged (in a dry run, that would be).
	Runs []string `json:"runs"`
	// Deleted counts the quarantined files deleted for good.
	Deleted storage.Count `json:"deleted"`
	// Failed counts the deletions that failed; Failures lists the first
	// storage.MaxFailures of them.
	Failed   storage.Count     `json:"failed"`
	Failures []storage.Failure `json:"failures,omitempty"`
}

// Purge deletes the quarantine runs created more than retention ago. It
// deletes exactly the files each run's manifest lists, then the manifest,
// then the directories left empty: anything else found in a run folder is
// kept, and so is the folder. Runs without a readable manifest are kept.
// The error matches ErrDeleteFailed when some deletions failed; such a run
// keeps its manifest and can be purged again.
func (q *Quarantine) Purge(ctx context.Context, retention time.Duration) (*PurgeReport, error) {
	rep := &PurgeReport{DryRun: q.opts.DryRun, Runs: []string{}}
	runs, err := q.Runs(ctx)
	if err != nil {
		return rep, err
	}
	now := q.opts.Now()
	for _, m := range runs {
		if !storage.OlderThan(now, m.Created, retention) {
			continue
		}
		dir := q.runDir(m.Run)
		var paths, dirs []string
		for _, o := range m.Files {
			if storage.ValidPath(o.Path) != nil {
				continue // Delete would refuse it anyway
			}
			p := path.Join(dir, o.Path)
			paths = append(paths, p)
			dirs = append(dirs, path.Dir(p))
		}
		// A file a restore put back is no longer here: it is neither
		// deleted nor counted (on S3 a delete of a missing key succeeds,
		// and a dry run looks at nothing).
		found, err := statQuarantined(ctx, q.fs, paths)
		if err != nil {
			return rep, err
		}
		var targets []storage.Target
		for i, p := range paths {
			if found[i] != nil {
				targets = append(targets, storage.Target{Path: p, Size: found[i].Size()})
			}
		}
		failed := false
		opts := storage.DeleteOptions{DryRun: q.opts.DryRun, AllowQuarantine: true, OnOutcome: func(o storage.Outcome) {
			switch {
			case o.Action == storage.ActionDelete || o.Action == storage.ActionWouldDelete:
				rep.Deleted.Add(o.Size)
				q.event(ctx, Event{Action: ActionPurge, Path: o.Path, Size: o.Size})
			case o.Reason == storage.KeptGone:
			default:
				failed = true
				why := o.Reason
				if o.Err != nil {
					why = o.Err.Error()
				}
				rep.Failed.Add(o.Size)
				if len(rep.Failures) < storage.MaxFailures {
					rep.Failures = append(rep.Failures, storage.Failure{Path: o.Path, Error: why})
				}
				q.event(ctx, Event{Action: ActionFail, Path: o.Path, Size: o.Size, Reason: o.Reason, Err: o.Err})
			}
		}}
		if err := storage.Delete(ctx, q.fs, targets, opts); err != nil {
			return rep, err
		}
		if failed {
			continue // keep the manifest: the run can be purged again
		}
		manifest := opts
		manifest.OnOutcome = func(o storage.Outcome) {
			if o.Action == storage.ActionFail {
				failed = true
				rep.Failed.Add(0)
				rep.Failures = append(rep.Failures, storage.Failure{Path: o.Path, Error: o.Err.Error()})
			}
		}
		if err := storage.Delete(ctx, q.fs, []storage.Target{{Path: path.Join(dir, manifestName)}}, manifest); err != nil {
			return rep, err
		}
		if failed {
			continue
		}
		if !q.opts.DryRun {
			storage.RemoveEmptyDirs(ctx, q.fs, append(dirs, dir), q.dir, storage.DeleteOptions{AllowQuarantine: true})
		}
		rep.Runs = append(rep.Runs, m.Run)
	}
	if rep.Failed.Files > 0 {
		return rep, fmt.Errorf("orphan: purge: %w: %d files", ErrDeleteFailed, rep.Failed.Files)
	}
	return rep, nil
}
