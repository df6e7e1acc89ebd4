package filefield_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// backend is one filesystem the behaviour tests run on.
type backend struct {
	name string
	new  func(t *testing.T) afero.Fs
}

// backends are the local os.Root backend, OsFs in a temp dir, MemMapFs and
// a real S3-compatible server: every behaviour test runs on all four.
var backends = []backend{
	{"RootFs", func(t *testing.T) afero.Fs {
		rfs, err := rootfs.New(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { rfs.Close() })
		return rfs
	}},
	{"OsFs", func(t *testing.T) afero.Fs { return afero.NewBasePathFs(afero.NewOsFs(), t.TempDir()) }},
	{"MemMapFs", func(t *testing.T) afero.Fs { return afero.NewMemMapFs() }},
	{"S3", func(t *testing.T) afero.Fs { return s3test.Shared(t).Fs(t, "media/") }},
}

// TestMain stops the S3 server that the S3 backend starts on first use.
func TestMain(m *testing.M) { s3test.Main(m) }

func forEachBackend(t *testing.T, fn func(t *testing.T, fsys afero.Fs)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b.new(t))
		})
	}
}

// png returns bytes that sniff as image/png, distinct per tag.
func png(tag string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), []byte(tag)...)
}

func upload(tag string) filefield.Upload {
	return filefield.Upload{Body: bytes.NewReader(png(tag)), Name: tag + ".png", Owner: "42"}
}

// files lists the files under the root, sorted.
func files(t *testing.T, fsys afero.Fs) []string { return storagetest.Files(t, fsys) }

func read(t *testing.T, fsys afero.Fs, p string) string {
	t.Helper()
	b, err := afero.ReadFile(fsys, p)
	require.NoError(t, err, "reading %s", p)
	return string(b)
}

func noTempFiles(t *testing.T, fsys afero.Fs) {
	t.Helper()
	for _, p := range files(t, fsys) {
		require.Falsef(t, strings.Contains(p, storage.TempPrefix), "temp file left behind: %s", p)
	}
}
