package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"image/color"
	imagepng "image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// updateScreenshots writes the home and admin pages' screenshots into
// testdata/screenshots, the README's pictures:
//
//	go test ./examples/webapp -run TestBrowser -update-screenshots
var updateScreenshots = flag.Bool("update-screenshots", false, "write the README's screenshots into testdata/screenshots")

// tab is a browser tab on the app, with the test's helpers.
type tab struct {
	t     *testing.T
	e     *env
	ctx   context.Context
	shots string // where screenshots go
	n     int
}

// newTab starts Chromium (headless, with the flags it needs as root and
// in containers) on a tab, and returns it. The browser is stopped when the
// test ends.
func newTab(t *testing.T, e *env) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	shots := filepath.Join(t.TempDir(), "screenshots")
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots in %s", shots)
	return &tab{t: t, e: e, ctx: ctx, shots: shots}
}

// do runs actions on the tab.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	require.NoError(p.t, chromedp.Do(p.ctx, actions...))
}

// open loads path and checks that it answered 200.
func (p *tab) open(path string) {
	p.t.Helper()
	resp, err := chromedp.RunResponse(p.ctx, chromedp.Navigate(p.e.url+path))
	require.NoError(p.t, err)
	require.Equal(p.t, int64(http.StatusOK), resp.Status, path)
}

// submit runs the actions (the last one a click that sends a form), waits
// for the page that answers, and returns its status.
func (p *tab) submit(actions ...chromedp.Action[chromedp.Void]) int64 {
	p.t.Helper()
	resp, err := chromedp.RunResponse(p.ctx, actions...)
	require.NoError(p.t, err)
	return resp.Status
}

// text is the visible text of the first element sel matches, "" if none.
func (p *tab) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	require.NoError(p.t, err)
	return strings.TrimSpace(s)
}

// count is how many elements sel matches.
func (p *tab) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	require.NoError(p.t, err)
	return n
}

// imagesLoaded checks that every image on the page loads and decodes: no
// broken image, whatever the rows say. The thumbnails load lazily, so it
// makes each eager and waits for it.
func (p *tab) imagesLoaded() {
	p.t.Helper()
	const js = `Promise.all(Array.from(document.images).map(i => { i.loading = "eager"; return i.decode().then(() => "", () => i.src) })).then(r => r.filter(s => s !== ""))`
	broken, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]string](js, chromedp.EvalAwaitPromise))
	require.NoError(p.t, err)
	assert.Empty(p.t, broken, "broken images")
}

// flash is the page's flash message.
func (p *tab) flash() string { p.t.Helper(); return p.text("p.flash") }

// shot saves a screenshot of the whole page as NN-name.png.
func (p *tab) shot(name string) string {
	p.t.Helper()
	b, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	require.NoError(p.t, err)
	p.n++
	file := filepath.Join(p.shots, fmt.Sprintf("%02d-%s.png", p.n, name))
	require.NoError(p.t, os.WriteFile(file, b, 0o644))
	return file
}

// upload writes a file for the browser to send and returns its path.
func (p *tab) upload(name string, data []byte) string {
	p.t.Helper()
	dir := filepath.Join(p.t.TempDir(), "uploads")
	require.NoError(p.t, os.MkdirAll(dir, 0o755))
	f := filepath.Join(dir, name)
	require.NoError(p.t, os.WriteFile(f, data, 0o644))
	return f
}

// avatar is a real PNG: a coloured tile with a head and shoulders.
func avatar(t *testing.T, bg, fg color.RGBA) []byte {
	t.Helper()
	const n = 96
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	for y := range n {
		for x := range n {
			c := bg
			dx, dy := x-n/2, y-38
			bx, by := x-n/2, y-100
			if dx*dx+dy*dy < 18*18 || bx*bx/2+by*by < 40*40 {
				c = fg
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	require.NoError(t, imagepng.Encode(&buf, img))
	return buf.Bytes()
}

// files lists storage under dir.
func (e *env) filesUnder(dir string) []string {
	e.t.Helper()
	var out []string
	for _, f := range storagetest.Files(e.t, e.fs) {
		if strings.HasPrefix(f, dir+"/") {
			out = append(out, f)
		}
	}
	return out
}

// storedBytes reads a stored file from the media folder on disk.
func (e *env) storedBytes(p string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.media, filepath.FromSlash(p)))
	require.NoError(e.t, err)
	return b
}

// The seed's scenarios in Chromium, as a person would click through them,
// checking the page and the files on disk after each step, with a
// screenshot of each page.
func TestBrowserScenarios(t *testing.T) {
	e := newEnv(t)
	p := newTab(t, e)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	start := time.Now()

	p.open("/")
	assert.Contains(t, p.text("#users"), "No users yet")
	p.shot("empty")

	// Add a user with a picture: the thumbnail shows, and the file on
	// disk is the one uploaded.
	ada1 := avatar(t, color.RGBA{0xdc, 0xe6, 0xf8, 0xff}, color.RGBA{0x2f, 0x62, 0xc7, 0xff})
	assert.EqualValues(t, 200, p.submit(
		chromedp.SendKeys(css(`form[action="/users"] input[name=name]`), "Ada Lovelace"),
		chromedp.SetUploadFiles(css(`form[action="/users"] input[type=file]`), []string{p.upload("ada.png", ada1)}),
		chromedp.Click(css(`form[action="/users"] button`)),
	))
	assert.Contains(t, p.flash(), "Added Ada Lovelace, with a profile picture")
	assert.Equal(t, "Ada Lovelace", p.text("#user-1 .who"))
	assert.Equal(t, 1, p.count(`#user-1 td:nth-child(2) img`))
	p.imagesLoaded()
	pics := e.filesUnder("profile_pics")
	require.Len(t, pics, 1)
	assert.Equal(t, ada1, e.storedBytes(pics[0]))
	p.shot("user-added")

	// Replace the picture: only the new file stays.
	ada2 := avatar(t, color.RGBA{0xfd, 0xec, 0xd8, 0xff}, color.RGBA{0xd9, 0x82, 0x2b, 0xff})
	p.open("/")
	p.do(chromedp.Click(css(`#user-1 td:nth-child(2) summary`)))
	assert.EqualValues(t, 200, p.submit(
		chromedp.SetUploadFiles(css(`form[action="/files/picture/1"] input[type=file]`), []string{p.upload("ada2.png", ada2)}),
		chromedp.Click(css(`form[action="/files/picture/1"] button`)),
	))
	assert.Contains(t, p.flash(), "Stored the new profile picture of Ada Lovelace")
	assert.Contains(t, p.flash(), "1 old file deleted after the commit")
	p.imagesLoaded()
	pics2 := e.filesUnder("profile_pics")
	require.Len(t, pics2, 1, "the old picture is gone")
	assert.NotEqual(t, pics, pics2)
	assert.Equal(t, ada2, e.storedBytes(pics2[0]))

	// Generate a QR code twice: one file remains, and it shows.
	var qrs [][]string
	for _, label := range []string{"Generate", "Regenerate"} {
		assert.Equal(t, label, p.text(`form[action="/qr/1"] button`))
		assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`form[action="/qr/1"] button`))))
		assert.Contains(t, p.flash(), "Generated a QR code for Ada Lovelace")
		qrs = append(qrs, e.filesUnder("qr_codes"))
		require.Len(t, qrs[len(qrs)-1], 1, "one QR code for the user")
	}
	assert.NotEqual(t, qrs[0], qrs[1], "the second code replaced the first")
	assert.Contains(t, p.flash(), "1 old file deleted")
	assert.Equal(t, 1, p.count(`#user-1 td:nth-child(4) img`))
	p.imagesLoaded()

	// A second user, and a forum post with an image, chosen by name.
	grace := avatar(t, color.RGBA{0xe7, 0xf5, 0xec, 0xff}, color.RGBA{0x1d, 0x7a, 0x46, 0xff})
	assert.EqualValues(t, 200, p.submit(
		chromedp.SendKeys(css(`form[action="/users"] input[name=name]`), "Grace Hopper"),
		chromedp.SetUploadFiles(css(`form[action="/users"] input[type=file]`), []string{p.upload("grace.png", grace)}),
		chromedp.Click(css(`form[action="/users"] button`)),
	))
	img1 := avatar(t, color.RGBA{0xf3, 0xe8, 0xfd, 0xff}, color.RGBA{0x7b, 0x4b, 0xb7, 0xff})
	assert.EqualValues(t, 200, p.submit(
		chromedp.SetValue(css(`form[action="/forum"] select`), "2"),
		chromedp.SendKeys(css(`form[action="/forum"] textarea`), "The first bug was a moth."),
		chromedp.SetUploadFiles(css(`form[action="/forum"] input[type=file]`), []string{p.upload("moth.png", img1)}),
		chromedp.Click(css(`form[action="/forum"] button`)),
	))
	assert.Contains(t, p.flash(), "Posted a message by Grace Hopper, with an image")
	assert.Equal(t, "Grace Hopper", p.text("#message-1 .who"), "the author's name, not an id")
	images := e.filesUnder("forum_images")
	require.Len(t, images, 1)
	assert.Equal(t, img1, e.storedBytes(images[0]))

	// Replace the forum image.
	img2 := avatar(t, color.RGBA{0xe0, 0xf4, 0xf4, 0xff}, color.RGBA{0x0f, 0x8a, 0x8a, 0xff})
	p.open("/")
	p.do(chromedp.Click(css(`#message-1 td:nth-child(3) summary`)))
	assert.EqualValues(t, 200, p.submit(
		chromedp.SetUploadFiles(css(`form[action="/files/image/1"] input[type=file]`), []string{p.upload("moth2.png", img2)}),
		chromedp.Click(css(`form[action="/files/image/1"] button`)),
	))
	assert.Contains(t, p.flash(), "Stored the new image of message #1")
	images2 := e.filesUnder("forum_images")
	require.Len(t, images2, 1, "the old image is gone")
	assert.Equal(t, img2, e.storedBytes(images2[0]))
	p.imagesLoaded()

	// Bad form values: a name of spaces (the browser's "required" lets it
	// through), and a text file as a signature. Each gets a 4xx, the
	// message next to its form, and changes nothing.
	before, rows := e.inSync("before the bad values"), e.tables()
	p.open("/")
	assert.EqualValues(t, 400, p.submit(
		chromedp.SendKeys(css(`form[action="/users"] input[name=name]`), "   "),
		chromedp.Click(css(`form[action="/users"] button`)),
	))
	assert.Equal(t, "The name is missing.", p.text(`form[action="/users"] .form-error`))
	assert.Contains(t, p.flash(), "Nothing was changed")
	p.shot("bad-name")
	p.do(chromedp.Click(css(`#user-2 td:nth-child(3) summary`)))
	assert.EqualValues(t, 415, p.submit(
		chromedp.SetUploadFiles(css(`form[action="/files/signature/2"] input[type=file]`), []string{p.upload("notes.png", []byte("just some text, not an image"))}),
		chromedp.Click(css(`form[action="/files/signature/2"] button`)),
	))
	assert.Equal(t, "This type of file is not allowed here.", p.text(`#user-2 td:nth-child(3) .form-error`))
	assert.Equal(t, 1, p.count(".form-error"), "one message, next to the form that was sent")
	p.shot("bad-file")
	assert.Equal(t, rows, e.tables(), "no row changed")
	assert.Equal(t, before, e.inSync("the bad values"), "no file changed")

	// A donation, then delete Ada: her picture and QR code go with her;
	// Grace's files stay.
	assert.EqualValues(t, 200, p.submit(
		chromedp.SetValue(css(`form[action="/donations"] select`), "2"),
		chromedp.SendKeys(css(`form[action="/donations"] input[name=amount]`), "25.00"),
		chromedp.SetUploadFiles(css(`form[action="/donations"] input[type=file]`), []string{p.upload("receipt.pdf", pdf)}),
		chromedp.Click(css(`form[action="/donations"] button`)),
	))
	assert.Contains(t, p.flash(), "Added a donation of 25.00 by Grace Hopper, with a receipt")
	assert.Contains(t, p.text("#donation-1"), "PDF")
	p.do(chromedp.Click(css(`#user-1 details.confirm summary`)))
	assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`form[action="/delete/users/1"] button`))))
	assert.Contains(t, p.flash(), "Deleted Ada Lovelace, their messages and donations, and 2 files, after the commit.")
	assert.Equal(t, 0, p.count("#user-1"))
	assert.Empty(t, e.filesUnder("qr_codes"), "Ada's QR code is gone")
	pics3 := e.filesUnder("profile_pics")
	require.Len(t, pics3, 1, "Grace's picture stays")
	assert.Equal(t, grace, e.storedBytes(pics3[0]))
	e.inSync("deleting a user")
	p.imagesLoaded()
	p.shot("user-deleted")

	// A third user, for the picture of a home page in use.
	linus := avatar(t, color.RGBA{0xfd, 0xec, 0xea, 0xff}, color.RGBA{0xb3, 0x26, 0x1e, 0xff})
	assert.EqualValues(t, 200, p.submit(
		chromedp.SendKeys(css(`form[action="/users"] input[name=name]`), "Katherine Johnson"),
		chromedp.SetUploadFiles(css(`form[action="/users"] input[type=file]`), []string{p.upload("kj.png", linus)}),
		chromedp.Click(css(`form[action="/users"] button`)),
	))
	assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`form[action="/qr/3"] button`))))
	p.imagesLoaded()
	home := p.shot("home")

	// The orphan check: a file no row references, three days old. The
	// dry run lists it and deletes nothing; applying it deletes it.
	orphan := "profile_pics/0123456789abcdef0123456789abcdef.png"
	storagetest.WriteFile(t, e.fs, orphan, ada1, time.Now().Add(-72*time.Hour))
	seedUsage(t, e)
	p.open("/admin")
	assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`form[action="/admin/sweep"] button`))))
	assert.Contains(t, p.flash(), "Swept:")
	assert.Contains(t, p.text("#sweep dl.summary"), "Deleted")
	assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`#orphans form.add button`))))
	assert.Contains(t, p.flash(), "Dry run: 1 orphaned file")
	assert.Contains(t, p.text("#orphans"), orphan)
	assert.Contains(t, storagetest.Files(t, e.fs), orphan, "the dry run deleted nothing")
	assert.Equal(t, 1, p.count("svg.chart"))
	assert.Positive(t, p.count("svg.chart polyline"))
	p.imagesLoaded()
	admin := p.shot("admin")
	assert.EqualValues(t, 200, p.submit(chromedp.Click(css(`#orphans form.actions button`))))
	assert.Contains(t, p.flash(), "Deleted 1 orphaned file (")
	assert.NotContains(t, storagetest.Files(t, e.fs), orphan)
	e.inSync("applying the orphan check")
	p.shot("orphans-deleted")
	t.Logf("the scenarios took %v in Chromium", time.Since(start).Round(100*time.Millisecond))

	if *updateScreenshots {
		for name, src := range map[string]string{"home.png": home, "admin.png": admin} {
			b, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(filepath.Join("testdata", "screenshots"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join("testdata", "screenshots", name), b, 0o644))
		}
	}
}

// seedUsage records a week of made-up storage history before the real
// sample the next sweep takes, so that the admin page's chart has a
// week to draw: the pictures grow steadily, the forum in a burst.
func seedUsage(t *testing.T, e *env) {
	t.Helper()
	now := time.Now()
	for h := 7 * 24; h >= 6; h -= 6 {
		at := now.Add(-time.Duration(h) * time.Hour).Unix()
		day := float64(7*24-h) / 24
		pics := int64(200 + 130*day)
		forum := int64(120)
		if h < 40 {
			forum = 900
		}
		_, err := e.db.Exec(`INSERT INTO storage_usage (taken, dir, files, bytes) VALUES (?, 'profile_pics', ?, ?), (?, 'forum_images', 1, ?), (?, 'qr_codes', 1, 400)`,
			at, 1+int(day/3), pics, at, forum, at)
		require.NoError(t, err)
	}
}
