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

// Reasons a file is kept. The storage layer's reasons (already_gone,
// changed, unsafe_path, protected, not_regular) mean the same here.
const (
	ReasonKeepMode     = "keep_mode"           // Options.Keep
	ReasonProtected    = storage.KeptProtected // Options.Default or Options.Protected
	ReasonSamePath     = "same_path"           // the new file has the old file's path
	ReasonReferenced   = "referenced"          // Options.Refs said another row uses it
	ReasonCheckFailed  = "check_failed"        // Options.Refs returned an error
	ReasonUnsafePath   = storage.KeptUnsafe    // the path failed validation
	ReasonNotCreated   = "not_created"         // rollback of a hash-named file that existed before
	ReasonAlreadyGone  = storage.KeptGone      // the file was not there to delete
	ReasonChanged      = storage.KeptChanged   // the file changed just before its deletion
	ReasonInUseByBatch = "in_use_by_batch"     // another change of the same batch stores this path
	// ReasonShared: a content-named file (HashNames) that another row or
	// an upload in flight may share, and Options.Refs is not set to say.
	ReasonShared = "shared"
	// ReasonRecentlyStored: a content-named file written or reused within
	// Options.ReuseGrace; an upload whose row has not committed may be
	// using it.
	ReasonRecentlyStored = "recently_stored"
)

// Event describes one thing a field did or declined to do to a file.
type Event struct {
	Field  string `json:"field"`
	Action Action `json:"action"`
	Path   string `json:"path"`
	Reason string `json:"reason,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Err    error  `json:"-"`
}

func (f *Field) emit(ctx context.Context, e Event) {
	e.Field = f.name
	if f.opts.OnEvent != nil {
		f.opts.OnEvent(e)
	}
	if f.opts.Logger == nil {
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{slog.String("field", e.Field), slog.String("path", e.Path)}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	if e.Size != 0 {
		attrs = append(attrs, slog.Int64("size", e.Size))
	}
	if e.Err != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error", e.Err.Error()))
	}
	f.opts.Logger.LogAttrs(ctx, level, "filefield "+string(e.Action), attrs...)
}
