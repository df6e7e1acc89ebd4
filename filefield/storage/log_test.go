package storage_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func TestLogEventLevelsAndAttributes(t *testing.T) {
	t.Parallel()
	rec := &storagetest.LogRecorder{Level: slog.LevelDebug}
	l := rec.Logger()
	ctx := t.Context()
	storage.LogEvent(ctx, l, "sweep", storage.ActionDelete, "a.png", 3, "", nil, slog.String("rule", "**"))
	storage.LogEvent(ctx, l, "sweep", storage.ActionKeep, "b.png", 0, storage.KeptYoung, nil)
	storage.LogEvent(ctx, l, "sweep", storage.ActionFail, "c.png", 5, "", errors.New("disk full"))
	storage.LogEvent(ctx, nil, "sweep", storage.ActionDelete, "d.png", 1, "", nil)
	assert.Equal(t, []storagetest.LogRecord{
		{Level: slog.LevelInfo, Message: "sweep delete", Attrs: map[string]string{"path": "a.png", "size": "3", "rule": "**"}},
		{Level: slog.LevelDebug, Message: "sweep keep", Attrs: map[string]string{"path": "b.png", "reason": "young"}},
		{Level: slog.LevelWarn, Message: "sweep fail", Attrs: map[string]string{"path": "c.png", "size": "5", "error": "disk full"}},
	}, rec.Records())
}

// A line the logger's level drops costs no allocation: a sweep of a
// billion young files logs at Debug for nobody.
func TestLogEventBelowTheLevelIsFree(t *testing.T) {
	l := (&storagetest.LogRecorder{Level: slog.LevelInfo}).Logger()
	ctx := t.Context()
	allocs := testing.AllocsPerRun(1000, func() {
		storage.LogEvent(ctx, l, "sweep", storage.ActionKeep, "a.png", 3, storage.KeptYoung, nil, slog.String("rule", "**"))
	})
	assert.Zero(t, allocs)
}
