package main

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// browser is a client that acts as a browser's page does: it asks for
// HTML, keeps cookies, and follows redirects.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	return &browser{e: e, c: &http.Client{Jar: jar}}
}

func (b *browser) do(req *http.Request) (int, string) {
	b.e.t.Helper()
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	resp, err := b.c.Do(req)
	require.NoError(b.e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.e.t, err)
	return resp.StatusCode, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.url+path, nil)
	require.NoError(b.e.t, err)
	return b.do(req)
}

// post sends a multipart form with fields in order and, if file is not
// nil, a file last, as a browser sends the app's forms.
func (b *browser) post(path string, fields [][2]string, file []byte) (int, string) {
	b.e.t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		require.NoError(b.e.t, w.WriteField(f[0], f[1]))
	}
	if file != nil {
		fw, err := w.CreateFormFile("file", "f.png")
		require.NoError(b.e.t, err)
		fw.Write(file)
	}
	require.NoError(b.e.t, w.Close())
	req, err := http.NewRequest("POST", b.e.url+path, &buf)
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return b.do(req)
}

var (
	formErrorRE  = regexp.MustCompile(`<p class="form-error" role="alert">([^<]*)</p>`)
	formActionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
)

// formErrors returns the messages shown next to forms, each with the
// action of the form it follows: [action, message].
func formErrors(page string) [][2]string {
	var out [][2]string
	for _, m := range formErrorRE.FindAllStringSubmatchIndex(page, -1) {
		forms := formActionRE.FindAllStringSubmatch(page[:m[0]], -1)
		action := ""
		if len(forms) > 0 {
			action = forms[len(forms)-1][1]
		}
		out = append(out, [2]string{action, page[m[2]:m[3]]})
	}
	return out
}

// A bad form value in a browser: a 4xx, the page again with the message
// next to the form that caused it and the values typed, and nothing
// changed.
func TestFormErrorsShowNextToTheForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	code, _ := b.post("/users", [][2]string{{"name", "Ann"}}, png("pic"))
	require.Equal(t, http.StatusOK, code)
	before, rows := e.inSync("setup"), e.tables()

	for _, c := range []struct {
		path    string
		fields  [][2]string
		file    []byte
		code    int
		action  string // the form the message is next to
		msg     string
		refills string
	}{
		{"/forum", [][2]string{{"user_id", "abc"}, {"body", "my words"}}, png("f"), 400, "/forum", "The user id must be a positive whole number.", "my words"},
		{"/forum", [][2]string{{"user_id", "7"}, {"body", "again"}}, nil, 400, "/forum", "There is no user 7", "again"},
		{"/donations", [][2]string{{"user_id", "1"}, {"amount", "ten"}}, nil, 400, "/donations", "The amount must be", `value="ten"`},
		{"/users", [][2]string{{"name", "   "}}, nil, 400, "/users", "The name is missing.", ""},
		{"/users", [][2]string{{"name", "Bo"}}, []byte("<html><script>x</script>"), 415, "/users", "This type of file is not allowed here.", `value="Bo"`},
		{"/files/picture/1", nil, []byte("plain text"), 415, "/files/picture/1", "This type of file is not allowed here.", ""},
		{"/files/signature/1", nil, []byte{}, 400, "/files/signature/1", "The file is empty.", ""},
	} {
		code, page := b.post(c.path, c.fields, c.file)
		assert.Equal(t, c.code, code, c.path)
		m := formErrors(page)
		if assert.Len(t, m, 1, "%s: one message on the page", c.path) {
			assert.Equal(t, c.action, m[0][0], "%s: the message is next to the form that was sent", c.path)
			assert.Contains(t, m[0][1], c.msg, c.path)
		}
		assert.Contains(t, page, c.refills, "%s: the form shows what was typed", c.path)
		assert.Contains(t, page, "Nothing was changed", c.path)
	}
	assert.Equal(t, rows, e.tables(), "no row added")
	assert.Equal(t, before, e.inSync("bad form values"), "no file stored")
}

// After each action the next page says what it did, once.
func TestFlashMessagesAfterEachAction(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	for _, c := range []struct {
		path   string
		fields [][2]string
		file   []byte
		want   string
	}{
		{"/users", [][2]string{{"name", "Ann"}}, png("pic"), "Added Ann, with a profile picture ("},
		{"/files/picture/1", nil, png("pic2"), "Stored the new profile picture of Ann (20 B); 1 old file deleted after the commit."},
		{"/qr/1", nil, nil, "Generated a QR code for Ann."},
		{"/qr/1", nil, nil, "Generated a QR code for Ann; 1 old file deleted after the commit."},
		{"/forum", [][2]string{{"user_id", "1"}, {"body", "hello"}}, png("img"), "Posted a message by Ann, with an image ("},
		{"/donations", [][2]string{{"user_id", "1"}, {"amount", "12.50"}}, nil, "Added a donation of 12.50 by Ann."},
		{"/delete/forum_messages/1", nil, nil, "Deleted message #1 and 1 file, after the commit."},
		{"/delete/users/1", nil, nil, "Deleted Ann, their messages and donations, and 2 files, after the commit."},
		{"/admin/sweep", nil, nil, "Swept: 0 expired QR codes cleared, 0 files deleted (0 B)."},
		{"/admin/orphans", [][2]string{{"action", "find"}, {"min_age", "24h"}}, nil, "Dry run: no orphaned files."},
	} {
		code, page := b.post(c.path, c.fields, c.file)
		require.Equal(t, http.StatusOK, code, c.path)
		assert.Contains(t, page, `<p class="flash ok" role="status">`+c.want, c.path)
		_, page = b.get("/")
		assert.NotContains(t, page, `class="flash`, "%s: the message shows once", c.path)
	}
	e.inSync("the actions")
}

// Names, messages and amounts are shown escaped wherever they appear: in
// the tables, the menus, the flash message, and a form shown again.
func TestHostileInputIsEscaped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	hostile := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	code, page := b.post("/users", [][2]string{{"name", hostile}}, nil)
	require.Equal(t, http.StatusOK, code)
	pages := []string{page}
	_, page = b.post("/forum", [][2]string{{"user_id", "1"}, {"body", hostile + "\n" + "</textarea><script>alert(3)</script>"}}, nil)
	pages = append(pages, page)
	_, page = b.post("/forum", [][2]string{{"user_id", "x"}, {"body", "</textarea><script>alert(4)</script>"}}, nil)
	pages = append(pages, page)
	_, page = b.get("/admin")
	pages = append(pages, page)
	for i, p := range pages {
		assert.NotContains(t, p, "<script>", "page %d", i)
		assert.NotContains(t, p, "<img src=x", "page %d", i)
		assert.NotContains(t, p, "</textarea><script", "page %d", i)
	}
	assert.Contains(t, pages[1], "&lt;script&gt;alert(1)&lt;/script&gt;")
}

// The pages carry no inline style or script (the policy allows neither)
// and load their stylesheet and icon from the app.
func TestPagesUseTheirOwnStylesheet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	for _, p := range []string{"/", "/admin"} {
		resp := e.head(p)
		csp := resp.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "style-src 'self'", p)
		assert.NotContains(t, csp, "unsafe-inline", p)
		_, page := b.get(p)
		assert.NotContains(t, page, "<style", p)
		assert.NotContains(t, page, " style=", p)
		assert.NotContains(t, page, "<script", p)
		assert.Regexp(t, `<link rel="stylesheet" href="/static/style\.css\?v=[0-9a-f]+">`, page, p)
		assert.Contains(t, page, "<thead>", p)
	}
	code, css := e.get("/static/style.css")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(css), "table")
	resp := e.head("/static/style.css")
	assert.Equal(t, "text/css; charset=utf-8", resp.Header.Get("Content-Type"))
	for _, p := range []string{"/static/layout.html", "/static/home.html", "/static/", "/static/../app.go", "/static/%2e%2e%2fapp.go"} {
		code, _ := b.get(p)
		assert.Equal(t, http.StatusNotFound, code, p)
	}
}

// The tables show names instead of user ids, files with their sizes, and
// a file that is gone as missing, never as a broken image.
func TestHomePageShowsNamesSizesAndMissingFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "Zoë"}, png("picture of zoe"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/forum", map[string]string{"user_id": "1", "body": "hi"}, png("img"), "f.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": "1", "amount": "5"}, pdf, "r.pdf"))
	_, page := b.get("/")
	assert.NotContains(t, page, "user 1<", "names, not ids")
	assert.Equal(t, 3, strings.Count(page, `<div class="who">Zoë</div>`), "the user, the author and the donor")
	assert.Contains(t, page, `<option value="1">Zoë</option>`)
	assert.Contains(t, page, "<span class=\"size\">30 B</span>")
	assert.Contains(t, page, ">PDF · 19 B</a>")

	var picture string
	require.NoError(t, e.db.QueryRow(`SELECT picture FROM users`).Scan(&picture))
	require.NoError(t, e.fs.Remove(picture)) // behind the app's back
	_, page = b.get("/")
	assert.Contains(t, page, "file missing")
	assert.NotContains(t, page, picture)
	assert.Empty(t, e.brokenImages())
}

// The admin page: storage per directory with bars, the sweep as a
// summary, and the orphan plan as tables; no raw JSON.
func TestAdminPageReadsAsAReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "bob"}, png("pic2"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/forum", map[string]string{"user_id": "1", "body": "hi"}, png("a much larger image than the pictures"), "f.png"))
	old := time.Now().Add(-72 * time.Hour)
	storagetest.WriteFile(t, e.fs, "profile_pics/0123456789abcdef0123456789abcdef.png", png("orphan"), old)
	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/sweep", nil).StatusCode)
	_, page := b.post("/admin/orphans", [][2]string{{"action", "find"}, {"min_age", "2d"}}, nil)

	assert.NotContains(t, page, "{", "no JSON")
	assert.Contains(t, page, `<td class="path">profile_pics/</td><td class="num">3</td>`)
	assert.Regexp(t, `<td class="path">profile_pics/</td><td class="num">3</td><td class="num">61 B</td><td><svg class="share"[^>]*><rect class="track"[^>]*><rect class="fill" width="100"`, page, "the largest")
	assert.Regexp(t, `<td class="path">forum_images/\d{4}/\d\d/</td><td class="num">1</td><td class="num">53 B</td><td><svg class="share"[^>]*><rect class="track"[^>]*><rect class="fill" width="86\.88`, page, "53 B of the largest 61 B")
	assert.Contains(t, page, "<dt>Last sweep</dt>")
	assert.Contains(t, page, "Found 1 orphaned file</b> (22 B wasted) among 4 scanned files.")
	assert.Contains(t, page, "with a grace period of 2d")
	assert.Contains(t, page, `<td class="path">profile_pics/0123456789abcdef0123456789abcdef.png</td><td class="num">22 B</td><td>3 days ago</td>`)
	assert.Contains(t, page, `<input type="hidden" name="min_age" value="2d">`)

	// A grace period the form does not take: a 400 and the message next
	// to the form, with what was typed.
	code, page := b.post("/admin/orphans", [][2]string{{"action", "find"}, {"min_age", "soon"}}, nil)
	assert.Equal(t, http.StatusBadRequest, code)
	m := formErrors(page)
	require.Len(t, m, 1)
	assert.Equal(t, "/admin/orphans", m[0][0])
	assert.Contains(t, m[0][1], "The grace period must be an age")
	assert.Contains(t, page, `value="soon"`)
}
