package orphan

import (
	"fmt"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Reasons a scanned file is not an orphan, the keys of Plan.Kept and
// Report.Kept. Those shared with the storage layer (and sweep and
// filefield) have its values.
const (
	KeptReferenced   = storage.KeptReferenced
	KeptYoung        = storage.KeptYoung
	KeptProtected    = storage.KeptProtected // matches Options.Protected
	KeptExcluded     = "excluded"            // outside Options.Dirs
	KeptInFlight     = storage.KeptInFlight  // a filefield temp file
	KeptUnsafe       = storage.KeptUnsafe    // not a valid stored path: never touched
	KeptUnrecognised = "unrecognised"        // a valid path that matches no Options.Shapes
	KeptChanged      = storage.KeptChanged   // Apply: the file changed since Find
	KeptGone         = storage.KeptGone      // Apply: the file was gone already
	KeptNotRegular   = storage.KeptNotRegular
)

// Orphan is a file no record references.
type Orphan struct {
	Path    string    `json:"path"`  // the stored path
	Size    int64     `json:"size"`  // its size when Find saw it
	ModTime time.Time `json:"mtime"` // its modification time when Find saw it
	// ETag is the object's entity tag when Find saw it, on object stores
	// (empty elsewhere). Apply deletes the object only if it still has
	// it: see storage.Target.ETag.
	ETag string `json:"etag,omitempty"`
}

// Plan is what Find found: the orphans and the audit figures (the seed's
// "how many orphaned files, total storage wasted, which directories have
// the most"). It marshals to JSON and can be applied later. Apply treats
// a plan as a list of candidates: it checks every file again, and
// computes the figures its guards use itself.
type Plan struct {
	// Created is when Find started.
	Created time.Time `json:"created"`
	// Duration is how long Find took.
	Duration time.Duration `json:"duration_ns"`
	// Scanned counts the regular files listed (see Unmeasured for the
	// bytes).
	Scanned storage.Count `json:"scanned"`
	// Orphans are the files to delete, sorted by path.
	Orphans []Orphan `json:"orphans"`
	// Total counts the orphans: the storage they waste.
	Total storage.Count `json:"total"`
	// Dirs are the directories with the most orphaned bytes, most first
	// (Options.TopDirs of them).
	Dirs []storage.DirCount `json:"dirs"`
	// Kept counts, by Kept* reason, the scanned files that are not
	// orphans.
	Kept storage.KeptTally `json:"kept"`
	// References counts the references streamed, InvalidReferences those
	// whose own reading is not a valid stored path after normalisation:
	// they do not count as references for the empty-set guard, though a
	// reading cut at a '?' or '#', or in another character set, may still
	// keep a file.
	References        int `json:"references"`
	InvalidReferences int `json:"invalid_references"`
	// Uncovered lists the directories the coverage guard refuses: they
	// hold orphans older than the grace period and not one valid
	// reference points into them (see ErrUncovered).
	Uncovered []string `json:"uncovered,omitempty"`
	// Unrecognised lists (up to 10,000, sorted) files whose names match no
	// shape.
	Unrecognised []string `json:"unrecognised,omitempty"`
	// Missing lists the references whose files do not exist (their first
	// form), sorted: the first 10,000 in byte order when there are more;
	// MissingCount counts them all.
	Missing      []string `json:"missing,omitempty"`
	MissingCount int      `json:"missing_count"`
	// Unmeasured counts scanned files whose size was never read, so
	// Scanned.Bytes and Kept's bytes leave them out. On backends that list
	// names faster than sizes (RootFs), Find reads sizes only of files that
	// can be orphans, which makes a plan about twice as fast; set
	// Options.MeasureAll to read them all. Orphans are always measured.
	Unmeasured int `json:"unmeasured"`
	// Range is the shard of the key space the plan covers (Options.Range);
	// absent for the whole root.
	Range *KeyRange `json:"range,omitempty"`
	// Listed, for a plan made from Options.Listing (an S3 Inventory
	// report) instead of a listing of live storage, is when that listing
	// was made. Apply re-checks every file of such a plan against live
	// storage before deleting it.
	Listed *time.Time `json:"listed,omitempty"`

	// made is set by Find and lost in JSON: Apply trusts the scanned
	// count only of a plan its own finder made in this process, and only
	// the count Find recorded here.
	made *madeBy
}

// madeBy records which Finder made a plan, and what it scanned.
type madeBy struct {
	finder  *Finder
	scanned int
}

// Check returns the sentinel of the first guard the plan's own figures
// trip (the coverage guard, then the blast-radius limits), or nil; with
// Options.Force it returns nil. Apply does not rely on it: it recomputes
// every figure it guards on.
func (f *Finder) Check(plan *Plan) error {
	return f.check(len(plan.Orphans), plan.Scanned.Files, plan.Total.Bytes, plan.Uncovered)
}

func (f *Finder) check(n, scanned int, bytes int64, uncovered []string) error {
	if f.opts.Force {
		return nil
	}
	if len(uncovered) > 0 && f.guards.coverage {
		return fmt.Errorf("%w: %q; declare them in Options.Unreferenced (--unreferenced) if they are expected to hold unreferenced files", ErrUncovered, uncovered)
	}
	if !f.guards.limits {
		return nil
	}
	switch {
	case f.opts.MaxDeletes > 0 && n > f.opts.MaxDeletes:
		return fmt.Errorf("%w: %d > %d", ErrDeleteLimit, n, f.opts.MaxDeletes)
	case f.opts.MaxFraction > 0 && n > 0 && float64(n) > f.opts.MaxFraction*float64(scanned):
		return fmt.Errorf("%w: %d of %d files", ErrFractionLimit, n, scanned)
	case f.opts.MaxBytes > 0 && bytes > f.opts.MaxBytes:
		return fmt.Errorf("%w: %d > %d bytes", ErrBytesLimit, bytes, f.opts.MaxBytes)
	}
	return nil
}
