package main

import (
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func (e *env) head(path string) *http.Response {
	e.t.Helper()
	resp, err := client.Get(e.url + path)
	require.NoError(e.t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Uploads are served so that none can run in the app's origin: never
// sniffed, sandboxed, and anything that is not an image the app shows
// inline (a PDF receipt, whatever else lies in the folder) downloads.
func TestMediaIsServedSafely(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": "1", "amount": "5"},
		[]byte("%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(document.cookie)) >> >>\n"), "r.pdf"))
	var picture, receipt string
	require.NoError(t, e.db.QueryRow(`SELECT picture FROM users`).Scan(&picture))
	require.NoError(t, e.db.QueryRow(`SELECT receipt FROM donations`).Scan(&receipt))
	for p, body := range map[string][]byte{
		"donation_receipts/0123456789abcdef0123456789abcdef.html": []byte("<script>alert(1)</script>"),
		"donation_receipts/0123456789abcdef0123456789abcdef.svg":  []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`),
		"donation_receipts/0123456789abcdef0123456789abcdef":      []byte("<html><script>alert(1)</script>"),
	} {
		storagetest.WriteFile(t, e.fs, p, body, time.Now())
	}

	for _, c := range []struct {
		path, ctype string
		inline      bool
	}{
		{picture, "image/png", true},
		{receipt, "application/pdf", false},
		{"donation_receipts/0123456789abcdef0123456789abcdef.html", "application/octet-stream", false},
		{"donation_receipts/0123456789abcdef0123456789abcdef.svg", "application/octet-stream", false},
		{"donation_receipts/0123456789abcdef0123456789abcdef", "application/octet-stream", false},
	} {
		resp := e.head("/media/" + c.path)
		require.Equal(t, http.StatusOK, resp.StatusCode, c.path)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), c.path)
		assert.Equal(t, "default-src 'none'; sandbox; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"), c.path)
		assert.Equal(t, c.ctype, resp.Header.Get("Content-Type"), c.path)
		cd := resp.Header.Get("Content-Disposition")
		if c.inline {
			assert.Empty(t, cd, c.path)
		} else {
			disp, params, err := mime.ParseMediaType(cd)
			require.NoError(t, err, c.path)
			assert.Equal(t, "attachment", disp, c.path)
			assert.Equal(t, c.path[strings.LastIndex(c.path, "/")+1:], params["filename"], c.path)
		}
	}
}

// The app's pages may not be framed (clickjacking on the delete and apply
// buttons), and load nothing from elsewhere.
func TestPagesForbidFraming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"/", "/admin"} {
		resp := e.head(p)
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), p)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'", p)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), p)
	}
}

// assertGeneric checks an error page: the status text, and none of the
// internal details.
func assertGeneric(t *testing.T, code int, body string, want int, leaks ...string) {
	t.Helper()
	assert.Equal(t, want, code)
	assert.True(t, strings.HasPrefix(body, http.StatusText(want)), "the page starts with the status text: %q", body)
	for _, l := range append(leaks, "sql:", storage.TempPrefix, "/tmp", "SQLITE", "sqlite") {
		assert.NotContains(t, body, l)
	}
}

// Error pages show the status and a message written for the user, never
// the internal error: the SQL error, a storage path, a temp file's name.
func TestErrorPagesHideInternalErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))

	code, body := e.postMultipart("/files/picture/42", nil, png("x"))
	assertGeneric(t, code, body, http.StatusNotFound, "no rows")

	_, err := e.db.Exec(`CREATE TRIGGER fail_signature BEFORE UPDATE OF signature ON users BEGIN SELECT RAISE(ABORT, 'forced failure'); END`)
	require.NoError(t, err)
	code, body = e.postMultipart("/files/signature/1", nil, png("x"))
	assertGeneric(t, code, body, http.StatusInternalServerError, "forced failure", "UPDATE", "signature")

	// A row holding a path outside its field's folder: a server-side fault.
	_, err = e.db.Exec(`UPDATE users SET picture = '../../etc/passwd'`)
	require.NoError(t, err)
	code, body = e.postMultipart("/files/picture/1", nil, png("x"))
	assertGeneric(t, code, body, http.StatusInternalServerError, "passwd", "unsafe")

	// Rejections keep a message that says what to fix.
	code, body = e.postMultipart("/files/image/1", nil, png("x"))
	assertGeneric(t, code, body, http.StatusNotFound)
	code, body = e.postMultipart("/users", map[string]string{"name": "bob"}, []byte("<html><script>x</script>"))
	assertGeneric(t, code, body, http.StatusUnsupportedMediaType, "text/html")
	assert.Contains(t, body, "type of file")
}

// A storage failure (a full disk) while an upload is written: the page
// names neither the temporary file nor the folder nor the system error.
func TestStorageFailurePageHidesPaths(t *testing.T) {
	t.Parallel()
	media := filepath.Join(t.TempDir(), "media")
	require.NoError(t, os.MkdirAll(media, 0o755))
	rfs, err := rootfs.New(media)
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	e := newEnvOnConfig(t, storagetest.NewFaultFs(rfs, storagetest.Fault{N: 1, Kind: storagetest.OpWrite, Sticky: true, Err: syscall.ENOSPC}), nil)
	var logged strings.Builder
	e.app.log = slog.New(slog.NewTextHandler(&logged, nil))
	code, body := e.postMultipart("/users", map[string]string{"name": "ann"}, png("pic"))
	assertGeneric(t, code, body, http.StatusInternalServerError, "profile_pics", "no space", media)
	assert.Contains(t, logged.String(), "no space left on device", "the detail goes to the log")
	assert.Empty(t, storagetest.Files(t, rfs), "and the partial file is gone")
}
