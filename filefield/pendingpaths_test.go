package filefield_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

func pendingPaths(t *testing.T, f *filefield.Field) []string {
	t.Helper()
	var out []string
	require.NoError(t, f.PendingPaths(t.Context(), func(p string) error { out = append(out, p); return nil }))
	return out
}

// blockingBody gives the first part of an upload, then waits for more.
type blockingBody struct {
	head []byte
	more chan []byte
}

func (b *blockingBody) Read(p []byte) (int, error) {
	if len(b.head) == 0 {
		rest, ok := <-b.more
		if !ok {
			return 0, io.EOF
		}
		b.head = rest
	}
	n := copy(p, b.head)
	b.head = b.head[n:]
	return n, nil
}

// PendingPaths reports an upload's path from before its file can appear
// (while its bytes are still coming) until its change finishes, with
// random and content names, on every backend; and an orphan search with
// no grace period that reads it before the rows keeps such an upload,
// whose row has not committed.
func TestPendingPathsCoverAnUploadUntilItsChangeFinishes(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, hash := range []bool{false, true} {
			f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: hash})
			body := append(png("slow upload"), make([]byte, 2000)...)
			b := &blockingBody{head: body[:600], more: make(chan []byte)}
			type saved struct {
				ch  *filefield.Change
				err error
			}
			done := make(chan saved, 1)
			go func() {
				ch, err := f.Save(context.Background(), filefield.Upload{Body: b, Name: "a.png"})
				done <- saved{ch, err}
			}()
			if !hash {
				// A random name is known before the first byte is written.
				require.Eventually(t, func() bool { return len(pendingPaths(t, f)) == 1 }, 5*time.Second, time.Millisecond)
				p := pendingPaths(t, f)[0]
				ok, err := afero.Exists(fsys, p)
				require.NoError(t, err)
				assert.False(t, ok, "reported before the file is there")
			} else {
				assert.Empty(t, pendingPaths(t, f), "a content name is known only after the last byte")
			}
			b.more <- body[600:]
			close(b.more)
			s := <-done
			require.NoError(t, s.err)
			assert.Equal(t, []string{s.ch.New}, pendingPaths(t, f))

			// No grace period: the pending path read first keeps it.
			finder := orphan.New(fsys, orphan.Combine(orphan.ProviderFunc(f.PendingPaths), orphan.Paths("pics/other.png")),
				orphan.Options{MinAge: -1, MaxFraction: -1, Unreferenced: []string{"**"}})
			plan, err := finder.Find(t.Context())
			require.NoError(t, err)
			assert.False(t, slices.ContainsFunc(plan.Orphans, func(o orphan.Orphan) bool { return o.Path == s.ch.New }), "an upload in flight was planned")
			_, err = finder.Apply(t.Context(), &orphan.Plan{Orphans: []orphan.Orphan{{Path: s.ch.New, Size: s.ch.Size, ModTime: time.Now()}}})
			_ = err
			ok, err := afero.Exists(fsys, s.ch.New)
			require.NoError(t, err)
			assert.True(t, ok, "Apply deleted an upload in flight")

			s.ch.Commit(t.Context())
			assert.Empty(t, pendingPaths(t, f), "a finished change leaves the list")
			ch, err := f.Save(t.Context(), filefield.Upload{Body: bytes.NewReader(png("rolled back")), Name: "b.png"})
			require.NoError(t, err)
			assert.Equal(t, []string{ch.New}, pendingPaths(t, f))
			ch.Rollback(t.Context())
			assert.Empty(t, pendingPaths(t, f))
			for _, p := range files(t, fsys) {
				require.NoError(t, fsys.Remove(p))
			}
		}
	})
}

// A failed upload leaves no path behind, and fn's error and a cancelled
// context stop PendingPaths.
func TestPendingPathsFailures(t *testing.T) {
	t.Parallel()
	f := filefield.New("pics", afero.NewMemMapFs(), filefield.Options{Dir: "pics"})
	_, err := f.Save(t.Context(), filefield.Upload{Body: bytes.NewReader([]byte("not an image")), Name: "a.png"})
	require.Error(t, err)
	assert.Empty(t, pendingPaths(t, f))
	_, err = f.Save(t.Context(), upload("a"))
	require.NoError(t, err)
	_, err = f.Save(t.Context(), upload("b"))
	require.NoError(t, err)
	calls := 0
	stop := io.ErrClosedPipe
	assert.ErrorIs(t, f.PendingPaths(t.Context(), func(string) error { calls++; return stop }), stop)
	assert.Equal(t, 1, calls)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.ErrorIs(t, f.PendingPaths(ctx, func(string) error { return nil }), context.Canceled)
}
