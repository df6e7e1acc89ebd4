package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Defaults used when the matching Options field is zero.
const (
	DefaultConcurrency = 4
	DefaultTempMaxAge  = 24 * time.Hour
	DefaultTopDirs     = 10
	DefaultJitter      = 0.1
)

// Rule selects files by path and age.
type Rule struct {
	// Name labels the rule in reports and events; defaults to Glob.
	Name string
	// Glob selects files by their stored path, relative to the root, with
	// "**" for any number of directories ("qr_codes/**"). Required.
	Glob string
	// MaxAge: files older than this are deleted. Zero with KeepLatest set
	// means any age (a file dated in the future is still young and kept);
	// zero without KeepLatest is refused by New.
	MaxAge time.Duration
	// Exclude lists globs of paths the rule never deletes.
	Exclude []string
	// KeepLatest keeps the newest KeepLatest files of each group whatever
	// their age (the seed's "one QR code per user": KeepLatest 1 with a
	// Group of the owner's folder). Zero keeps none by count. Files dated
	// in the future (a clock ahead) are young, kept, and not counted
	// among the newest, so they never push out the newest real file.
	KeepLatest int
	// Group maps a path to its group for KeepLatest; nil groups by
	// directory.
	Group func(path string) string
	// TimeFromName, when set, takes a file's time from its path instead of
	// its modification time (object stores, where mtime cannot be set).
	// A path it cannot parse is kept.
	TimeFromName func(path string) (time.Time, bool)
}

// Budget bounds what one sweep does. Zero fields mean no bound.
type Budget struct {
	// Files is the most files deleted.
	Files int
	// Bytes is the most bytes deleted.
	Bytes int64
	// Time is the longest a sweep runs, listing and deleting.
	Time time.Duration
}

// Options configure a [Sweeper]. The zero value (with Rules) gives
// documented defaults.
type Options struct {
	// Rules are tried in order; the first whose Glob matches a file decides
	// it. Required.
	Rules []Rule
	// Dir limits the sweep to a directory below the root ("" or "/" for
	// all). It must be a valid stored path (storage.ValidPath).
	Dir string
	// Protected lists globs of paths no rule deletes; a glob that matches
	// a directory protects everything in it ("receipts").
	Protected []string
	// Refs, when set, is asked about each file just before it would be
	// deleted: a file a row still references is kept (KeptReferenced), and
	// so is one the check fails for (KeptCheckFailed). Set it when rows
	// may point at files the rules match, as an application's QR codes
	// do, so that a sweep never leaves a row pointing at nothing.
	Refs storage.RefChecker
	// Approve, when set, is called once per sweep whose listing
	// completed, with the paths the plan would delete (filefield's temp
	// files among them), sorted in byte order (after the budgets, before Refs
	// is asked about each, so some may yet be kept; the slice is the
	// hook's), in a dry run too, before anything is deleted. An error refuses the sweep: every planned file
	// is kept (KeptRefused), nothing is deleted, and Sweep returns the
	// error wrapped (match it with errors.Is). A guard that needs the
	// whole plan goes here: it judges the listing the sweep deletes from,
	// where a dry run first would list twice and could approve a plan
	// other than the one applied.
	Approve func(ctx context.Context, paths []string) error
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// RemoveEmptyDirs removes directories that the sweep left empty,
	// bottom-up, never the root.
	RemoveEmptyDirs bool
	// Budget bounds one sweep: when a budget is spent the sweep stops
	// cleanly, keeps the rest, and Report.Stopped says which. (Budgets
	// stop; orphan's limits refuse a whole plan.)
	Budget Budget
	// Concurrency bounds parallel deletion batches; 1 is sequential. Zero
	// means DefaultConcurrency.
	Concurrency int
	// TempMaxAge: temporary files left by filefield (a crash between write
	// and rename) older than this are removed; younger ones may be in
	// flight and are kept. Zero means DefaultTempMaxAge; negative keeps
	// them all.
	TempMaxAge time.Duration
	// TopDirs is the length of Report.TopDirs. Zero means DefaultTopDirs.
	TopDirs int
	// Jitter spreads Run's intervals by up to this fraction either way.
	// Zero means DefaultJitter; negative means none.
	Jitter float64
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives one line per event: deletions at Info, failures at
	// Warn, every decision to keep at Debug (see storage.LogEvent). Nil is
	// silent.
	Logger *slog.Logger
	// OnEvent, when set, receives every per-file decision.
	OnEvent func(Event)
	// OnReport, when set, receives each report of Run.
	OnReport func(*Report, error)
}
