package orphan

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// ErrStaleListing: Options.Listing was made longer ago than the grace
// period (or the grace period is off), or claims to be made in the
// future. Find refuses it and makes no plan.
var ErrStaleListing = errors.New("listing older than the grace period")

// Listing is a listing of storage made earlier, which Find reads instead
// of listing storage itself: an S3 Inventory report
// (filefield/storage/s3fs/inventory.Report) is one. ListFiles behaves as
// storage.Lister documents; an error from it, at any point, makes Find
// return no plan. CreatedAt is when the listing was made: the state of
// storage it shows is at least that old.
type Listing interface {
	ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error
	CreatedAt() time.Time
}

// listingSkew is how far in the future a listing may say it was made, for
// clocks that disagree.
const listingSkew = 5 * time.Minute

// useListing refuses a stale Options.Listing and records on the plan that
// it was made from one. Without a listing it does nothing.
func (f *Finder) useListing(plan *Plan, now time.Time) error {
	l := f.opts.Listing
	if l == nil {
		return nil
	}
	created := l.CreatedAt().UTC()
	age := now.Sub(created)
	switch {
	case age < -listingSkew:
		return fmt.Errorf("orphan: %w: it was made at %s, after now (%s)", ErrStaleListing, created.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case f.opts.MinAge < 0 || !f.guards.grace:
		return fmt.Errorf("orphan: %w: a listing needs a grace period longer than its age, and the grace period is off", ErrStaleListing)
	case age >= f.opts.MinAge:
		return fmt.Errorf("orphan: %w: it was made %s ago (at %s), and the grace period is %s", ErrStaleListing, age.Round(time.Second), created.Format(time.RFC3339), f.opts.MinAge)
	}
	plan.Listed = &created
	return nil
}

// listFs is what Find lists: storage itself, or Options.Listing in front
// of it (storage.List then takes the listing's ListFiles, with its
// quarantine and key-range filters).
func (f *Finder) listFs() afero.Fs {
	if f.opts.Listing == nil {
		return f.fs
	}
	return listingFs{Fs: f.fs, l: f.opts.Listing}
}

type listingFs struct {
	afero.Fs
	l Listing
}

func (l listingFs) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	return l.l.ListFiles(ctx, opts, fn)
}

// listRoots returns the directories Find lists (in byte order for merge
// mode), and whether entries outside Options.Dirs must be dropped: a
// Listing is read whole on every call (an inventory report's data files
// hold the whole bucket), so it is read once for all of Options.Dirs.
func (f *Finder) listRoots(sorted bool) (roots []string, filter bool) {
	roots = f.scanRoots()
	if sorted {
		roots = f.mergeRoots()
	}
	if f.opts.Listing != nil && len(roots) > 1 {
		return []string{""}, true
	}
	return roots, false
}

// outside reports whether a listed entry is not Find's to consider: a
// directory, a path outside Options.Range, or, when filter (listRoots),
// outside Options.Dirs.
func (f *Finder) outside(e storage.Entry, filter bool) bool {
	return e.Type.IsDir() || !f.opts.Range.Contains(e.Path) || (filter && !f.inScope(e.Path))
}

// mustRecheck says whether Apply re-checks each file of plan against live
// storage (its size, time and ETag, and the references): always, unless a
// test of this package turned the re-check off; and even then for a plan
// made from a listing, which shows storage as it was, not as it is.
func (f *Finder) mustRecheck(plan *Plan) bool {
	return f.guards.recheck || plan.Listed != nil || f.opts.Listing != nil
}
