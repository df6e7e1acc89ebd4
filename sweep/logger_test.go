package sweep_test

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// The logger gets one line per event, as OnEvent does: deletions at Info,
// failures at Warn, decisions to keep at Debug; a logger at Info gets
// only the deletions and failures.
func TestLoggerWritesOneLinePerEvent(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, base afero.Fs, _ string) {
		for i := range 6 {
			put(t, base, fmt.Sprintf("qr/%d.png", i), 10+i, 10*day)
		}
		put(t, base, "qr/young.png", 1, 0)
		// The third removal and every one after it fail.
		fsys := storagetest.NewFaultFs(base, storagetest.Fault{Kind: storagetest.OpRemove, N: 3, Sticky: true})
		debug := &storagetest.LogRecorder{Level: slog.LevelDebug}
		info := &storagetest.LogRecorder{Level: slog.LevelInfo}
		var mu sync.Mutex
		var events []sweep.Event
		for _, rec := range []*storagetest.LogRecorder{debug, info} {
			events = nil
			_, _ = sweep.New(fsys, sweep.Options{
				Rules: []sweep.Rule{{Glob: "qr/*.png", MaxAge: day}}, Now: clock, Concurrency: 1, DryRun: rec == info,
				Logger: rec.Logger(),
				OnEvent: func(e sweep.Event) {
					mu.Lock()
					events = append(events, e)
					mu.Unlock()
				},
			}).Sweep(t.Context())
		}
		// The dry run after it (info logger) logs only its would_delete lines.
		var wantInfo []string
		for _, e := range events {
			if e.Action != sweep.ActionKeep {
				wantInfo = append(wantInfo, "sweep "+string(e.Action)+" "+e.Path)
			}
		}
		var gotInfo []string
		for _, r := range info.Records() {
			assert.Equal(t, slog.LevelInfo, r.Level)
			gotInfo = append(gotInfo, r.Message+" "+r.Attrs["path"])
		}
		assert.ElementsMatch(t, wantInfo, gotInfo)
		assert.Len(t, gotInfo, 4, "the four files the first run failed to delete")

		recs := debug.Records()
		var failed, deleted, kept int
		for _, r := range recs {
			assert.Equal(t, "qr/*.png", r.Attrs["rule"], r.Message)
			switch r.Message {
			case "sweep fail":
				failed++
				assert.Equal(t, slog.LevelWarn, r.Level)
				assert.NotEmpty(t, r.Attrs["error"])
			case "sweep delete":
				deleted++
				assert.Equal(t, slog.LevelInfo, r.Level)
			case "sweep keep":
				kept++
				assert.Equal(t, slog.LevelDebug, r.Level)
				assert.NotEmpty(t, r.Attrs["reason"])
			default:
				t.Errorf("unexpected line %q", r.Message)
			}
		}
		require.Equal(t, 2, deleted)
		assert.Equal(t, 4, failed)
		assert.Equal(t, 1, kept, "qr/young.png")
	})
}
