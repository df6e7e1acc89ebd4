package s3fs_test

import (
	"io/fs"
	"os"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// TestMain stops the shared server after the tests and fails the run if
// a goroutine is left (parallel listings start workers that must end).
func TestMain(m *testing.M) { s3test.Main(m) }

func TestConformance(t *testing.T) {
	srv := s3test.Shared(t)
	storagetest.TestFS(t, func(t *testing.T) afero.Fs { return srv.Fs(t, "").Fs }, storagetest.ObjectStoreDivergences)
}

func TestConformanceWithPrefix(t *testing.T) {
	srv := s3test.Shared(t)
	storagetest.TestFS(t, func(t *testing.T) afero.Fs { return srv.Fs(t, "media/").Fs }, storagetest.ObjectStoreDivergences)
}

// Two writers create the same new key with O_EXCL: the server's
// If-None-Match makes the second Close fail with fs.ErrExist instead of
// overwriting the first.
func TestExclusiveCreateIsCreateOnly(t *testing.T) {
	fsys := s3test.Shared(t).Fs(t, "").Fs
	a, err := fsys.OpenFile("x.png", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	b, err := fsys.OpenFile("x.png", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err, "both opened before either wrote")
	a.Write([]byte("first"))
	b.Write([]byte("second"))
	require.NoError(t, a.Close())
	assert.ErrorIs(t, b.Close(), fs.ErrExist)
	got, err := afero.ReadFile(fsys, "x.png")
	require.NoError(t, err)
	assert.Equal(t, "first", string(got))
}

func TestUnsafeNamesRefused(t *testing.T) {
	fsys := s3test.Shared(t).Fs(t, "media/").Fs
	for _, name := range []string{"../x", "a/../../x"} {
		_, err := fsys.Create(name)
		assert.ErrorIs(t, err, storage.ErrUnsafePath, name)
		assert.ErrorIs(t, fsys.Remove(name), storage.ErrUnsafePath, name)
	}
}
