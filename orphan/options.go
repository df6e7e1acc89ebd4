package orphan

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Sentinel errors; each guard has its own. Apply returns them with its
// report, having deleted nothing.
var (
	// ErrProvider: the reference provider failed or was cancelled.
	ErrProvider = errors.New("reference provider failed")
	// ErrAmbiguousReference: a reference names more stored paths than
	// Find can match (1024: its forms with and without each query, fragment,
	// escape and ".." segment), or more than 1024 places to cut it at
	// ('?', '#', ';'; 16 for a reference longer than 16 KiB). Leaving one
	// out could lose the file it means, so the run stops; the error quotes
	// the reference.
	ErrAmbiguousReference = errors.New("reference names too many stored paths")
	// ErrNoReferences: the provider returned no valid reference while
	// storage holds files, and Options.AllowEmpty is not set.
	ErrNoReferences = errors.New("no valid references while storage holds files")
	// ErrUncovered: a directory holds files older than the grace period
	// and not one valid reference points into it, and it is not declared
	// in Options.Unreferenced. The usual cause is a reference query
	// that is missing, such as one file column of the application left
	// out. The error names the directories.
	ErrUncovered = errors.New("directories with old files and no reference into them")
	// ErrDeleteLimit, ErrFractionLimit, ErrBytesLimit: the plan is over a
	// blast-radius limit and Options.Force is not set.
	ErrDeleteLimit   = errors.New("plan exceeds the maximum number of deletions")
	ErrFractionLimit = errors.New("plan exceeds the maximum fraction of scanned files")
	ErrBytesLimit    = errors.New("plan exceeds the maximum bytes to delete")
	// ErrInvalidPlan: a plan handed to Apply cannot be a plan this
	// package made (a negative size, an unsafe path).
	ErrInvalidPlan = errors.New("invalid plan")
	// ErrDeleteFailed is storage.ErrDeleteFailed: some deletions or moves
	// failed, and Apply did what its report says and no more.
	ErrDeleteFailed = storage.ErrDeleteFailed
)

// Defaults used when the matching Options field is zero.
const (
	DefaultMinAge        = 24 * time.Hour
	DefaultMaxFraction   = 0.5
	DefaultTopDirs       = 10
	DefaultCoverageDepth = 1
	maxListed            = 10_000 // cap on Unrecognised and Missing lists
)

// Options configure a [Finder]. The zero value gives documented defaults.
type Options struct {
	// Dirs limits the scan to these directories below the root; empty
	// scans the whole root. A directory inside another one listed is
	// scanned once.
	Dirs []string
	// Protected lists globs of paths never scanned as candidates (and
	// never deleted); a glob that matches a directory protects everything
	// in it ("receipts").
	Protected []string
	// Shapes lists globs stored paths look like ("profile_pics/*.jpg");
	// when set, files matching none are reported as unrecognised and never
	// deleted.
	Shapes []string
	// MinAge is the grace period: files not older than this are never
	// orphans, so an upload whose row has not committed yet survives.
	// Zero means DefaultMinAge (one day); negative means none.
	MinAge time.Duration
	// Unreferenced lists globs of files expected to have no reference
	// ("tmp/**", "qr_codes/**"): the coverage guard does not count them.
	Unreferenced []string
	// CoverageDepth is how deep the coverage guard looks: 1 (the default,
	// when zero) checks each top-level directory of the scan, 2 each of
	// their subdirectories, and so on.
	CoverageDepth int
	// MaxDeletes, MaxFraction and MaxBytes are the blast-radius limits.
	// They refuse: a plan over any of them is not applied at all
	// (ErrDeleteLimit, ErrFractionLimit, ErrBytesLimit), unlike a sweep's
	// budgets, which stop a run partway. MaxDeletes caps the number of
	// orphans (zero: no limit); MaxFraction their share of the scanned
	// files (zero: DefaultMaxFraction, half; negative: no limit);
	// MaxBytes their total size (zero: no limit).
	MaxDeletes  int
	MaxFraction float64
	MaxBytes    int64
	// Force applies a plan that a limit or the coverage guard refuses.
	Force bool
	// AllowEmpty allows an empty reference set.
	AllowEmpty bool
	// StripPrefixes are removed from the front of references before they
	// are compared ("/media/", "https://cdn.example.com/media/"); the
	// first that matches is removed. A reference with a query, a
	// fragment or %-escapes also matches the path without them.
	StripPrefixes []string
	// Quarantine, when set, is a directory below the root that orphans are
	// moved into instead of being deleted, under
	// storage.QuarantineDirName; see [Quarantine]. The root itself ("/")
	// is refused.
	Quarantine string
	// MeasureAll reads the size of every scanned file, so the plan's
	// Scanned and Kept carry all bytes (Plan.Unmeasured is 0). On a local
	// disk that is one more system call per file, which roughly doubles
	// the time of Find; object stores and MemMapFs list sizes for free.
	MeasureAll bool
	// Range, when set, limits the run to one shard of the key space: only
	// paths in the range are listed, planned, counted by the guards and
	// deleted, and a plan entry outside it is kept as excluded. The
	// references are still all read: those outside the range only count
	// towards the coverage guard and the empty-set guard. The coverage
	// guard also looks outside the range, at the directories no reference
	// points into (on object stores, one delimited listing per directory
	// above Options.CoverageDepth, and a listing of each such directory up
	// to its first old file), so every shard refuses what the whole run
	// refuses, not only the shard whose range holds the directory. (Those
	// delimited listings also return the files at those levels: a bucket
	// that keeps its files at the top of the root pays, in every shard, a
	// listing of all of them.) The
	// limits (MaxDeletes, MaxFraction, MaxBytes) apply to each shard on
	// its own. On object stores a range is listed from its start; a local
	// disk is walked whole and filtered. See [ShardMap].
	Range KeyRange
	// Merge runs Find and Apply in memory independent of the number of
	// references and stored files: the references are sorted externally
	// (runs of 64 Ki paths spilled to a temporary file in TempDir, then
	// merged) and merged against a listing of storage in byte order
	// (storage.ListOptions.Sorted). Memory then grows only with the
	// orphans, which the plan holds; disk use is about the size of the
	// references' text. Plans, guards and reports are the ones hash mode
	// (the default, which holds 8 bytes per reference and one entry per
	// stored file in memory) gives. A listing or a sort that breaks byte
	// order fails the run with storage.ErrUnsorted and deletes nothing.
	Merge bool
	// TempDir is where merge mode spills its sorted runs. Empty means
	// storage.TempDir(): $TMPDIR when set, else the system's temporary
	// directory, or /var/tmp where that is on a disk and the system's is
	// in memory (a tmpfs /tmp on Linux). The files are unlinked as soon as
	// they are created, where the system allows it, and removed when the
	// run ends.
	TempDir string
	// Listing, when set, is listed by Find instead of storage: a listing
	// made earlier, such as an S3 Inventory report, which costs no
	// request to storage. Find refuses it with ErrStaleListing unless it
	// is younger than the grace period (MinAge), and records its time in
	// Plan.Listed; Apply re-checks each file of the plan against live
	// storage (its size, time and ETag) before deleting it. The guards
	// count what the listing lists. In merge mode the listing's entries,
	// in whatever order it gives them, are sorted on disk first.
	Listing Listing
	// TopDirs is the length of Plan.Dirs. Zero means DefaultTopDirs.
	TopDirs int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per event: deletions and moves at Info,
	// failures at Warn, findings and decisions to keep at Debug (see
	// storage.LogEvent). Nil is silent.
	Logger *slog.Logger
	// OnEvent, when set, receives every per-file decision, on the
	// goroutine that called Find or Apply.
	OnEvent func(Event)
}

// Finder finds and removes files no record references. It is safe for
// concurrent use.
type Finder struct {
	fs     afero.Fs
	refs   Provider
	opts   Options
	now    func() time.Time
	guards guards
	// prefixPaths are the paths of StripPrefixes, read as stripLoosely
	// reads them.
	prefixPaths []string
}

// guards are the finder's safety checks, all on. Only this package's
// tests turn one off on a finder of their own, to show that it is
// load-bearing: with it off, a test that passes with it on must fail.
type guards struct {
	provider, empty, grace, limits, recheck, coverage bool
}

// New returns a Finder over fsys fed by refs. It panics on a malformed
// glob, quarantine directory or directory to scan: programming errors, not
// input. [CheckOptions] returns the same problems as an error.
func New(fsys afero.Fs, refs Provider, opts Options) *Finder {
	if err := CheckOptions(opts); err != nil {
		panic("orphan: " + err.Error())
	}
	f := &Finder{fs: fsys, refs: refs, opts: opts, now: opts.Now, guards: guards{true, true, true, true, true, true}}
	prefixes := opts.StripPrefixes
	for _, pre := range opts.StripPrefixes {
		if n, ok := nfc(pre); ok {
			prefixes = append(slices.Clip(prefixes), n) // a reference's NFC reading compares to it
		}
	}
	for _, pre := range prefixes {
		pp := afterHost(pre)
		if pp == "" {
			f.prefixPaths = append(f.prefixPaths, loosePath(pre))
			continue
		}
		f.prefixPaths = append(f.prefixPaths, loosePath(pp))
		// "cdn.example.com/media/x", without a scheme: the host as the
		// first segment.
		if i := strings.Index(pre, "://"); i >= 0 {
			f.prefixPaths = append(f.prefixPaths, loosePath(pre[i+3:]))
		}
	}
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
	if f.opts.CoverageDepth <= 0 {
		f.opts.CoverageDepth = DefaultCoverageDepth
	}
	f.opts.Quarantine = strings.Trim(opts.Quarantine, "/")
	f.opts.Dirs = scanDirs(opts.Dirs)
	return f
}

// CheckOptions returns what New would panic on, as an error: for options
// built from a command line or a configuration file.
func CheckOptions(opts Options) error {
	for _, globs := range [][]string{opts.Protected, opts.Shapes, opts.Unreferenced} {
		if err := storage.CheckGlobs(globs...); err != nil {
			return err
		}
	}
	if opts.Quarantine != "" {
		// "/" would be no quarantine at all, and Apply would delete.
		if err := storage.ValidPath(strings.Trim(opts.Quarantine, "/")); err != nil {
			return fmt.Errorf("invalid quarantine directory %q (a directory below the root): %w", opts.Quarantine, err)
		}
	}
	for _, d := range opts.Dirs {
		if _, err := storage.Clean(d, true); err != nil {
			return fmt.Errorf("invalid directory to scan: %w", err)
		}
	}
	if r := opts.Range; r.End != "" && r.End < r.Start {
		return fmt.Errorf("%w: range end %q before its start %q", ErrShardMap, r.End, r.Start)
	}
	return nil
}

// scanDirs cleans the directories to scan and drops any inside another
// (or repeated), so that no file is listed, counted or planned twice. Nil
// means the whole root.
func scanDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		d, _ := storage.Clean(d, true)
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

// scanRoots returns the directories to list: Dirs, or the root.
func (f *Finder) scanRoots() []string {
	if len(f.opts.Dirs) == 0 {
		return []string{""}
	}
	return f.opts.Dirs
}
