package orphan

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Sentinel errors; each guard has its own.
var (
	// ErrProvider: the reference provider failed or was cancelled; nothing
	// was deleted (O2).
	ErrProvider = errors.New("reference provider failed")
	// ErrNoReferences: the provider returned no reference while storage
	// holds files, and Options.AllowEmpty is not set (O3).
	ErrNoReferences = errors.New("no references while storage holds files")
	// ErrDeleteLimit, ErrFractionLimit, ErrBytesLimit: the plan is over a
	// blast-radius limit and Options.Force is not set (O8).
	ErrDeleteLimit   = errors.New("plan exceeds the maximum number of deletions")
	ErrFractionLimit = errors.New("plan exceeds the maximum fraction of scanned files")
	ErrBytesLimit    = errors.New("plan exceeds the maximum bytes to delete")
)

// Defaults used when the matching Options field is zero.
const (
	DefaultMinAge      = 24 * time.Hour
	DefaultMaxFraction = 0.5
	DefaultTopDirs     = 10
	maxListed          = 10_000 // cap on Unrecognised and Missing lists
)

// Options configure a [Finder]. The zero value gives documented defaults.
type Options struct {
	// Dirs limits the scan to these directories below the root; empty
	// scans the whole root. A directory inside another one listed is
	// scanned once.
	Dirs []string
	// Exclude lists globs of paths never scanned as candidates.
	Exclude []string
	// Shapes lists globs stored paths look like ("profile_pics/*.jpg");
	// when set, files matching none are reported as unrecognised and never
	// deleted (O5).
	Shapes []string
	// MinAge is the grace period: files younger than this are never
	// orphans, so an upload whose row has not committed yet survives (O4).
	// Zero means DefaultMinAge (one day); negative means none.
	MinAge time.Duration
	// MaxDeletes, MaxFraction and MaxBytes are the blast-radius limits
	// (O8). Zero MaxFraction means DefaultMaxFraction (half the scanned
	// files); zero MaxDeletes and MaxBytes mean no limit; a negative
	// MaxFraction means no limit.
	MaxDeletes  int
	MaxFraction float64
	MaxBytes    int64
	// Force applies a plan over a limit.
	Force bool
	// AllowEmpty allows an empty reference set (O3).
	AllowEmpty bool
	// StripPrefixes are removed from the front of references before they
	// are compared ("/media/", "https://cdn.example.com/media/"); the
	// first that matches is removed (O6). A reference with a query, a
	// fragment or %-escapes also matches the path without them.
	StripPrefixes []string
	// Quarantine, when set, is a directory below the root that orphans are
	// moved into instead of being deleted (O9). It is never scanned.
	Quarantine string
	// MeasureAll reads the size of every scanned file, so the plan's
	// Scanned and Kept carry all bytes (Plan.Unmeasured is 0). On a local
	// disk that is one more system call per file, which roughly doubles
	// the time of Find; object stores and MemMapFs list sizes for free.
	MeasureAll bool
	// TopDirs is the length of Plan.Dirs. Zero means DefaultTopDirs.
	TopDirs int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per deleted, quarantined or failed file.
	Logger *slog.Logger
	// OnEvent, when set, receives every per-file decision (R3).
	OnEvent func(Event)
}

// Finder finds and removes files no record references. It is safe for
// concurrent use.
type Finder struct {
	fs   afero.Fs
	refs Provider
	opts Options
	now  func() time.Time
}

// New returns a Finder over fsys fed by refs. It panics on a malformed glob,
// quarantine directory or directory to scan: programming errors, not input.
func New(fsys afero.Fs, refs Provider, opts Options) *Finder {
	f := &Finder{fs: fsys, refs: refs, opts: opts, now: opts.Now}
	if f.now == nil {
		f.now = time.Now
	}
	if f.opts.MinAge == 0 {
		f.opts.MinAge = DefaultMinAge
	}
	if f.opts.MaxFraction == 0 {
		f.opts.MaxFraction = DefaultMaxFraction
	}
	if f.opts.TopDirs == 0 {
		f.opts.TopDirs = DefaultTopDirs
	}
	for _, g := range append(slices.Clone(opts.Exclude), opts.Shapes...) {
		if !doublestar.ValidatePattern(g) {
			panic(fmt.Sprintf("orphan: invalid glob %q", g))
		}
	}
	if opts.Quarantine != "" {
		if err := storage.ValidPath(opts.Quarantine); err != nil {
			panic(fmt.Sprintf("orphan: invalid quarantine directory: %v", err))
		}
	}
	f.opts.Dirs = scanDirs(opts.Dirs)
	return f
}

// scanDirs cleans the directories to scan and drops any inside another
// (or repeated), so that no file is listed, counted or planned twice. Nil
// means the whole root.
func scanDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		d, err := storage.CleanDir(d)
		if err != nil {
			panic(fmt.Sprintf("orphan: invalid directory to scan: %v", err))
		}
		if d == "" {
			return nil
		}
		out = append(out, d)
	}
	slices.Sort(out) // a parent sorts before what is inside it
	var keep []string
	for _, d := range out {
		if !slices.ContainsFunc(keep, func(k string) bool { return d == k || strings.HasPrefix(d, k+"/") }) {
			keep = append(keep, d)
		}
	}
	return keep
}

// Reasons a scanned file is not an orphan, the keys of Plan.Kept.
const (
	KeptReferenced   = "referenced"
	KeptYoung        = "young"
	KeptExcluded     = "excluded"
	KeptUnrecognised = "unrecognised"
	KeptChanged      = "changed" // Apply: the file changed since Find
	KeptNotRegular   = "not_regular"
)

// Orphan is a file no record references.
type Orphan struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
}

// Plan is what Find found: the orphans and the audit figures (the seed's
// "how many orphaned files, total storage wasted, which directories have
// the most"). It marshals to JSON and can be applied later.
type Plan struct {
	Created time.Time `json:"created"`
	// Duration is how long Find took.
	Duration   time.Duration            `json:"duration_ns"`
	Scanned    storage.Count            `json:"scanned"`
	Orphans    []Orphan                 `json:"orphans"`
	Total      storage.Count            `json:"total"`
	Dirs       []storage.DirCount       `json:"dirs"`
	Kept       map[string]storage.Count `json:"kept"`
	References int                      `json:"references"`
	// InvalidReferences counts references that are not valid stored paths
	// after normalisation; they can match no file.
	InvalidReferences int `json:"invalid_references"`
	// Unrecognised lists (up to 10,000) files whose names match no shape.
	Unrecognised []string `json:"unrecognised,omitempty"`
	// Missing lists (up to 10,000, sorted) references whose files do not
	// exist (O10); MissingCount counts them all.
	Missing      []string `json:"missing,omitempty"`
	MissingCount int      `json:"missing_count"`
	// Unmeasured counts scanned files whose size was never read, so
	// Scanned.Bytes and Kept's bytes leave them out. On backends that list
	// names faster than sizes (RootFs), Find reads sizes only of files that
	// can be orphans, which makes a plan about twice as fast; set
	// Options.MeasureAll to read them all. Orphans are always measured.
	Unmeasured int `json:"unmeasured"`
}

// normalise returns the stored paths ref may name (O6): ref itself,
// cleaned, after the first matching StripPrefixes entry; and for a
// reference written as a URL path, with a query, a fragment or
// %-escapes ("x.jpg?v=3", "my%20photo.jpg"), also that path without its
// query and fragment, escaped and unescaped. Matching more paths can only
// keep more files, the safe direction. Paths that cannot be stored paths
// are left out; n == 0 means none could.
func (f *Finder) normalise(ref string) (paths [3]string, n int) {
	for _, pre := range f.opts.StripPrefixes {
		if strings.HasPrefix(ref, pre) {
			ref = ref[len(pre):]
			break
		}
	}
	add := func(r string) {
		p, err := storage.Clean(r)
		if err == nil && !slices.Contains(paths[:n], p) {
			paths[n] = p
			n++
		}
	}
	add(ref)
	if strings.ContainsAny(ref, "?#%") {
		u := ref
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			u = u[:i]
		}
		add(u)
		if v, err := url.PathUnescape(u); err == nil {
			add(v)
		}
	}
	return paths, n
}

// cpuWorkers is how many goroutines share CPU-bound work (hashing
// references, looking candidates up): one per CPU, at most eight, since
// each holds its own buffers.
func cpuWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// refCounts are what loading the references counted.
type refCounts struct {
	n, invalid   int
	missing      []string // up to maxListed, sorted
	missingCount int
}

// loadRefs streams every reference into a set. Given stored, it also
// counts the references that are not in it and lists some (O10). The
// provider runs on the calling goroutine and hands references over in
// batches; one worker per CPU (up to eight) normalises and hashes them, so
// that work overlaps the provider's own (reading lines, scanning rows). Any
// provider error is wrapped in ErrProvider.
func (f *Finder) loadRefs(ctx context.Context, stored *pathSet) (*pathSet, refCounts, error) {
	const batchLen = 1024
	type worker struct {
		hashes
		invalid, missingCount int
		missing               []string
	}
	seed := maphash.MakeSeed()
	workers := make([]worker, cpuWorkers())
	batches := make(chan []string, len(workers))
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.seed = seed
		wg.Go(func() {
			// Each form of each reference of a batch, with the reference
			// it came from; the stored-file lookups are done per batch.
			var forms []string
			var owner []int32
			var hs []uint64
			var found []bool
			for batch := range batches {
				forms, owner = forms[:0], owner[:0]
				for ri, ref := range batch {
					paths, n := f.normalise(ref)
					if n == 0 {
						w.invalid++
						continue
					}
					for _, p := range paths[:n] {
						w.add(p)
						if stored != nil {
							forms, owner = append(forms, p), append(owner, int32(ri))
						}
					}
				}
				if stored == nil {
					continue
				}
				hs, found = hs[:0], slices.Grow(found[:0], len(forms))[:len(forms)]
				for _, p := range forms {
					hs = append(hs, maphash.String(stored.seed, p))
				}
				stored.hasHashes(hs, found)
				// A reference is missing when none of its forms exists.
				for k := 0; k < len(forms); {
					ri, exists := owner[k], false
					first := forms[k]
					for ; k < len(forms) && owner[k] == ri; k++ {
						exists = exists || found[k]
					}
					if !exists {
						if w.missingCount++; len(w.missing) < maxListed {
							w.missing = append(w.missing, first)
						}
					}
				}
			}
		})
	}
	// The workers end when batches closes: also if the provider panics.
	finish := sync.OnceFunc(func() { close(batches); wg.Wait() })
	defer finish()
	var counts refCounts
	batch := make([]string, 0, batchLen)
	err := f.refs.References(ctx, func(ref string) error {
		if counts.n++; counts.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if batch = append(batch, ref); len(batch) == batchLen {
			batches <- batch
			batch = make([]string, 0, batchLen)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil && len(batch) > 0 {
		batches <- batch
	}
	finish()
	if err != nil && guards.provider {
		return nil, refCounts{}, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	parts := make([]*hashes, len(workers))
	for i := range workers {
		w := &workers[i]
		parts[i] = &w.hashes
		counts.invalid += w.invalid
		counts.missingCount += w.missingCount
		counts.missing = append(counts.missing, w.missing...)
	}
	slices.Sort(counts.missing)
	counts.missing = slices.Clip(counts.missing[:min(len(counts.missing), maxListed)])
	return newPathSet(seed, parts...), counts, nil
}

// Find lists storage, then streams the references, and returns the plan.
// Storage is listed first so that a file uploaded during the run either is
// not listed or is young. Any listing, provider or stat error returns no
// plan.
//
// On backends that list names faster than sizes (RootFs), only the files
// that could be orphans (unreferenced, not excluded) are stat'ed, after the
// references are in: see [Plan.Unmeasured] and [Options.MeasureAll].
func (f *Finder) Find(ctx context.Context) (*Plan, error) {
	now, started := f.now(), time.Now()
	plan := &Plan{Created: now, Kept: map[string]storage.Count{}, Orphans: []Orphan{}}
	defer func() { plan.Duration = time.Since(started) }()
	keep := func(reason, path string, size int64) {
		c := plan.Kept[reason]
		c.Add(size)
		plan.Kept[reason] = c
		f.event(ctx, Event{Action: "keep", Path: path, Reason: reason, Size: size})
	}
	list := func(ctx context.Context, fsys afero.Fs, dir string, fn func(storage.Entry) error) error {
		return storage.ListNames(ctx, fsys, dir, nil, fn) // nothing is measured yet
	}
	if f.opts.MeasureAll {
		list = storage.List
	}
	stored := hashes{seed: maphash.MakeSeed()}
	var cands candidates
	dirs := f.opts.Dirs
	if len(dirs) == 0 {
		dirs = []string{""}
	}
	for _, dir := range dirs {
		err := list(ctx, f.fs, dir, func(e storage.Entry) error {
			if f.inQuarantine(e.Path) {
				if e.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if e.IsDir() {
				return nil
			}
			if !e.IsRegular() {
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
			return cands.add(e.Path, e.Size, e.ModTime)
		})
		if err != nil {
			return nil, err
		}
	}
	storedSet := newPathSet(stored.seed, &stored)
	refs, counts, err := f.loadRefs(ctx, storedSet)
	if err != nil {
		return nil, err
	}
	storedSet = nil
	n := counts.n
	plan.MissingCount, plan.Missing = counts.missingCount, counts.missing
	plan.References, plan.InvalidReferences = n, counts.invalid
	if n == 0 && plan.Scanned.Files > 0 && !f.opts.AllowEmpty && guards.empty {
		return nil, ErrNoReferences
	}
	var onReferenced func(path string, size int64)
	if f.opts.OnEvent != nil {
		onReferenced = func(path string, size int64) {
			f.opts.OnEvent(Event{Action: "keep", Path: path, Reason: KeptReferenced, Size: size})
		}
	}
	unreferenced, referenced := cands.unreferenced(refs, onReferenced)
	if referenced.Files > 0 {
		plan.Kept[KeptReferenced] = referenced
	}
	if plan.Orphans, err = f.measure(ctx, plan, unreferenced, now, keep); err != nil {
		return nil, err
	}
	var tally storage.DirTally
	for _, c := range plan.Orphans {
		plan.Total.Add(c.Size)
		tally.Add(c.Path, c.Size)
		f.event(ctx, Event{Action: "orphan", Path: c.Path, Size: c.Size})
	}
	slices.SortFunc(plan.Orphans, func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) })
	plan.Dirs = tally.Top(f.opts.TopDirs)
	return plan, nil
}

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
		err := storage.StatFiles(ctx, f.fs, paths, func(j int, e storage.Entry) error {
			o := &files[idx[j]]
			o.Size, o.ModTime, state[j] = e.Size, e.ModTime, measured
			if !e.IsRegular() {
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
func (f *Finder) excludedByName(p string) string {
	switch {
	case f.inQuarantine(p) || !f.inScope(p):
		return KeptExcluded
	case storage.MatchAny(f.opts.Exclude, p) || storage.IsTempName(p):
		return KeptExcluded
	case storage.ValidPath(p) != nil || (len(f.opts.Shapes) > 0 && !storage.MatchAny(f.opts.Shapes, p)):
		return KeptUnrecognised
	}
	return ""
}

// young reports whether a file last modified at mod is inside the grace
// period (O4); a time in the future is young.
func (f *Finder) young(mod, now time.Time) bool {
	return guards.grace && f.opts.MinAge >= 0 && (mod.After(now) || now.Sub(mod) < f.opts.MinAge)
}

func (f *Finder) inQuarantine(p string) bool {
	q := f.opts.Quarantine
	return q != "" && (p == q || strings.HasPrefix(p, q+"/"))
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

// CheckLimits returns the sentinel of the first blast-radius limit the plan
// exceeds, or nil. Apply refuses such a plan unless Options.Force is set.
func (f *Finder) CheckLimits(plan *Plan) error {
	n := len(plan.Orphans)
	switch {
	case f.opts.MaxDeletes > 0 && n > f.opts.MaxDeletes:
		return fmt.Errorf("%w: %d > %d", ErrDeleteLimit, n, f.opts.MaxDeletes)
	case f.opts.MaxFraction > 0 && plan.Scanned.Files > 0 && float64(n) > f.opts.MaxFraction*float64(plan.Scanned.Files):
		return fmt.Errorf("%w: %d of %d files", ErrFractionLimit, n, plan.Scanned.Files)
	case f.opts.MaxBytes > 0 && plan.Total.Bytes > f.opts.MaxBytes:
		return fmt.Errorf("%w: %d > %d bytes", ErrBytesLimit, plan.Total.Bytes, f.opts.MaxBytes)
	}
	return nil
}
