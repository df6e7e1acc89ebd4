package main

import (
	"bytes"
	"database/sql"
	"html"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

type env struct {
	t      *testing.T
	app    *App
	srv    *http.Server
	url    string // http://127.0.0.1:port
	ln     *countingListener
	db     *sql.DB
	dbPath string
	media  string // the local media folder ("" on S3)
	fs     afero.Fs
}

func TestMain(m *testing.M) {
	// The test binary doubles as the program: runMain starts it so.
	if args, ok := os.LookupEnv(mainArgsEnv); ok {
		os.Args = append([]string{"webapp"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	s3test.Main(m)
}

// newEnv starts the app on a media folder on the os.Root backend.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvConfig(t, nil)
}

// newEnvConfig is newEnv with the server configured by setup.
func newEnvConfig(t *testing.T, setup func(*config)) *env {
	t.Helper()
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	require.NoError(t, os.MkdirAll(media, 0o755))
	fsys, err := rootfs.New(media)
	require.NoError(t, err)
	t.Cleanup(func() { fsys.Close() })
	e := newEnvOnConfig(t, fsys, setup)
	e.media = media
	return e
}

// newEnvOn starts the app on fsys, with the database settings and the
// HTTP server run uses, on a loopback port whose bytes are counted.
func newEnvOn(t *testing.T, fsys afero.Fs) *env {
	t.Helper()
	return newEnvOnConfig(t, fsys, nil)
}

// newEnvOnConfig is newEnvOn with the server configured by setup.
func newEnvOnConfig(t *testing.T, fsys afero.Fs, setup func(*config)) *env {
	t.Helper()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	db, err := openDB(dbPath)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	app, err := NewApp(t.Context(), db, fsys, slog.New(slog.NewTextHandler(io.Discard, nil)), 7*24*time.Hour)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &countingListener{Listener: l}
	cfg := defaultConfig()
	cfg.addr = l.Addr().String()
	if setup != nil {
		setup(&cfg)
	}
	srv, err := app.Server(cfg)
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &env{t: t, app: app, srv: srv, url: "http://" + l.Addr().String(), ln: ln, db: db, dbPath: dbPath, fs: fsys}
}

// port is the server's port.
func (e *env) port() string {
	_, port, err := net.SplitHostPort(e.ln.Addr().String())
	require.NoError(e.t, err)
	return port
}

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// client does not follow redirects, so the tests see each status.
var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) post(path string, fields map[string]string, file []byte, filename string) int {
	e.t.Helper()
	code, _ := e.postFile(path, fields, file, filename)
	return code
}

// postMultipart posts a multipart form with a file named f.png (nil: no
// file) and returns the status and the body.
func (e *env) postMultipart(path string, fields map[string]string, file []byte) (int, string) {
	e.t.Helper()
	return e.postFile(path, fields, file, "f.png")
}

func (e *env) postFile(path string, fields map[string]string, file []byte, filename string) (int, string) {
	e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		require.NoError(e.t, w.WriteField(k, v))
	}
	if file != nil {
		fw, err := w.CreateFormFile("file", filename)
		require.NoError(e.t, err)
		fw.Write(file)
	}
	require.NoError(e.t, w.Close())
	resp, err := client.Post(e.url+path, w.FormDataContentType(), &buf)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, string(body)
}

func (e *env) postForm(path string, values url.Values) *http.Response {
	e.t.Helper()
	resp, err := client.PostForm(e.url+path, values)
	require.NoError(e.t, err)
	resp.Body.Close()
	return resp
}

// referenced returns every stored path the database holds, sorted.
func (e *env) referenced() []string {
	e.t.Helper()
	var out []string
	for _, q := range appdb.RefQueries() {
		rows, err := e.db.Query(q)
		require.NoError(e.t, err)
		for rows.Next() {
			var s string
			require.NoError(e.t, rows.Scan(&s))
			if s != "" {
				out = append(out, s)
			}
		}
		rows.Close()
	}
	slices.Sort(out)
	return out
}

// inSync asserts that the media folder holds exactly the referenced files.
func (e *env) inSync(step string) []string {
	e.t.Helper()
	refs := e.referenced()
	assert.Equal(e.t, refs, storagetest.Files(e.t, e.fs), "after %s the media folder must hold exactly the referenced files", step)
	return refs
}

func (e *env) get(path string) (int, []byte) {
	e.t.Helper()
	resp, err := client.Get(e.url + path)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func png(tag string) []byte { return []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + tag) }

var pdf = []byte("%PDF-1.4\n% receipt\n")

func TestEveryFileKindUploadReplaceDelete(t *testing.T) {
	t.Parallel()
	t.Run("RootFs", func(t *testing.T) { t.Parallel(); everyFileKind(t, newEnv(t)) })
	t.Run("S3", func(t *testing.T) { t.Parallel(); everyFileKind(t, newEnvOn(t, s3test.Shared(t).Fs(t, "media/"))) })
}

func everyFileKind(t *testing.T, e *env) {
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "alice"}, png("pic1"), "me.png"))
	e.inSync("creating a user with a picture")
	require.Equal(t, http.StatusSeeOther, e.post("/forum", map[string]string{"user_id": "1", "body": "hi"}, png("forum1"), "f.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": "1", "amount": "10"}, pdf, "r.pdf"))
	e.inSync("posting a message and a donation")

	for _, k := range []struct{ kind, id, name string }{{"picture", "1", "a.png"}, {"signature", "1", "s.png"}, {"image", "1", "i.png"}} {
		for round := range 2 {
			require.Equal(t, http.StatusSeeOther, e.post("/files/"+k.kind+"/"+k.id, nil, png(k.kind+string(rune('0'+round))), k.name))
			e.inSync("replacing " + k.kind)
		}
	}
	require.Equal(t, http.StatusSeeOther, e.post("/files/receipt/1", nil, png("receipt-scan"), "scan.png"))
	refs := e.inSync("replacing the receipt")
	assert.Len(t, refs, 4)

	// The seed's QR case: generating twice keeps one file for the user.
	for range 2 {
		require.Equal(t, http.StatusSeeOther, e.postForm("/qr/1", nil).StatusCode)
		e.inSync("generating the QR code")
	}
	assert.Len(t, e.referenced(), 5)

	// Served from the media folder.
	code, body := e.get("/media/" + e.referenced()[0])
	assert.Equal(t, http.StatusOK, code)
	assert.NotEmpty(t, body)

	require.Equal(t, http.StatusSeeOther, e.postForm("/delete/forum_messages/1", nil).StatusCode)
	e.inSync("deleting the message")
	require.Equal(t, http.StatusSeeOther, e.postForm("/delete/users/1", nil).StatusCode)
	assert.Empty(t, e.inSync("deleting the user and everything of theirs"))
}

func TestRejectedUploadsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "bob"}, png("pic"), "me.png"))
	before := e.inSync("setup")
	assert.Equal(t, http.StatusUnsupportedMediaType, e.post("/files/picture/1", nil, []byte("<html><script>x</script>"), "x.png"))
	assert.Equal(t, http.StatusBadRequest, e.post("/files/picture/1", nil, []byte{}, "empty.png"))
	assert.Equal(t, http.StatusUnsupportedMediaType, e.post("/files/signature/1", nil, pdf, "sig.pdf"), "signatures are images")
	assert.Equal(t, http.StatusNotFound, e.post("/files/picture/42", nil, png("x"), "x.png"))
	assert.Equal(t, before, e.inSync("rejected uploads"))
}

// A database failure during a replace leaves the old file, still served.
func TestDatabaseFailureDuringReplaceKeepsOldFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "carol"}, png("old"), "me.png"))
	old := e.inSync("setup")[0]
	_, err := e.db.Exec(`CREATE TRIGGER fail_picture BEFORE UPDATE OF picture ON users BEGIN SELECT RAISE(ABORT, 'forced failure'); END`)
	require.NoError(t, err)

	assert.Equal(t, http.StatusInternalServerError, e.post("/files/picture/1", nil, png("new"), "new.png"))
	assert.Equal(t, []string{old}, e.inSync("a failed replace"))
	code, body := e.get("/media/" + old)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, png("old"), body, "the old file is still served, byte for byte")
}

func TestMediaServesOnlyStoredFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.NoError(t, os.WriteFile(filepath.Join(e.media, ".env"), []byte("secret"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(e.media, "profile_pics"), 0o755))
	for _, p := range []string{".env", "profile_pics", "profile_pics/", "../app.db", "%2e%2e/app.db"} {
		code, _ := e.get("/media/" + p)
		assert.NotEqual(t, http.StatusOK, code, p)
	}
}

func TestAdminOrphanDryRunThenApply(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "dan"}, png("kept"), "me.png"))
	kept := e.inSync("setup")
	orphan := "profile_pics/0123456789abcdef0123456789abcdef.png"
	old := time.Now().Add(-72 * time.Hour)
	storagetest.WriteFile(t, e.fs, orphan, png("orphan"), old)

	resp := e.postForm("/admin/orphans", url.Values{"action": {"find"}, "min_age": {"24h"}})
	require.Equal(t, "/admin", resp.Header.Get("Location"))
	_, page := e.get("/admin")
	assert.Contains(t, string(page), "1 orphaned file")
	assert.Contains(t, string(page), orphan)
	assert.Contains(t, storagetest.Files(t, e.fs), orphan, "the dry run deleted nothing")

	resp = e.postForm("/admin/orphans", url.Values{"action": {"apply"}})
	require.Equal(t, "/admin", resp.Header.Get("Location"))
	assert.Equal(t, kept, storagetest.Files(t, e.fs))
	_, page = e.get("/admin")
	assert.Contains(t, string(page), "Deleted 1 file")

	// The sweep button runs the QR sweeper.
	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/sweep", nil).StatusCode)
	_, page = e.get("/admin")
	assert.True(t, strings.Contains(string(page), "Last sweep"))
}

// A QR sweep never leaves a row pointing at a deleted code: codes older
// than the age expire through their rows, and the sweeper keeps whatever
// a row still shows, even a file older than the age.
func TestQRSweepLeavesNoBrokenImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, name := range []string{"ann", "bob", "cy"} {
		require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": name}, nil, ""))
	}
	for _, id := range []string{"1", "2", "3"} {
		require.Equal(t, http.StatusSeeOther, e.postForm("/qr/"+id, nil).StatusCode)
	}
	qr := func(id int) string {
		var p string
		require.NoError(t, e.db.QueryRow(`SELECT qr_code FROM users WHERE id = ?`, id).Scan(&p))
		return p
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	// ann's code is old by its row and its file; bob's file is old but
	// his row says it was made now (a clock that disagrees); cy's is new.
	_, err := e.db.Exec(`UPDATE users SET qr_created = ? WHERE id = 1`, old.Unix())
	require.NoError(t, err)
	annQR, bobQR, cyQR := qr(1), qr(2), qr(3)
	for _, p := range []string{annQR, bobQR} {
		require.NoError(t, e.fs.Chtimes(p, old, old))
	}
	// A leftover code no row shows, old: the sweeper's to remove.
	storagetest.WriteFile(t, e.fs, "qr_codes/9/leftover.png", png("left"), old)

	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/sweep", nil).StatusCode)
	assert.Empty(t, qr(1), "ann's expired code is cleared from her row")
	assert.Equal(t, bobQR, qr(2))
	assert.Equal(t, cyQR, qr(3))
	left := storagetest.Files(t, e.fs)
	assert.NotContains(t, left, annQR)
	assert.NotContains(t, left, "qr_codes/9/leftover.png")
	for _, id := range []int{1, 2, 3} {
		if p := qr(id); p != "" {
			assert.Contains(t, left, p, "user %d's row points at a file that is there", id)
		}
	}
	assert.Empty(t, e.brokenImages(), "no page shows an image whose file is gone")
}

var imgSrcRE = regexp.MustCompile(`<img\b[^>]*\bsrc="/media/([^"]*)"`)

// brokenImages returns the media paths that the home and admin pages show
// as images but that are not in storage.
func (e *env) brokenImages() []string {
	e.t.Helper()
	files := storagetest.Files(e.t, e.fs)
	var broken []string
	for _, page := range []string{"/", "/admin"} {
		code, body := e.get(page)
		require.Equal(e.t, http.StatusOK, code, page)
		for _, m := range imgSrcRE.FindAllStringSubmatch(string(body), -1) {
			if p := html.UnescapeString(m[1]); !slices.Contains(files, p) {
				broken = append(broken, page+": "+p)
			}
		}
	}
	return broken
}
