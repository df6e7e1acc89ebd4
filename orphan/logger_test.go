package orphan_test

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// The logger gets exactly the events OnEvent gets, one line each, at the
// level of its action: findings and keeps at Debug, moves and deletions
// at Info, failures at Warn. Quarantine logs its restores the same way.
func TestLoggerWritesOneLinePerEvent(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		for _, p := range []string{"pics/ref.jpg", "pics/o1.jpg", "pics/o2.jpg", "pics/o3.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		put(t, fsys, "pics/young.jpg", 10, 0)
		var mu sync.Mutex
		var events []string
		onEvent := func(e orphan.Event) {
			mu.Lock()
			events = append(events, "orphan "+string(e.Action)+" "+e.Path)
			mu.Unlock()
		}
		lines := func(r *storagetest.LogRecorder) []string {
			var out []string
			for _, rec := range r.Records() {
				out = append(out, rec.Message+" "+rec.Attrs["path"])
				want := slog.LevelInfo
				switch rec.Message {
				case "orphan keep", "orphan orphan":
					want = slog.LevelDebug
				case "orphan fail":
					want = slog.LevelWarn
				}
				assert.Equal(t, want, rec.Level, rec.Message)
			}
			return out
		}

		debug := &storagetest.LogRecorder{Level: slog.LevelDebug}
		f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash", Logger: debug.Logger(), OnEvent: onEvent})
		plan, err := f.Find(ctx)
		require.NoError(t, err)
		rep, err := f.Apply(ctx, plan)
		require.NoError(t, err)
		require.Equal(t, 3, rep.Quarantined.Files)
		assert.ElementsMatch(t, events, lines(debug))
		assert.Contains(t, lines(debug), "orphan move pics/o1.jpg")
		assert.Contains(t, lines(debug), "orphan orphan pics/o2.jpg")

		events = nil
		info := &storagetest.LogRecorder{Level: slog.LevelInfo}
		q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Logger: info.Logger(), OnEvent: onEvent})
		restored, err := q.Restore(ctx, rep.QuarantineRun)
		require.NoError(t, err)
		require.Equal(t, 3, restored.Restored.Files)
		assert.ElementsMatch(t, events, lines(info), "restores are acts, logged at Info")
		assert.Len(t, lines(info), 3)
	})
}
