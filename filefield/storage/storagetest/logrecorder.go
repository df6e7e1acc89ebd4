package storagetest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// LogRecord is one line a LogRecorder kept.
type LogRecord struct {
	Level   slog.Level // the record's level
	Message string     // the record's message
	// Attrs holds each attribute's value as text.
	Attrs map[string]string
}

// LogRecorder is a slog.Handler that keeps every record at or above Level,
// for tests that check what a component logs. It is safe for concurrent
// use.
type LogRecorder struct {
	// Level is the lowest level kept; the zero value is Info.
	Level slog.Level

	mu      sync.Mutex
	records []LogRecord
}

// Logger returns a logger that writes to r.
func (r *LogRecorder) Logger() *slog.Logger { return slog.New(r) }

// Records returns a copy of the records kept so far, in order.
func (r *LogRecorder) Records() []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogRecord(nil), r.records...)
}

// Enabled implements slog.Handler.
func (r *LogRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.Level }

// Handle implements slog.Handler.
func (r *LogRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := LogRecord{Level: rec.Level, Message: rec.Message, Attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool {
		lr.Attrs[a.Key] = fmt.Sprint(a.Value.Any())
		return true
	})
	r.mu.Lock()
	r.records = append(r.records, lr)
	r.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler; the recorder keeps no handler-level
// attributes.
func (r *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

// WithGroup implements slog.Handler; groups are ignored.
func (r *LogRecorder) WithGroup(string) slog.Handler { return r }
