package s3fs_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// within runs op and returns how long it took and its error, giving up
// (and failing t) after 10 s, so that an operation that ignores its
// context fails the test instead of hanging it.
func within(t *testing.T, op func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(10 * time.Second):
		t.Fatal("the operation ignored its context: still running after 10s")
		return 0, nil
	}
}

// Against a server that takes requests and never answers, each operation
// of an Fs made WithContext, with a 300 ms deadline, gives up when the
// deadline passes and returns the context's error itself. The proxy lets
// the requests before the stalled one through, so the later requests of
// an operation (Remove's DELETE after its HEAD, a Read's GET after Open's
// HEAD) are shown to use the context too.
func TestContextStalledServer(t *testing.T) {
	srv := s3test.Shared(t)
	cases := []struct {
		name  string
		stall []string
		op    func(fsys afero.Fs) error
	}{
		{"Write", []string{"put"}, func(fsys afero.Fs) error {
			f, err := fsys.Create("new.png")
			if err != nil {
				return err
			}
			if _, err := f.Write([]byte("data")); err != nil {
				return err
			}
			return f.Close()
		}},
		{"Stat", []string{"head"}, func(fsys afero.Fs) error {
			_, err := fsys.Stat("a.png")
			return err
		}},
		{"Open", []string{"head"}, func(fsys afero.Fs) error {
			_, err := fsys.Open("a.png")
			return err
		}},
		{"Read", []string{"get"}, func(fsys afero.Fs) error {
			f, err := fsys.Open("a.png")
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.ReadAll(f)
			return err
		}},
		{"ReadAt", []string{"get"}, func(fsys afero.Fs) error {
			f, err := fsys.Open("a.png")
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.ReadAt(make([]byte, 2), 1)
			return err
		}},
		{"Readdir", []string{"list"}, func(fsys afero.Fs) error {
			f, err := fsys.Open("d")
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Readdir(-1)
			return err
		}},
		{"Remove", []string{"delete"}, func(fsys afero.Fs) error { return fsys.Remove("a.png") }},
		{"RemoveAll", []string{"delete-batch"}, func(fsys afero.Fs) error { return fsys.RemoveAll("d") }},
		{"Rename", []string{"copy"}, func(fsys afero.Fs) error { return fsys.Rename("a.png", "b.png") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := srv.Proxy(t)
			base := s3fs.New(p.Client(nil), srv.NewBucket(t), s3fs.Options{})
			for _, n := range []string{"a.png", "d/x.png"} {
				require.NoError(t, afero.WriteFile(base, n, []byte("abcdef"), 0o644))
			}
			p.Stall(s3test.Is(c.stall...))
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			took, err := within(t, func() error { return c.op(base.WithContext(ctx)) })
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, took, time.Second)

			p.Reset()
			_, err = base.Stat("a.png")
			assert.NoError(t, err, "the Fs WithContext was called on keeps context.Background()")
		})
	}
}

// Once the context is done, no request is sent: each operation returns
// the context's error itself at once.
func TestContextCanceled(t *testing.T) {
	srv := s3test.Shared(t)
	var count s3test.Counter
	base := s3fs.New(srv.Client(&count), srv.NewBucket(t), s3fs.Options{})
	require.NoError(t, afero.WriteFile(base, "a.png", []byte("abc"), 0o644))
	ctx, cancel := context.WithCancel(t.Context())
	fsys := base.WithContext(ctx)
	f, err := fsys.OpenFile("b.png", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	require.NoError(t, err, "no request yet")
	r, err := fsys.Open("a.png")
	require.NoError(t, err)
	cancel()
	count.Reset()

	_, err = fsys.Stat("a.png")
	assert.Equal(t, context.Canceled, err, "Stat")
	assert.Equal(t, context.Canceled, fsys.Remove("a.png"), "Remove")
	assert.Equal(t, context.Canceled, fsys.Rename("a.png", "c.png"), "Rename")
	assert.Equal(t, context.Canceled, fsys.RemoveAll("a.png"), "RemoveAll")
	_, err = r.Read(make([]byte, 1))
	assert.Equal(t, context.Canceled, err, "Read")
	f.Write([]byte("data"))
	assert.Equal(t, context.Canceled, f.Close(), "Close")
	assert.Zero(t, count.Get("delete")+count.Get("delete-batch")+count.Get("put")+count.Get("copy"), "nothing was changed")

	got, err := afero.ReadFile(base, "a.png")
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
	_, err = base.Stat("b.png")
	assert.True(t, errors.Is(err, os.ErrNotExist), "the canceled write stored nothing: %v", err)
}

// The test server's Fs made WithContext still back-dates on Chtimes.
func TestBackdatingFsWithContext(t *testing.T) {
	fsys := s3test.Shared(t).Fs(t, "media/").WithContext(t.Context())
	require.IsType(t, &s3test.BackdatingFs{}, fsys)
	require.NoError(t, afero.WriteFile(fsys, "a.png", []byte("x"), 0o644))
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	require.NoError(t, fsys.Chtimes("a.png", old, old))
	fi, err := fsys.Stat("a.png")
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(old), "mtime %v, want %v", fi.ModTime(), old)
}
