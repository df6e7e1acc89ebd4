package memfstesting

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR avatar")

func upload(t *testing.T, h http.Handler, user string, body []byte) int {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, err := w.CreateFormFile("file", "me.png")
	require.NoError(t, err)
	fw.Write(body)
	require.NoError(t, w.Close())
	r := httptest.NewRequest(http.MethodPost, "/avatar?user="+user, &buf)
	r.Header.Set("Content-Type", w.FormDataContentType())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code
}

// On MemMapFs: fast, and enough to check the application's logic.
func TestReplaceKeepsOneAvatar(t *testing.T) {
	fsys := afero.NewMemMapFs()
	app := NewAvatars(fsys)
	for range 3 {
		require.Equal(t, http.StatusNoContent, upload(t, app, "ann", png))
	}
	assert.Equal(t, []string{app.Path("ann")}, storagetest.Files(t, fsys))
	assert.Equal(t, http.StatusBadRequest, upload(t, app, "../ann", png), "owner names are checked")
}

// With FaultFs: the disk fills up at every possible step of a replace;
// the user's avatar must stay the old one and nothing must be left over.
func TestFullDiskKeepsOldAvatar(t *testing.T) {
	mem := afero.NewMemMapFs()
	ffs := storagetest.NewFaultFs(mem, storagetest.Fault{})
	app := NewAvatars(ffs)
	require.Equal(t, http.StatusNoContent, upload(t, app, "ann", png))
	old := app.Path("ann")

	for n := 1; ; n++ {
		ffs.Reset(storagetest.Fault{N: n, Err: syscall.ENOSPC})
		code := upload(t, app, "ann", append(png, byte(n)))
		if ffs.Fired() == 0 {
			break // the replace has fewer than n operations: all tried
		}
		if code == http.StatusNoContent {
			// The fault hit the delete of the old file after the commit:
			// the request succeeds and the stale file is left behind.
			old = app.Path("ann")
			continue
		}
		assert.Equal(t, http.StatusInternalServerError, code)
		assert.Equal(t, old, app.Path("ann"), "operation %d: the row still points at the old avatar", n)
		_, err := mem.Stat(old)
		assert.NoError(t, err, "operation %d: the old avatar is still there", n)
	}
	assert.Contains(t, storagetest.Files(t, mem), app.Path("ann"))
	for _, p := range storagetest.Files(t, mem) {
		assert.False(t, storage.IsTempName(p), "temp file left behind: %s", p)
	}
}
