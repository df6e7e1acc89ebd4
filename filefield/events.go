package filefield

import (
	"context"
	"log/slog"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Action is what a field did to a file; the same type names the events of
// sweep and orphan.
type Action = storage.Action

// The actions a field reports.
const (
	ActionStore  = storage.ActionStore  // a new file was written into place
	ActionDelete = storage.ActionDelete // a file was deleted
	ActionKeep   = storage.ActionKeep   // a file that could have been deleted was kept
	ActionFail   = storage.ActionFail   // a delete failed; the file may still be there
)

// Reasons a file is kept, the same names and values as sweep's and
// orphan's where they mean the same (they are the storage layer's).
const (
	KeptKeepMode      = "keep_mode"             // Options.Keep
	KeptProtected     = storage.KeptProtected   // Options.Default or Options.Protected
	KeptSamePath      = "same_path"             // the new file has the old file's path
	KeptReferenced    = storage.KeptReferenced  // Options.Refs said another row uses it
	KeptCheckFailed   = storage.KeptCheckFailed // Options.Refs returned an error
	KeptUnsafe        = storage.KeptUnsafe      // the path failed validation
	KeptNotCreated    = "not_created"           // rollback of a hash-named file that existed before
	KeptGone          = storage.KeptGone        // the file was not there to delete
	KeptChanged       = storage.KeptChanged     // the file changed just before its deletion
	KeptCommitUnknown = "commit_unknown"        // the commit failed in a way that leaves its outcome unknown
	KeptInUseByScope  = "in_use_by_scope"       // a later change of the same scope stores this path
	// KeptAbandoned: the rollback of a change reported abandoned and
	// forgotten by Claim (see Options.PendingTimeout): a row may have
	// taken its new file meanwhile, as a statement no integration could
	// tie to the change any more, so the file stays for the orphan
	// finder to settle.
	KeptAbandoned = "abandoned"
	// KeptGivenBack: an upload made outside any scope, which its maker
	// registered in a transaction's scope (Scope.Add) or a statement took
	// into its transaction (Field.Claim and Scope.AddClaimed), and the
	// transaction rolled back: the upload is its maker's again, pending,
	// since the handler may retry with the same path. Its Rollback deletes it; one never
	// finished is reported at Options.PendingTimeout.
	KeptGivenBack = "given_back"
	// KeptShared: a content-named file (HashNames) that another row or
	// an upload in flight may share, and Options.Refs is not set to say.
	KeptShared = "shared"
	// KeptRecentlyStored: a content-named file written or reused within
	// Options.ReuseGrace; an upload whose row has not committed may be
	// using it.
	KeptRecentlyStored = "recently_stored"
)

// Event describes one thing a field did or declined to do to a file.
type Event struct {
	Field  string `json:"field"`            // the Field's name
	Action Action `json:"action"`           // ActionStore, ActionDelete, ActionKeep or ActionFail
	Path   string `json:"path"`             // the stored path
	Reason string `json:"reason,omitempty"` // a Kept* reason, for ActionKeep
	Size   int64  `json:"size,omitempty"`   // the file's size, when known
	Err    error  `json:"-"`                // the failure, for ActionFail
}

// heldEvents collects the events of a field's step that holds a lock
// callbacks could wait on (see Field.remove), to be reported once it is
// released. Events of other fields (a callback of the step may finish
// their changes with its context) are reported as they come.
type heldEvents struct {
	field  *Field
	events []Event
}

type heldEventsKey struct{}

// holdEvents returns a context under which f's emit collects events into
// the returned heldEvents instead of reporting them.
func (f *Field) holdEvents(ctx context.Context) (context.Context, *heldEvents) {
	h := &heldEvents{field: f}
	return context.WithValue(ctx, heldEventsKey{}, h), h
}

// release reports the events collected, in order, under ctx.
func (h *heldEvents) release(ctx context.Context) {
	events := h.events
	h.events = nil
	for _, e := range events {
		h.field.emit(ctx, e)
	}
}

func (f *Field) emit(ctx context.Context, e Event) {
	if h, _ := ctx.Value(heldEventsKey{}).(*heldEvents); h != nil && h.field == f {
		h.events = append(h.events, e)
		return
	}
	e.Field = f.name
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(e)
	}
	storage.LogEvent(ctx, f.opts.Logger, "filefield", e.Action, e.Path, e.Size, e.Reason, e.Err, slog.String("field", e.Field))
}
