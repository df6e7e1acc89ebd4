package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/filefield"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// newRow is a form that creates a row, with an optional file.
type newRow struct {
	form string // the form's name on the page
	kind *kind
	// insert inserts the row; its last parameter is the stored path of
	// the file ("" for none).
	insert string
	// args checks the form's text fields and returns the other
	// parameters, and what to say once the row is in.
	args func(context.Context, url.Values) (args []any, done string, err error)
}

// createRow inserts a row and, when the form carries a file, stores it
// first, streaming, before the transaction opens: the row is inserted
// with the file's path, and the file is removed if the insert fails.
func (a *App) createRow(w http.ResponseWriter, r *http.Request, nr newRow) {
	ctx := r.Context()
	if err := limitBody(w, r, nr.kind.maxSize+formAllowance); err != nil {
		a.formFail(w, r, nr.form, nil, err)
		return
	}
	var args []any
	var msg string
	var ch *filefield.Change
	defer func() {
		if ch != nil {
			ch.Rollback(ctx) // nothing after the commit
		}
	}()
	var values url.Values
	got, err := readForm(r, func(v url.Values, p *multipart.Part) error {
		// The fields come first: a bad one stores nothing.
		values = v
		var err error
		if args, msg, err = nr.args(ctx, v); err != nil {
			return err
		}
		ch, err = nr.kind.field.Save(ctx, filefield.Upload{Body: p, Name: p.FileName()})
		return err
	})
	if got != nil {
		values = got
	}
	if err == nil && args == nil {
		args, msg, err = nr.args(ctx, values)
	}
	if err != nil {
		a.formFail(w, r, nr.form, values, err)
		return
	}
	path := ""
	if ch != nil {
		path = ch.New
	}
	_, err = filefield.WithTx(ctx, a.db, nil, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, nr.insert, append(args, path)...)
		if isForeignKey(err) {
			return userErr(http.StatusConflict, "the user was deleted meanwhile")
		}
		return err
	})
	if err != nil {
		a.formFail(w, r, nr.form, values, err)
		return
	}
	if ch != nil {
		msg += fmt.Sprintf(", with %s (%s)", article(nr.kind.noun), human(ch.Size))
	}
	done(w, r, "/", msg+".")
}

func (a *App) createUser(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{"user", a.kinds["picture"], "INSERT INTO users (name, picture) VALUES (?, ?)", func(_ context.Context, v url.Values) ([]any, string, error) {
		name, err := text(v, "name", "name", maxNameLen, false)
		return []any{name}, "Added " + name, err
	}})
}

func (a *App) createMessage(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{"forum", a.kinds["image"], "INSERT INTO forum_messages (user_id, body, image) VALUES (?, ?, ?)", func(ctx context.Context, v url.Values) ([]any, string, error) {
		id, name, err := a.userID(ctx, v)
		if err != nil {
			return nil, "", err
		}
		body, err := text(v, "body", "message", maxMessageLen, true)
		return []any{id, body}, "Posted a message by " + name, err
	}})
}

func (a *App) createDonation(w http.ResponseWriter, r *http.Request) {
	a.createRow(w, r, newRow{"donation", a.kinds["receipt"], "INSERT INTO donations (user_id, amount, receipt) VALUES (?, ?, ?)", func(ctx context.Context, v url.Values) ([]any, string, error) {
		id, name, err := a.userID(ctx, v)
		if err != nil {
			return nil, "", err
		}
		amt, err := amount(v)
		return []any{id, amt}, "Added a donation of " + amt + " by " + name, err
	}})
}

// formFail answers a form that failed. A browser's form that was refused
// (a 4xx) gets its page back with that status: the message next to the
// form, and the values it was sent with, so that nothing typed is lost
// (a file must be chosen again). Anything else gets what fail gives.
func (a *App) formFail(w http.ResponseWriter, r *http.Request, form string, values url.Values, err error) {
	code := errStatus(err)
	if !wantsHTML(r) || code >= 500 {
		a.fail(w, r, err)
		return
	}
	a.logFail(r, code, err)
	v := view{Failed: form, Err: sentence(publicMessage(err, code)), Values: values}
	if strings.HasPrefix(r.URL.Path, "/admin") {
		a.showAdmin(w, r, v, code)
		return
	}
	a.showHome(w, r, v, code)
}

// userView, rowView: a page's lines.
type userView struct {
	ID                     int64
	Name                   string
	Picture, Signature, QR fileView
	QRExpires              time.Time
}

type rowView struct {
	ID     int64
	UserID string // as stored: rows of older databases may hold anything
	Author string // the user's name, "" if there is no such user
	Text   string
	File   fileView
}

// homeView is the home page's data.
type homeView struct {
	view
	Users     []userView
	Messages  []rowView
	Donations []rowView
	kinds     map[string]*kind
}

// uploadForm is a row's upload form for one file column.
type uploadForm struct {
	Kind, Accept, Err string
	ID                int64
	Has               bool
}

// Upload is the upload form of column kind of row id; has says the row
// holds a file already.
func (h *homeView) Upload(kind string, id int64, has bool) uploadForm {
	accept := "image/jpeg,image/png,image/gif,image/webp"
	if kind == "receipt" {
		accept = "application/pdf," + accept
	}
	return uploadForm{Kind: kind, ID: id, Has: has, Accept: accept, Err: h.ErrorFor(fmt.Sprintf("%s-%d", kind, id))}
}

// deleteForm is a row's delete button, behind a disclosure.
type deleteForm struct {
	Table, Label, Err string
	ID                int64
}

func (h *homeView) Delete(table string, id int64, label string) deleteForm {
	return deleteForm{Table: table, ID: id, Label: label, Err: h.ErrorFor(fmt.Sprintf("delete-%s-%d", table, id))}
}

// userSelect is the user menu of the forum and donation forms.
type userSelect struct {
	Label, Selected string
	Users           []userView
}

func (h *homeView) UserSelect(form string) userSelect {
	label := "Author"
	if form == "donation" {
		label = "Donor"
	}
	return userSelect{Label: label, Selected: strings.TrimSpace(h.Value(form, "user_id")), Users: h.Users}
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	a.showHome(w, r, view{Flash: takeFlash(w, r)}, http.StatusOK)
}

// showHome renders the home page with status code.
func (a *App) showHome(w http.ResponseWriter, r *http.Request, v view, code int) {
	ctx := r.Context()
	v.Nav = "home"
	data := &homeView{view: v, kinds: a.kinds}
	rows, err := a.db.QueryContext(ctx, "SELECT id, name, picture, signature, qr_code, qr_created FROM users ORDER BY id")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for rows.Next() {
		var u userView
		var pic, sig, qr string
		var qrCreated int64
		if err := rows.Scan(&u.ID, &u.Name, &pic, &sig, &qr, &qrCreated); err != nil {
			rows.Close()
			a.fail(w, r, err)
			return
		}
		u.Picture, u.Signature, u.QR = a.file(pic), a.file(sig), a.file(qr)
		u.QRExpires = time.Unix(qrCreated, 0).Add(a.qrAge)
		data.Users = append(data.Users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	for _, q := range []struct {
		sql string
		dst *[]rowView
	}{
		{"SELECT m.id, m.user_id, coalesce(u.name, ''), m.body, m.image FROM forum_messages m LEFT JOIN users u ON u.id = m.user_id ORDER BY m.id", &data.Messages},
		{"SELECT d.id, d.user_id, coalesce(u.name, ''), d.amount, d.receipt FROM donations d LEFT JOIN users u ON u.id = d.user_id ORDER BY d.id", &data.Donations},
	} {
		if err := a.scanRows(ctx, q.sql, q.dst); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	a.render(w, r, homePage, code, data)
}

func (a *App) scanRows(ctx context.Context, q string, dst *[]rowView) error {
	rows, err := a.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x rowView
		var file string
		if err := rows.Scan(&x.ID, &x.UserID, &x.Author, &x.Text, &file); err != nil {
			return err
		}
		x.File = a.file(file)
		*dst = append(*dst, x)
	}
	return rows.Err()
}

// describe names a row for a message: the user's name, "message #3",
// "donation #2". A row that is not there is sql.ErrNoRows.
func (a *App) describe(ctx context.Context, table string, id int64) (string, error) {
	var name string
	var err error
	switch table {
	case "users":
		err = a.db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", id).Scan(&name)
	case "forum_messages":
		err = a.db.QueryRowContext(ctx, "SELECT 1 FROM forum_messages WHERE id = ?", id).Scan(new(int))
		name = fmt.Sprintf("message #%d", id)
	case "donations":
		err = a.db.QueryRowContext(ctx, "SELECT 1 FROM donations WHERE id = ?", id).Scan(new(int))
		name = fmt.Sprintf("donation #%d", id)
	}
	return name, err
}

// article puts "a" or "an" before a noun.
func article(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// sentence capitalises msg and ends it with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

// filesNote says what happened to the files a change replaced or a delete
// dropped, after the commit.
func filesNote(res filefield.Result) string {
	s := ""
	if n := len(res.Deleted); n > 0 {
		s = fmt.Sprintf("; %d old %s deleted after the commit", n, plural(n, "file", "files"))
	}
	if n := len(res.Failed); n > 0 {
		s += fmt.Sprintf("; %d %s could not be deleted (the orphan check will find %s)", n, plural(n, "file", "files"), plural(n, "it", "them"))
	}
	return s
}
