package orphan

import (
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Find lists storage, then streams the references, and returns the plan.
// Storage is listed first so that a file uploaded during the run either is
// not listed or is young. In merge mode ([Options.Merge]) the references
// are read and sorted first, and storage is listed after: a row committed
// during the run is protected by the grace period and by Apply, which
// reads the references again; the plan is the one hash mode makes. Any listing, provider or stat error returns no
// plan, as do the guards that need no limit: no valid reference at all
// ([ErrNoReferences]). Plan.Uncovered and [Finder.Check] tell the
// others.
//
// On backends that list names faster than sizes (RootFs), only the files
// that could be orphans (unreferenced, not excluded) are stat'ed, after the
// references are in: see [Plan.Unmeasured] and [Options.MeasureAll].
func (f *Finder) Find(ctx context.Context) (*Plan, error) {
	now, started := f.now(), time.Now()
	plan := &Plan{Created: now, Kept: storage.KeptTally{}, Orphans: []Orphan{}}
	if !f.opts.Range.all() {
		r := f.opts.Range
		plan.Range = &r
	}
	defer func() { plan.Duration = time.Since(started) }()
	if err := f.useListing(plan, now); err != nil {
		return nil, err
	}
	keep := func(reason, path string, size int64) {
		plan.Kept.Add(reason, size)
		f.event(ctx, Event{Action: ActionKeep, Path: path, Reason: reason, Size: size})
	}
	measure := measureNone // nothing is measured yet
	if f.opts.MeasureAll {
		measure = nil
	}
	list := f.listHashed
	if f.opts.Merge {
		list = f.listMerged
	}
	unreferenced, counts, err := list(ctx, plan, measure, keep)
	if err != nil {
		return nil, err
	}
	plan.MissingCount, plan.Missing = counts.missingCount, counts.missing
	plan.References, plan.InvalidReferences = counts.n, counts.invalid
	slices.Sort(plan.Unrecognised) // the listing's order is the backend's
	if counts.n == counts.invalid && plan.Scanned.Files > 0 && !f.opts.AllowEmpty && f.guards.empty {
		return nil, ErrNoReferences
	}
	if plan.Orphans, err = f.measure(ctx, plan, unreferenced, now, keep); err != nil {
		return nil, err
	}
	sortByPath(plan.Orphans, cpuWorkers())
	var tally storage.DirTally
	for _, c := range plan.Orphans {
		plan.Total.Add(c.Size)
		tally.Add(c.Path, c.Size)
		f.event(ctx, Event{Action: ActionOrphan, Path: c.Path, Size: c.Size})
	}
	plan.Dirs = tally.Top(f.opts.TopDirs)
	plan.Uncovered = f.uncovered(plan.Orphans, counts.covered)
	elsewhere, err := f.uncoveredElsewhere(ctx, counts.covered, now)
	if err != nil {
		return nil, err
	}
	plan.Uncovered = mergeSorted(plan.Uncovered, elsewhere)
	plan.made = &madeBy{finder: f, scanned: plan.Scanned.Files}
	return plan, nil
}

// listHashed is Find's listing in hash mode: storage listed first, its
// candidates held in memory, then the references streamed into a set of
// hashes and the candidates looked up in it. It returns the unreferenced
// candidates and what the references counted.
func (f *Finder) listHashed(ctx context.Context, plan *Plan, measure func(string) bool, keep func(reason, path string, size int64)) ([]Orphan, refCounts, error) {
	stored := hashes{seed: maphash.MakeSeed()}
	var cands candidates
	roots, filter := f.listRoots(false)
	for _, dir := range roots {
		err := storage.List(ctx, f.listFs(), f.opts.Range.listOptions(dir, measure), func(e storage.Entry) error {
			if f.outside(e, filter) {
				return nil
			}
			if !e.Type.IsRegular() {
				keep(KeptNotRegular, e.Path, 0)
				return nil
			}
			// A zero ModTime marks a file listed by name only; its size
			// is read later if it can be an orphan.
			plan.Scanned.Add(e.Size)
			if e.ModTime.IsZero() {
				plan.Unmeasured++
			}
			stored.add(e.Path)
			if reason := f.excludedByName(e.Path); reason != "" {
				keep(reason, e.Path, e.Size)
				if reason == KeptUnrecognised && len(plan.Unrecognised) < maxListed {
					plan.Unrecognised = append(plan.Unrecognised, e.Path)
				}
				return nil
			}
			return cands.add(e.Path, e.Size, e.ModTime, e.ETag)
		})
		if err != nil {
			return nil, refCounts{}, err
		}
	}
	storedSet := newPathSet(stored.seed, &stored)
	refs, counts, err := f.loadRefs(ctx, storedSet, true)
	if err != nil {
		return nil, refCounts{}, err
	}
	unreferenced, referenced := cands.unreferenced(refs, f.onReferenced(ctx))
	if referenced.Files > 0 {
		plan.Kept[KeptReferenced] = referenced
	}
	return unreferenced, counts, nil
}

// sortByPath sorts orphans by path on up to workers goroutines: it splits
// the slice around a sampled pivot and sorts the two sides at once, and
// so on down, since sorting a large plan is otherwise the longest step
// after the storage passes that runs on one core.
func sortByPath(orphans []Orphan, workers int) {
	byPath := func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) }
	const minSplit = 1 << 14 // below this a second goroutine costs more than it saves
	if workers < 2 || len(orphans) < minSplit {
		slices.SortFunc(orphans, byPath)
		return
	}
	// The pivot is the median of paths sampled across the slice, so the
	// sides are about equal whatever the order.
	const samples = 31
	var sample [samples]string
	for i := range sample {
		sample[i] = orphans[i*(len(orphans)-1)/(samples-1)].Path
	}
	slices.Sort(sample[:])
	pivot := sample[samples/2]
	// Paths before the pivot go left; the pivot and after go right.
	lo, hi := 0, len(orphans)-1
	for {
		for lo <= hi && orphans[lo].Path < pivot {
			lo++
		}
		for lo <= hi && orphans[hi].Path >= pivot {
			hi--
		}
		if lo >= hi {
			break
		}
		orphans[lo], orphans[hi] = orphans[hi], orphans[lo]
	}
	var wg sync.WaitGroup
	wg.Go(func() { sortByPath(orphans[:lo], workers/2) })
	sortByPath(orphans[lo:], workers-workers/2)
	wg.Wait()
}

// measureNone measures no file in a listing: where names are cheaper than
// sizes, only the files that can be orphans are measured, after the
// references are in.
func measureNone(string) bool { return false }

// measure stats the unreferenced files the listing did not measure, all in
// one batch, and keeps what is young, gone or no longer a regular file; it
// returns the rest, the orphans, reusing the slice.
func (f *Finder) measure(ctx context.Context, plan *Plan, files []Orphan, now time.Time, keep func(reason, path string, size int64)) ([]Orphan, error) {
	const (
		gone = iota
		measured
		notRegular
	)
	var idx []int32 // positions in files of the unmeasured ones
	for i := range files {
		if files[i].ModTime.IsZero() {
			idx = append(idx, int32(i))
		}
	}
	if len(idx) > 0 {
		paths := make([]string, len(idx))
		for j, i := range idx {
			paths[j] = files[i].Path
		}
		state := make([]uint8, len(idx))
		err := storage.Restat(ctx, f.fs, paths, func(j int, e storage.Entry) error {
			o := &files[idx[j]]
			o.Size, o.ModTime, o.ETag, state[j] = e.Size, e.ModTime, e.ETag, measured
			if !e.Type.IsRegular() {
				state[j] = notRegular
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			switch state[j] {
			case gone:
				files[i].ModTime = time.Time{}
			case notRegular:
				files[i].Size, files[i].ModTime = -1, time.Time{}
			default:
				plan.Scanned.Bytes += files[i].Size
				plan.Unmeasured--
			}
		}
	}
	out := files[:0]
	for _, o := range files {
		switch {
		case o.Size < 0:
			keep(KeptNotRegular, o.Path, 0)
		case o.ModTime.IsZero():
			keep(KeptChanged, o.Path, 0) // gone since it was listed
		case f.young(o.ModTime, now):
			keep(KeptYoung, o.Path, o.Size)
		default:
			out = append(out, o)
		}
	}
	return slices.Clip(out), nil
}

// excluded says why the file at p, last modified at mod, can never be an
// orphan, or "" if it can. Find and Apply both ask it, so a plan that was
// saved, edited or made with other options cannot delete what this finder
// would not have planned.
func (f *Finder) excluded(p string, mod, now time.Time) string {
	if reason := f.excludedByName(p); reason != "" {
		return reason
	}
	if f.young(mod, now) {
		return KeptYoung
	}
	return ""
}

// excludedByName is the part of excluded that needs only the path.
func (f *Finder) excludedByName(p string) string { return f.excludedIn(p, true) }

// excludedIn is excludedByName, leaving Options.Range out unless ranged.
func (f *Finder) excludedIn(p string, ranged bool) string {
	switch {
	case !f.inScope(p), ranged && !f.opts.Range.Contains(p):
		return KeptExcluded
	case storage.IsTempName(p):
		return KeptInFlight
	case storage.ValidPath(p) != nil:
		return KeptUnsafe
	case len(f.opts.Shapes) > 0 && !storage.MatchAny(f.opts.Shapes, p):
		return KeptUnrecognised
	case storage.Protects(f.opts.Protected, p):
		return KeptProtected
	}
	return ""
}

// young reports whether a file last modified at mod is inside the grace
// period: not older than MinAge, or modified in the future.
func (f *Finder) young(mod, now time.Time) bool {
	if !f.guards.grace {
		return false
	}
	return mod.After(now) || (f.opts.MinAge >= 0 && !storage.OlderThan(now, mod, f.opts.MinAge))
}

func (f *Finder) inScope(p string) bool {
	if len(f.opts.Dirs) == 0 {
		return true
	}
	for _, d := range f.opts.Dirs {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// onReferenced returns the callback that emits a keep event for each
// referenced candidate, or nil when no one listens: a billion referenced
// files make no billion events for nobody.
func (f *Finder) onReferenced(ctx context.Context) func(path string, size int64) {
	if f.opts.OnEvent == nil && (f.opts.Logger == nil || !f.opts.Logger.Enabled(ctx, slog.LevelDebug)) {
		return nil
	}
	return func(path string, size int64) {
		f.event(ctx, Event{Action: ActionKeep, Path: path, Reason: KeptReferenced, Size: size})
	}
}
