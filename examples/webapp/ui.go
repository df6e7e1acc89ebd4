package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// ui holds the pages' templates, the stylesheet and the icon. The pages
// load nothing from elsewhere, and no script at all.
//
//go:embed ui
var ui embed.FS

// assets are the files served under /static/, each with the version (a
// hash of its content) that its URL carries, so that browsers may cache
// it for long.
var assets = func() map[string]string {
	out := map[string]string{}
	for _, name := range []string{"style.css", "icon.svg"} {
		b, err := ui.ReadFile("ui/" + name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		out[name] = hex.EncodeToString(sum[:6])
	}
	return out
}()

// assetURL is the URL of a static file, with its version.
func assetURL(name string) string { return "/static/" + name + "?v=" + assets[name] }

var funcs = template.FuncMap{
	"human":  human,
	"asset":  assetURL,
	"ago":    ago,
	"plural": plural,
	"add":    func(a, b float64) float64 { return a + b },
	"sub":    func(a, b float64) float64 { return a - b },
}

// page parses the layout with one page's templates.
func page(name string) *template.Template {
	return template.Must(template.New(name).Funcs(funcs).ParseFS(ui, "ui/layout.html", "ui/"+name))
}

var (
	homePage  = page("home.html")
	adminPage = page("admin.html")
	errorHTML = page("error.html")
)

// static serves the stylesheet and the icon.
func static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := assets[name]; !ok {
		http.NotFound(w, r)
		return
	}
	b, _ := fs.ReadFile(ui, "ui/"+name)
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// render writes a page with the layout, with status code.
func (a *App) render(w http.ResponseWriter, r *http.Request, t *template.Template, code int, data any) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.ErrorContext(r.Context(), "render", "error", err)
		errorPage(w, http.StatusInternalServerError, publicMessage(err, http.StatusInternalServerError))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	buf.WriteTo(w)
}

// wantsHTML reports whether the request comes from a browser's page: it
// asks for HTML. Scripts and curl get the plain-text answers.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// view is what every page shows besides its own data: the navigation, a
// flash message, and the form that failed, with its message and values.
type view struct {
	Nav    string // "home" or "admin"
	Flash  *flash
	Failed string     // the form that failed, "" for none
	Err    string     // its message
	Values url.Values // the values it was sent with
}

// ErrorFor is the message of form, if it is the one that failed (or a
// flash message names it).
func (v *view) ErrorFor(form string) string {
	switch {
	case form == "":
		return ""
	case v.Failed == form:
		return v.Err
	case v.Flash != nil && v.Flash.Form == form:
		return v.Flash.Msg
	}
	return ""
}

// Value is the value of key that form was sent with, if it failed: the
// page shows it again, so nothing typed is lost.
func (v *view) Value(form, key string) string {
	if v.Failed != form || v.Values == nil {
		return ""
	}
	return v.Values.Get(key)
}

// flash is a message shown once, on the page a redirect leads to: what an
// action did, or why it failed (next to its form, when Form is set).
type flash struct {
	Kind string // "ok" or "error"
	Msg  string
	Form string
}

const flashCookie = "flash"

// setFlash sets the message the next page shows. It lives in a cookie of
// this site, not in the URL, so that no link can make the app show text
// of someone else's choosing.
func setFlash(w http.ResponseWriter, f flash) {
	if len(f.Msg) > 600 {
		f.Msg = f.Msg[:600] + "…"
	}
	v := base64.RawURLEncoding.EncodeToString([]byte(f.Kind + "\n" + f.Form + "\n" + f.Msg))
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: v, Path: "/", MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeFlash returns the flash message and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	parts := strings.SplitN(string(b), "\n", 3)
	if len(parts) != 3 || (parts[0] != "ok" && parts[0] != "error") {
		return nil
	}
	return &flash{Kind: parts[0], Form: parts[1], Msg: parts[2]}
}

// done answers a successful form post: a flash message, and a redirect
// to the page the form is on.
func done(w http.ResponseWriter, r *http.Request, to, msg string) {
	setFlash(w, flash{Kind: "ok", Msg: msg})
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// fileView is a stored file as a page shows it.
type fileView struct {
	Path    string
	Size    int64
	Missing bool // the row names it, but storage does not have it
}

// Image reports whether the page shows the file as an image.
func (f fileView) Image() bool { _, ok := inlineExts[strings.ToLower(path.Ext(f.Path))]; return ok }

// Name is the file's base name.
func (f fileView) Name() string { return path.Base(f.Path) }

// Ext is the file's type, from its extension: PDF.
func (f fileView) Ext() string { return strings.ToUpper(strings.TrimPrefix(path.Ext(f.Path), ".")) }

// file looks p up in storage: its size, or that it is missing. A page
// never shows an image whose file is not there.
func (a *App) file(p string) fileView {
	v := fileView{Path: p}
	if p == "" {
		return v
	}
	if storage.ValidPath(p) != nil {
		v.Missing = true
		return v
	}
	fi, err := a.fs.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		v.Missing = true
		return v
	}
	v.Size = fi.Size()
	return v
}

// dirRow is a directory's line in a table, with its bar: Width is its
// bytes as a percentage of the largest directory's.
type dirRow struct {
	storage.DirCount
	Width float64
}

func dirRows(dirs []storage.DirCount) []dirRow {
	var top int64
	for _, d := range dirs {
		top = max(top, d.Bytes)
	}
	out := make([]dirRow, len(dirs))
	for i, d := range dirs {
		out[i] = dirRow{DirCount: d}
		if top > 0 {
			out[i].Width = 100 * float64(d.Bytes) / float64(top)
		}
	}
	return out
}

// keptLine is a count of files kept, and why, in words.
type keptLine struct {
	storage.Count
	Why string
}

// keptReasons says why files were kept, in words, most first.
var keptReasons = []struct{ reason, why string }{
	{storage.KeptReferenced, "a row still shows them"},
	{storage.KeptYoung, "newer than the age limit"},
	{storage.KeptInFlight, "uploads in progress"},
	{storage.KeptChanged, "changed since the dry run"},
	{storage.KeptGone, "already gone"},
	{storage.KeptCheckFailed, "the database check failed, so they were kept"},
	{storage.KeptProtected, "protected"},
	{storage.KeptNotRegular, "not regular files"},
	{storage.KeptUnsafe, "paths the app may not touch"},
	{storage.KeptCancelled, "not tried: the request ended first"},
}

func keptLines(t storage.KeptTally) []keptLine {
	var out []keptLine
	seen := map[string]bool{}
	for _, k := range keptReasons {
		seen[k.reason] = true
		if c, ok := t[k.reason]; ok && c.Files > 0 {
			out = append(out, keptLine{c, k.why})
		}
	}
	for reason, c := range t {
		if !seen[reason] && c.Files > 0 {
			out = append(out, keptLine{c, strings.ReplaceAll(reason, "_", " ")})
		}
	}
	return out
}

// ago says when t was, or will be, relative to now: "3 minutes ago",
// "6 days from now".
func ago(t time.Time) string {
	if d := time.Since(t); d < 5*time.Second && d > -5*time.Second {
		return "just now"
	}
	return humanize.Time(t)
}

// plural picks the word for n.
func plural(n any, one, many string) string {
	switch n {
	case 1, int64(1):
		return one
	}
	return many
}

// took rounds a duration for people: 3ms, 1.2s.
func took(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "under 1ms"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
