package sweep

import (
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Reasons a matched file is kept, the keys of Report.Kept. Those shared
// with the storage layer (and orphan and filefield) have its values.
const (
	KeptYoung      = storage.KeptYoung      // not older than the rule's MaxAge (or a future time)
	KeptLatest     = "latest"               // among the KeepLatest newest of its group
	KeptProtected  = storage.KeptProtected  // matches Options.Protected
	KeptExcluded   = "excluded"             // matches the rule's Exclude
	KeptUnsafe     = storage.KeptUnsafe     // not a valid stored path
	KeptInFlight   = storage.KeptInFlight   // a filefield temp file younger than TempMaxAge
	KeptBudget     = "budget"               // a budget was reached first
	KeptNoTime     = "no_time"              // TimeFromName could not read a time
	KeptNotRegular = storage.KeptNotRegular // a symlink, FIFO, socket or device
	KeptChanged    = storage.KeptChanged    // changed type just before its deletion
	KeptRefused    = "refused"              // Options.Approve refused the plan
	// KeptReferenced and KeptCheckFailed: Options.Refs said a row still
	// references the file, or could not say.
	KeptReferenced  = storage.KeptReferenced
	KeptCheckFailed = storage.KeptCheckFailed
)

// Action is what a sweep did, or would do, to a file.
type Action = storage.Action

// The actions of sweep events.
const (
	ActionDelete      = storage.ActionDelete
	ActionWouldDelete = storage.ActionWouldDelete // in a dry run
	ActionKeep        = storage.ActionKeep
	ActionFail        = storage.ActionFail
)

// Values of Report.Stopped.
const (
	StoppedFiles = "budget_files"
	StoppedBytes = "budget_bytes"
	StoppedTime  = "budget_time"
)

// Report is the result of one sweep. In a dry run, Deleted counts
// what would have been deleted.
type Report struct {
	// DryRun: nothing was deleted; Deleted counts what a run would have
	// tried to delete (a file changed since it was listed is kept then).
	DryRun bool `json:"dry_run"`
	// Scanned counts the regular files listed (see Unmeasured).
	Scanned storage.Count `json:"scanned"`
	// Matched counts the files some rule matched.
	Matched storage.Count `json:"matched"`
	// Deleted counts the files deleted.
	Deleted storage.Count `json:"deleted"`
	// Kept counts, by Kept* reason, the matched files kept.
	Kept storage.KeptTally `json:"kept"`
	// Failed counts the deletions that failed.
	Failed storage.Count `json:"failed"`
	// Failures lists the first storage.MaxFailures failed deletions.
	Failures []storage.Failure `json:"failures,omitempty"`
	// DirsRemoved counts empty directories removed.
	DirsRemoved int `json:"dirs_removed"`
	// Stopped names the budget that stopped the sweep, if any.
	Stopped string `json:"stopped,omitempty"`
	// ConditionalDeletes says how the deletions were conditional on the
	// ETag each object had when it was listed, so that one rewritten
	// since was kept (KeptChanged) rather than deleted: "batch" or
	// "single" where the server checks the ETag in the delete request
	// itself, "none" where it cannot (an object rewritten between the
	// listing and its delete is deleted), and "" on backends without
	// ETags (a local disk), or when nothing was deleted before the backend
	// found out (a dry run). See storage.Features.ConditionalDeletes.
	ConditionalDeletes string `json:"conditional_deletes,omitempty"`
	// TopDirs are the directories with the most bytes deleted.
	TopDirs []storage.DirCount `json:"top_dirs"`
	// Started is when the sweep started, Duration how long it took.
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Unmeasured counts scanned files no rule matches whose size was never
	// read, so Scanned.Bytes leaves them out. On a backend that lists
	// names faster than sizes (RootFs), a sweep stats only the files its
	// rules match, and temp files, unless a rule matches everything ("**").
	Unmeasured int `json:"unmeasured"`
}

// Event is one per-file decision.
type Event struct {
	// Action is ActionDelete (ActionWouldDelete in a dry run),
	// ActionKeep or ActionFail.
	Action Action `json:"action"`
	Path   string `json:"path"`             // the stored path
	Rule   string `json:"rule,omitempty"`   // the glob of the rule that matched
	Reason string `json:"reason,omitempty"` // a Kept* reason, for ActionKeep
	Size   int64  `json:"size"`             // the file's size, when measured
	Err    error  `json:"-"`                // the failure, for ActionFail
}
