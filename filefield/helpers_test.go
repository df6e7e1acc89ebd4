package filefield_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// backends: RootFs, OsFs and MemMapFs, then a real S3 server (under
// the prefix "media/"): every behaviour test runs on all four.
var backends = append(storagetest.LocalBackends(), s3test.Backend("media/"))

// TestMain stops the S3 server that the S3 backend starts on first use.
func TestMain(m *testing.M) { s3test.Main(m) }

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
