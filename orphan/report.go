package orphan

import (
	"context"
	"log/slog"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Action is what Find, Apply or a quarantine did, or would do, to a file.
type Action = storage.Action

// The actions of orphan events.
const (
	ActionOrphan = storage.ActionOrphan // found by Find
	ActionDelete = storage.ActionDelete
	ActionMove   = storage.ActionMove // quarantined, or restored
	ActionKeep   = storage.ActionKeep
	ActionFail   = storage.ActionFail
	// ActionWouldMove: a dry-run restore would move the file back.
	ActionWouldMove = storage.ActionWouldMove
	// ActionPurge: a quarantined file deleted for good.
	ActionPurge Action = "purge"
)

// Report says what Apply did.
type Report struct {
	// Planned counts the plan's orphans, each path once.
	Planned storage.Count `json:"planned"`
	// Deleted counts the files deleted (or, in a dry run, that would be).
	Deleted storage.Count `json:"deleted"`
	// Quarantined counts files moved to QuarantineRun instead of deleted.
	Quarantined storage.Count `json:"quarantined"`
	// QuarantineRun names this run's folder in the quarantine area, for
	// Quarantine.Restore.
	QuarantineRun string `json:"quarantine_run,omitempty"`
	// Kept counts, by Kept* reason, the planned files Apply kept.
	Kept storage.KeptTally `json:"kept"`
	// Failed counts the deletions and moves that failed; Failures lists
	// the first storage.MaxFailures of them.
	Failed   storage.Count     `json:"failed"`
	Failures []storage.Failure `json:"failures,omitempty"`
	// ConditionalDeletes says how the deletions were conditional on the
	// ETag each object had when the plan (or Apply's re-check) listed it,
	// so that one rewritten since was kept (KeptChanged) rather than
	// deleted: "batch" or "single" where the server checks the ETag in
	// the delete request itself, "none" where it cannot (an object
	// rewritten between the re-check and its delete is deleted), and ""
	// on backends without ETags (a local disk) and when nothing was
	// deleted before the backend found out. A quarantine run's moves are
	// copies, then deletes of the source under the same condition. See
	// storage.Features.ConditionalDeletes.
	ConditionalDeletes string `json:"conditional_deletes,omitempty"`
	// Duration is how long Apply took.
	Duration time.Duration `json:"duration_ns"`
}

// Failure is one failed deletion or move.
type Failure = storage.Failure

// Event is one per-file decision.
type Event struct {
	Action Action `json:"action"`           // what was done, or would be
	Path   string `json:"path"`             // the stored path
	Reason string `json:"reason,omitempty"` // a Kept* reason, for ActionKeep
	Size   int64  `json:"size"`             // the file's size, when known
	Err    error  `json:"-"`                // the failure, for ActionFail
}

// emit sends an event to a callback and a logger.
func emit(ctx context.Context, onEvent func(Event), log *slog.Logger, e Event) {
	if onEvent != nil {
		onEvent(e)
	}
	storage.LogEvent(ctx, log, "orphan", e.Action, e.Path, e.Size, e.Reason, e.Err)
}

func (f *Finder) event(ctx context.Context, e Event) { emit(ctx, f.opts.OnEvent, f.opts.Logger, e) }
