package orphan

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
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
	// scans the whole root.
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
	// are compared ("/media/", "https://cdn.example.com/media/") (O6).
	StripPrefixes []string
	// Quarantine, when set, is a directory below the root that orphans are
	// moved into instead of being deleted (O9). It is never scanned.
	Quarantine string
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

// New returns a Finder over fsys fed by refs. It panics on a malformed glob
// or quarantine directory: programming errors, not input.
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
	return f
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
	Created    time.Time                `json:"created"`
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
	// Missing lists (up to 10,000) references whose files do not exist
	// (O10); MissingCount counts them all.
	Missing      []string `json:"missing,omitempty"`
	MissingCount int      `json:"missing_count"`
}

// refSet is a set of 64-bit hashes of stored paths: 8 bytes per reference
// in a sorted slice (O11). A collision can only make an orphan look
// referenced, which keeps a file: the safe direction.
type refSet struct {
	seed maphash.Seed
	h    []uint64
}

func newRefSet() *refSet { return &refSet{seed: maphash.MakeSeed()} }

func (s *refSet) sum(p string) uint64 { return maphash.String(s.seed, p) }
func (s *refSet) add(p string)        { s.h = append(s.h, s.sum(p)) }
func (s *refSet) freeze() {
	slices.Sort(s.h)
	s.h = slices.Compact(s.h)
}
func (s *refSet) has(p string) bool {
	_, ok := slices.BinarySearch(s.h, s.sum(p))
	return ok
}

// hasBytes is has for a path held as bytes; maphash gives the same hash
// for a string and its bytes.
func (s *refSet) hasBytes(p []byte) bool {
	_, ok := slices.BinarySearch(s.h, maphash.Bytes(s.seed, p))
	return ok
}

// normalise turns a reference into a stored path, or "" if it cannot be one.
func (f *Finder) normalise(ref string) string {
	for _, pre := range f.opts.StripPrefixes {
		if strings.HasPrefix(ref, pre) {
			ref = ref[len(pre):]
			break
		}
	}
	p, err := storage.Clean(ref)
	if err != nil {
		return ""
	}
	return p
}

// loadRefs streams every reference into a set, calling onRef for each
// valid one. Any provider error is wrapped in ErrProvider.
func (f *Finder) loadRefs(ctx context.Context, onRef func(string)) (*refSet, int, int, error) {
	set := newRefSet()
	n, invalid := 0, 0
	err := f.refs.References(ctx, func(ref string) error {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		p := f.normalise(ref)
		if p == "" {
			invalid++
			return nil
		}
		set.add(p)
		if onRef != nil {
			onRef(p)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil && guards.provider {
		return nil, 0, 0, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	set.freeze()
	return set, n, invalid, nil
}

// Find lists storage, then streams the references, and returns the plan.
// Storage is listed first so that a file uploaded during the run either is
// not listed or is young. Any listing or provider error returns no plan.
func (f *Finder) Find(ctx context.Context) (*Plan, error) {
	now := f.now()
	plan := &Plan{Created: now, Kept: map[string]storage.Count{}, Orphans: []Orphan{}}
	keep := func(reason string, size int64) {
		c := plan.Kept[reason]
		c.Add(size)
		plan.Kept[reason] = c
	}
	stored := newRefSet()
	var cands candidates
	dirs := f.opts.Dirs
	if len(dirs) == 0 {
		dirs = []string{""}
	}
	for _, dir := range dirs {
		err := storage.List(ctx, f.fs, dir, func(e storage.Entry) error {
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
				keep(KeptNotRegular, 0)
				return nil
			}
			plan.Scanned.Add(e.Size)
			stored.add(e.Path)
			reason := f.excluded(e.Path, e.ModTime, now)
			if reason == "" {
				return cands.add(e.Path, e.Size, e.ModTime)
			}
			keep(reason, e.Size)
			if reason == KeptUnrecognised && len(plan.Unrecognised) < maxListed {
				plan.Unrecognised = append(plan.Unrecognised, e.Path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	stored.freeze()

	refs, n, invalid, err := f.loadRefs(ctx, func(p string) {
		if !stored.has(p) {
			plan.MissingCount++
			if len(plan.Missing) < maxListed {
				plan.Missing = append(plan.Missing, p)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	plan.References, plan.InvalidReferences = n, invalid
	if n == 0 && plan.Scanned.Files > 0 && !f.opts.AllowEmpty && guards.empty {
		return nil, ErrNoReferences
	}
	var tally storage.DirTally
	var referenced storage.Count
	plan.Orphans, referenced = cands.orphans(refs)
	if referenced.Files > 0 {
		plan.Kept[KeptReferenced] = referenced
	}
	for _, c := range plan.Orphans {
		plan.Total.Add(c.Size)
		tally.Add(c.Path, c.Size)
		f.event(ctx, Event{Action: "orphan", Path: c.Path, Size: c.Size})
	}
	slices.SortFunc(plan.Orphans, func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) })
	plan.Dirs = tally.Top(f.opts.TopDirs)
	return plan, nil
}

// excluded says why the file at p, last modified at mod, can never be an
// orphan, or "" if it can. Find and Apply both ask it, so a plan that was
// saved, edited or made with other options cannot delete what this finder
// would not have planned.
func (f *Finder) excluded(p string, mod, now time.Time) string {
	switch {
	case f.inQuarantine(p) || !f.inScope(p):
		return KeptExcluded
	case storage.MatchAny(f.opts.Exclude, p) || storage.IsTempName(p):
		return KeptExcluded
	case storage.ValidPath(p) != nil || (len(f.opts.Shapes) > 0 && !storage.MatchAny(f.opts.Shapes, p)):
		return KeptUnrecognised
	case guards.grace && f.opts.MinAge >= 0 && (mod.After(now) || now.Sub(mod) < f.opts.MinAge):
		return KeptYoung
	}
	return ""
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
		if d = strings.Trim(d, "/"); d == "" || d == "." || strings.HasPrefix(p, d+"/") {
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
