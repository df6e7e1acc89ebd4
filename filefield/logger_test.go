package filefield_test

import (
	"log/slog"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// The logger gets exactly the events OnEvent gets, one line each with the
// field's name, at the level of its action: stores and deletions at Info,
// keeps at Debug, failures at Warn.
func TestLoggerWritesOneLinePerEvent(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		rec := &storagetest.LogRecorder{Level: slog.LevelDebug}
		var mu sync.Mutex
		var events []string
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Protected: []string{"pics/default.png"}, Logger: rec.Logger(),
			OnEvent: func(e filefield.Event) {
				mu.Lock()
				events = append(events, "filefield "+string(e.Action)+" "+e.Path)
				mu.Unlock()
			}})
		first, err := pics.Save(ctx, upload("first"))
		require.NoError(t, err)
		first.Commit(ctx)
		second, err := pics.Replace(ctx, first.New, upload("second"))
		require.NoError(t, err)
		second.Commit(ctx) // deletes first
		third, err := pics.Replace(ctx, "pics/default.png", upload("third"))
		require.NoError(t, err)
		third.Commit(ctx) // keeps the protected default
		fourth, err := pics.Replace(ctx, second.New, upload("fourth"))
		require.NoError(t, err)
		fourth.Rollback(ctx) // deletes fourth's new file

		var lines []string
		for _, r := range rec.Records() {
			lines = append(lines, r.Message+" "+r.Attrs["path"])
			assert.Equal(t, "pics", r.Attrs["field"])
			want := slog.LevelInfo
			switch r.Message {
			case "filefield keep":
				want = slog.LevelDebug
				assert.NotEmpty(t, r.Attrs["reason"])
			case "filefield fail":
				want = slog.LevelWarn
			}
			assert.Equal(t, want, r.Level, r.Message)
		}
		assert.Equal(t, events, lines)
		assert.Contains(t, lines, "filefield store "+first.New)
		assert.Contains(t, lines, "filefield delete "+first.New)
		assert.Contains(t, lines, "filefield keep pics/default.png")
		assert.Contains(t, lines, "filefield delete "+fourth.New)
	})
}
