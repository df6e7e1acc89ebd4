package main

import (
	"bytes"
	"context"
	"database/sql"
	"html/template"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/examples/internal/age"
	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/sweep"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// newRow is a form that creates a row, with an optional file.
type newRow struct {
	kind *kind
	// insert inserts the row; its last parameter is the stored path of
	// the file ("" for none).
	insert string
	// args checks the form's text fields and returns the other parameters.
	args func(context.Context, url.Values) ([]any, error)
}

// createRow inserts a row and, when the form carries a file, stores it
// first, streaming, before the transaction opens: the row is inserted
// with the file's path, and the file is removed if the insert fails.
func (a *App) createRow(w http.ResponseWriter, r *http.Request, nr newRow) {
	ctx := r.Context()
	if err := limitBody(w, r, nr.kind.maxSize+formAllowance); err != nil {
		a.fail(w, r, err)
		return
	}
	var args []any
	var ch *filefield.Change
	defer func() {
		if ch != nil {
			ch.Rollback(ctx) // nothing after the commit
		}
	}()
	values, err := readForm(r, func(values url.Values, p *multipart.Part) error {
		// The fields come first: a bad one stores nothing.
		var err error
		if args, err = nr.args(ctx, values); err != nil {
			return err
		}
		ch, err = nr.kind.field.Save(ctx, filefield.Upload{Body: p, Name: p.FileName()})
		return err
	})
	if err == nil && args == nil {
		args, err = nr.args(ctx, values)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	path := ""
	if ch != nil {
		path = ch.New
	}
	_, err = filefield.WithTx(ctx, a.db, nil, func(ctx context.Context, tx *sql.Tx) error {
		filefield.ScopeFrom(ctx).Add(ch, nil)
		_, err := tx.ExecContext(ctx, nr.insert, append(args, path)...)
		if isForeignKey(err) {
			return userErr(http.StatusConflict, "the user was deleted meanwhile")
		}
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *App) createUser(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{a.kinds["picture"], "INSERT INTO users (name, picture) VALUES (?, ?)", func(_ context.Context, v url.Values) ([]any, error) {
		name, err := text(v, "name", "name", maxNameLen, false)
		return []any{name}, err
	}})
}

func (a *App) createMessage(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{a.kinds["image"], "INSERT INTO forum_messages (user_id, body, image) VALUES (?, ?, ?)", func(ctx context.Context, v url.Values) ([]any, error) {
		body, err := text(v, "body", "message", maxMessageLen, true)
		if err != nil {
			return nil, err
		}
		id, err := a.userID(ctx, v)
		return []any{id, body}, err
	}})
}

func (a *App) createDonation(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{a.kinds["receipt"], "INSERT INTO donations (user_id, amount, receipt) VALUES (?, ?, ?)", func(ctx context.Context, v url.Values) ([]any, error) {
		amt, err := amount(v)
		if err != nil {
			return nil, err
		}
		id, err := a.userID(ctx, v)
		return []any{id, amt}, err
	}})
}

type user struct {
	ID                           int64
	Name, Picture, Signature, QR string
}

type row struct {
	ID     int64
	UserID string // as stored: rows of older databases may hold anything
	Text   string
	File   string
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var data struct {
		Users     []user
		Messages  []row
		Donations []row
		Kinds     map[string]*kind
	}
	data.Kinds = a.kinds
	rows, err := a.db.QueryContext(ctx, "SELECT id, name, picture, signature, qr_code FROM users ORDER BY id")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for rows.Next() {
		var u user
		if err := rows.Scan(&u.ID, &u.Name, &u.Picture, &u.Signature, &u.QR); err != nil {
			rows.Close()
			a.fail(w, r, err)
			return
		}
		data.Users = append(data.Users, u)
	}
	rows.Close()
	for _, q := range []struct {
		sql string
		dst *[]row
	}{
		{"SELECT id, user_id, body, image FROM forum_messages ORDER BY id", &data.Messages},
		{"SELECT id, user_id, amount, receipt FROM donations ORDER BY id", &data.Donations},
	} {
		if err := scanRows(ctx, a.db, q.sql, q.dst); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.render(w, r, homePage, data)
}

func scanRows(ctx context.Context, db *sql.DB, q string, dst *[]row) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.ID, &x.UserID, &x.Text, &x.File); err != nil {
			return err
		}
		*dst = append(*dst, x)
	}
	return rows.Err()
}

// admin shows the storage report: bytes per directory, the last sweep, and
// the last orphan check.
func (a *App) admin(w http.ResponseWriter, r *http.Request) {
	var tally storage.DirTally
	var total storage.Count
	err := storage.List(r.Context(), a.fs, storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			tally.Add(e.Path, e.Size)
			total.Add(e.Size)
		}
		return nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.mu.Lock()
	data := struct {
		Dirs     []storage.DirCount
		Total    storage.Count
		Sweep    *sweep.Report
		SweepErr error
		Plan     *shownPlan
		Applied  *orphan.Report
		Error    string
		QRMaxAge string
	}{tally.Top(0), total, a.lastSweep, a.sweepErr, a.lastPlan, a.lastApply, r.URL.Query().Get("error"), ""}
	a.mu.Unlock()
	a.render(w, r, adminPage, data)
}

// orphans runs the orphan check as a dry run (action=find) or applies the
// last plan (action=apply). min_age is the grace period of a dry run
// (an age: 24h, 7d, 0 for none; default 24h). An apply deletes what the
// dry run listed, with that dry run's grace period: its form carries the
// plan's number and grace period, and is refused (409, nothing deleted)
// when another dry run has replaced that plan since.
func (a *App) orphans(w http.ResponseWriter, r *http.Request) {
	action := r.FormValue("action")
	if action != "" && action != "find" && action != "apply" {
		a.fail(w, r, userErr(http.StatusBadRequest, "unknown action"))
		return
	}
	minAge, err := graceArg(r.FormValue("min_age"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ctx := r.Context()
	var msg string
	if action == "apply" {
		plan, err := a.claimPlan(r.FormValue("plan"), minAge, r.FormValue("min_age") != "")
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if plan == nil {
			msg = "run the check first"
		} else {
			rep, err := a.finder(orphan.Options{MinAge: plan.minAge}).Apply(ctx, plan.Plan)
			a.mu.Lock()
			a.lastApply = rep
			a.mu.Unlock()
			if err != nil {
				msg = err.Error()
			}
		}
	} else {
		plan, err := a.finder(orphan.Options{MinAge: minAge}).Find(ctx)
		a.mu.Lock()
		a.planSeq++
		a.lastPlan, a.lastApply = &shownPlan{Plan: plan, ID: a.planSeq, minAge: minAge}, nil
		if plan == nil {
			a.lastPlan = nil
		}
		a.mu.Unlock()
		if err != nil {
			msg = err.Error()
		}
	}
	target := "/admin"
	if msg != "" {
		target += "?error=" + template.URLQueryEscaper(msg)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// shownPlan is the last dry run: its plan, its number (the apply form
// names it), and the grace period it was made with, as orphan.Options
// takes it.
type shownPlan struct {
	Plan   *orphan.Plan
	ID     uint64
	minAge time.Duration
}

// GraceText is the plan's grace period as the form takes it.
func (p *shownPlan) GraceText() string {
	if p.minAge < 0 {
		return "0"
	}
	return age.Format(p.minAge)
}

// claimPlan takes the last plan for an apply, so that it is applied once.
// id is the plan number the apply form carries, and minAge its grace
// period (when given): an apply names the plan its page showed, and is
// refused if that is not the last one. With neither (a form from before
// they were carried), the last plan is applied with its own grace period.
// A nil plan and no error: there is none to apply.
func (a *App) claimPlan(id string, minAge time.Duration, gotMinAge bool) (*shownPlan, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.lastPlan
	if p == nil {
		if id != "" {
			return nil, userErr(http.StatusConflict, "this list of orphans was applied or replaced since the page was shown; run the check again")
		}
		return nil, nil
	}
	if (id != "" && id != strconv.FormatUint(p.ID, 10)) || (gotMinAge && minAge != p.minAge) {
		return nil, userErr(http.StatusConflict, "another check ran since this page was shown; review its list before deleting")
	}
	a.lastPlan = nil
	return p, nil
}

// graceArg parses the form's grace period, as orphan.Options.MinAge takes
// it: an age, 24h when empty, and an explicit 0 means none (-1).
func graceArg(v string) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return 24 * time.Hour, nil
	}
	d, err := age.Parse(v, 0)
	if err != nil || d < 0 {
		return 0, userErr(http.StatusBadRequest, "the grace period must be an age such as 24h, 7d or 0")
	}
	if d == 0 {
		return -1, nil // an explicit 0 means no grace period
	}
	return d, nil
}

func (a *App) sweepNow(w http.ResponseWriter, r *http.Request) {
	a.sweepQR(r.Context())
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (a *App) render(w http.ResponseWriter, r *http.Request, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	buf.WriteTo(w)
}

var funcs = template.FuncMap{
	"human": human,
	"json":  func(v any) string { return jsonIndent(v) },
}

const style = `<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}img{max-height:64px;vertical-align:middle}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}form{display:inline}pre{background:#f4f4f4;padding:1em}</style>`

var homePage = template.Must(template.New("home").Funcs(funcs).Parse(`<!doctype html><title>mediaclean example</title>` + style + `
<h1>mediaclean example</h1>
<p>Every upload below goes through filefield: it is stored first, then the row changes in one short transaction; replace a
file and the old one is deleted only after the commit. <a href="/admin">Admin: storage report, sweeps and orphans</a></p>

<h2>Users</h2>
<form method="post" action="/users" enctype="multipart/form-data">
<input name="name" placeholder="name" maxlength="100" required> picture: <input type="file" name="file"> <button>Add user</button></form>
<table><tr><th>id</th><th>name</th><th>profile picture</th><th>e-signature</th><th>attendance QR code</th><th></th></tr>
{{range .Users}}<tr><td>{{.ID}}</td><td>{{.Name}}</td>
<td>{{if .Picture}}<img src="/media/{{.Picture}}" alt="picture">{{end}}
<form method="post" action="/files/picture/{{.ID}}" enctype="multipart/form-data"><input type="file" name="file" required><button>Upload</button></form></td>
<td>{{if .Signature}}<img src="/media/{{.Signature}}" alt="signature">{{end}}
<form method="post" action="/files/signature/{{.ID}}" enctype="multipart/form-data"><input type="file" name="file" required><button>Upload</button></form></td>
<td>{{if .QR}}<img src="/media/{{.QR}}" alt="QR code">{{end}}
<form method="post" action="/qr/{{.ID}}"><button>Generate</button></form></td>
<td><form method="post" action="/delete/users/{{.ID}}"><button>Delete</button></form></td></tr>{{end}}</table>

<h2>Forum</h2>
<form method="post" action="/forum" enctype="multipart/form-data">user id <input name="user_id" type="number" min="1" style="width:4em" required>
<input name="body" placeholder="message" maxlength="2000" required> image: <input type="file" name="file"> <button>Post</button></form>
<table>{{range .Messages}}<tr><td>{{.ID}}</td><td>user {{.UserID}}</td><td>{{.Text}}</td>
<td>{{if .File}}<img src="/media/{{.File}}" alt="image">{{end}}
<form method="post" action="/files/image/{{.ID}}" enctype="multipart/form-data"><input type="file" name="file" required><button>Replace image</button></form></td>
<td><form method="post" action="/delete/forum_messages/{{.ID}}"><button>Delete</button></form></td></tr>{{end}}</table>

<h2>Donations</h2>
<form method="post" action="/donations" enctype="multipart/form-data">user id <input name="user_id" type="number" min="1" style="width:4em" required>
<input name="amount" placeholder="amount" inputmode="decimal" pattern="[0-9]{1,9}([.][0-9]{1,2})?" required> receipt: <input type="file" name="file"> <button>Add</button></form>
<table>{{range .Donations}}<tr><td>{{.ID}}</td><td>user {{.UserID}}</td><td>{{.Text}}</td>
<td>{{if .File}}<a href="/media/{{.File}}">receipt</a>{{end}}
<form method="post" action="/files/receipt/{{.ID}}" enctype="multipart/form-data"><input type="file" name="file" required><button>Replace receipt</button></form></td>
<td><form method="post" action="/delete/donations/{{.ID}}"><button>Delete</button></form></td></tr>{{end}}</table>
`))

var adminPage = template.Must(template.New("admin").Funcs(funcs).Parse(`<!doctype html><title>mediaclean admin</title>` + style + `
<p><a href="/">back</a></p><h1>Storage report</h1>
{{if .Error}}<p style="color:#b00"><b>{{.Error}}</b></p>{{end}}
<p>{{.Total.Files}} files, {{human .Total.Bytes}} in total.</p>
<table><tr><th>directory</th><th>files</th><th>bytes</th></tr>
{{range .Dirs}}<tr><td>{{.Dir}}</td><td>{{.Files}}</td><td>{{human .Bytes}}</td></tr>{{end}}</table>

<h2>QR code sweep</h2>
<form method="post" action="/admin/sweep"><button>Sweep now</button></form>
{{if .SweepErr}}<p>error: {{.SweepErr}}</p>{{end}}
{{with .Sweep}}<p>Last sweep {{.Started.Format "2006-01-02 15:04:05"}}: scanned {{.Scanned.Files}} files, deleted
{{.Deleted.Files}} ({{human .Deleted.Bytes}}), failed {{.Failed.Files}}.</p>
<details><summary>report</summary><pre>{{json .}}</pre></details>{{else}}<p>No sweep yet.</p>{{end}}

<h2>Orphaned files</h2>
<form method="post" action="/admin/orphans"><input type="hidden" name="action" value="find">
grace period <input name="min_age" value="24h" size="5"> <button>Check (dry run)</button></form>
{{with .Plan}}{{with .Plan}}<p>{{.Total.Files}} orphaned files, {{human .Total.Bytes}} wasted, of {{.Scanned.Files}} scanned.
{{if .MissingCount}}{{.MissingCount}} references point at missing files.{{end}}</p>
<table><tr><th>directory</th><th>orphans</th><th>bytes</th></tr>
{{range .Dirs}}<tr><td>{{.Dir}}</td><td>{{.Files}}</td><td>{{human .Bytes}}</td></tr>{{end}}</table>
<ul>{{range .Orphans}}<li>{{.Path}} ({{human .Size}})</li>{{end}}</ul>
{{end}}<form method="post" action="/admin/orphans"><input type="hidden" name="action" value="apply">
<input type="hidden" name="plan" value="{{.ID}}"><input type="hidden" name="min_age" value="{{.GraceText}}">
<button>Delete these orphans</button></form>{{end}}
{{with .Applied}}<p>Deleted {{.Deleted.Files}} files ({{human .Deleted.Bytes}}); failed {{.Failed.Files}}.</p><pre>{{json .}}</pre>{{end}}
`))
