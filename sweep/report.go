package sweep

import (
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Reasons a matched file is kept, the keys of Report.Kept.
const (
	KeptYoung      = "young"       // not older than the rule's MaxAge (or a future time)
	KeptLatest     = "latest"      // among the KeepLatest newest of its group
	KeptProtected  = "protected"   // matches Options.Protected
	KeptExcluded   = "excluded"    // matches the rule's Exclude
	KeptUnsafe     = "unsafe_name" // not a valid stored path
	KeptInFlight   = "in_flight"   // a filefield temp file younger than TempMaxAge
	KeptBudget     = "budget"      // a budget was reached first
	KeptNoTime     = "no_time"     // TimeFromName could not read a time
	KeptNotRegular = "not_regular" // a symlink, FIFO, socket or device
)

// Values of Report.Stopped.
const (
	StoppedMaxDeletes  = "max_deletes"
	StoppedMaxBytes    = "max_bytes"
	StoppedMaxDuration = "max_duration"
)

// Report is the result of one sweep (R1, R2). In a dry run, Deleted counts
// what would have been deleted.
type Report struct {
	DryRun  bool                     `json:"dry_run"`
	Scanned storage.Count            `json:"scanned"`
	Matched storage.Count            `json:"matched"`
	Deleted storage.Count            `json:"deleted"`
	Kept    map[string]storage.Count `json:"kept"`
	Failed  storage.Count            `json:"failed"`
	// Failures lists the first 100 failed deletions.
	Failures []Failure `json:"failures,omitempty"`
	// DirsRemoved counts empty directories removed.
	DirsRemoved int `json:"dirs_removed"`
	// Stopped names the budget that stopped the sweep, if any.
	Stopped string `json:"stopped,omitempty"`
	// TopDirs are the directories with the most bytes deleted.
	TopDirs  []storage.DirCount `json:"top_dirs"`
	Started  time.Time          `json:"started"`
	Duration time.Duration      `json:"duration_ns"`
	// Unmeasured counts scanned files no rule matches whose size was never
	// read, so Scanned.Bytes leaves them out. On a backend that lists
	// names faster than sizes (RootFs), a sweep stats only the files its
	// rules match, and temp files, unless a rule matches everything ("**").
	Unmeasured int `json:"unmeasured"`
}

// Failure is one failed deletion.
type Failure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

func (r *Report) keep(reason string, size int64) {
	c := r.Kept[reason]
	c.Add(size)
	r.Kept[reason] = c
}

// Event is one per-file decision (R3).
type Event struct {
	// Action is "delete" (or "would_delete" in a dry run), "keep" or
	// "fail".
	Action string `json:"action"`
	Path   string `json:"path"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
	Size   int64  `json:"size"`
	Err    error  `json:"-"`
}
