package storage

import (
	"context"
	"log/slog"
)

// LogEvent writes one structured line about one file to l, the way
// filefield, sweep and orphan log their events: the message is
// "pkg action"; attributes path, size (when not zero), reason (when
// given), error (when err is not nil) and extra. A failure logs at
// Warn, an act (store, delete, move, and their dry-run forms) at Info,
// and a decision to keep or a finding at Debug, so a logger at the
// default level shows what changed and a debug one shows every decision.
// A nil l, or one whose level drops the line, costs nothing.
func LogEvent(ctx context.Context, l *slog.Logger, pkg string, a Action, path string, size int64, reason string, err error, extra ...slog.Attr) {
	if l == nil {
		return
	}
	level := slog.LevelInfo
	switch {
	case err != nil || a == ActionFail:
		level = slog.LevelWarn
	case a == ActionKeep || a == ActionOrphan:
		level = slog.LevelDebug
	}
	if !l.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 4+len(extra))
	attrs = append(attrs, slog.String("path", path))
	if size != 0 {
		attrs = append(attrs, slog.Int64("size", size))
	}
	if reason != "" {
		attrs = append(attrs, slog.String("reason", reason))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	attrs = append(attrs, extra...)
	l.LogAttrs(ctx, level, pkg+" "+string(a), attrs...)
}
