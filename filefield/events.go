package filefield

import (
	"context"
	"log/slog"
)

// Event kinds.
const (
	EventStore  = "store"  // a new file was written into place
	EventDelete = "delete" // a file was deleted
	EventKeep   = "keep"   // a file that could have been deleted was kept
	EventFail   = "fail"   // a delete failed; the file may still be there
)

// Reasons a file is kept.
const (
	ReasonKeepMode     = "keep_mode"       // Options.Keep
	ReasonProtected    = "protected"       // Options.Default or Options.Protected
	ReasonSamePath     = "same_path"       // the new file has the old file's path (F4)
	ReasonReferenced   = "referenced"      // Options.Refs said another row uses it
	ReasonCheckFailed  = "check_failed"    // Options.Refs returned an error
	ReasonUnsafePath   = "unsafe_path"     // the path failed validation
	ReasonNotCreated   = "not_created"     // rollback of a hash-named file that existed before
	ReasonAlreadyGone  = "already_gone"    // the file was not there to delete
	ReasonInUseByBatch = "in_use_by_batch" // another change of the same batch stores this path
)

// Event describes one thing a field did or declined to do to a file.
type Event struct {
	Field  string `json:"field"`
	Kind   string `json:"kind"`
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
	f.opts.Logger.LogAttrs(ctx, level, "filefield "+e.Kind, attrs...)
}
