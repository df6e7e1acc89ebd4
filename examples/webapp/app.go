package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/skip2/go-qrcode"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/sweep"
)

// kind is one file column: the field that keeps its files and the row
// column that holds the stored path.
type kind struct {
	name    string // URL name
	label   string
	noun    string // in a sentence
	table   string
	column  string
	field   *filefield.Field
	maxSize int64 // the field's MaxSize
}

// App is the seed's application: users with a profile picture, an
// e-signature and an attendance QR code, forum messages with an image, and
// donations with a receipt.
type App struct {
	db     *sql.DB
	fs     afero.Fs
	log    *slog.Logger
	kinds  map[string]*kind
	qr     *filefield.Field
	qrAge  time.Duration
	sweep  *sweep.Sweeper
	finder func(opts orphan.Options) *orphan.Finder

	sweepMetrics sweepMetrics

	mu          sync.Mutex
	sweepEvery  time.Duration // set by RunSweeper
	lastSweep   *sweep.Report
	lastExpired int // rows whose QR code the last sweep expired
	sweepErr    error
	lastApplyAt time.Time
	lastPlan    *shownPlan // the last dry run, until it is applied
	planSeq     uint64     // the number of the last dry run
	lastApply   *orphan.Report
}

// NewApp creates the schema and the fields. qrAge is how old a QR code may
// get before the in-process sweeper deletes it.
func NewApp(ctx context.Context, db *sql.DB, fsys afero.Fs, log *slog.Logger, qrAge time.Duration) (*App, error) {
	if _, err := db.ExecContext(ctx, appdb.Schema+usageSchema); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	// Databases made before QR codes expired through their rows.
	if _, err := db.ExecContext(ctx, `ALTER TABLE users ADD COLUMN qr_created INTEGER NOT NULL DEFAULT 0`); err != nil && !strings.Contains(err.Error(), "duplicate column") {
		return nil, fmt.Errorf("schema: %w", err)
	}
	a := &App{db: db, fs: fsys, log: log, kinds: map[string]*kind{}, qrAge: qrAge, sweepMetrics: newSweepMetrics()}
	images := inlineTypes
	field := func(name, dir string, types []string) *filefield.Field {
		return filefield.New(name, fsys, filefield.Options{Dir: dir, AllowedTypes: types, MaxSize: maxUpload, Logger: log})
	}
	for _, k := range []*kind{
		{name: "picture", label: "Profile picture", noun: "profile picture", table: "users", column: "picture", field: field("profile_pics", "profile_pics", images)},
		{name: "signature", label: "E-signature", noun: "e-signature", table: "users", column: "signature", field: field("e_signatures", "e_signatures", images)},
		{name: "image", label: "Forum image", noun: "image", table: "forum_messages", column: "image", field: field("forum_images", "forum_images/{yyyy}/{mm}", images)},
		{name: "receipt", label: "Donation receipt", noun: "receipt", table: "donations", column: "receipt", field: field("donation_receipts", "donation_receipts", append(images, "application/pdf"))},
	} {
		k.maxSize = maxUpload
		a.kinds[k.name] = k
	}
	a.qr = field("qr_codes", "qr_codes/{owner}", []string{"image/png"})
	// QR codes expire through their rows (expireQR); the sweeper removes
	// what is left over, and never a code a row still shows.
	a.sweep = sweep.New(fsys, sweep.Options{
		Rules:  []sweep.Rule{{Name: "qr_codes", Glob: "qr_codes/**", MaxAge: qrAge}},
		Logger: log,
		Refs: filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
			var n int
			err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE qr_code = ?`, p).Scan(&n)
			return n > 0, err
		}),
	})
	// Every file column: a missing query would make its files look
	// unreferenced (the coverage guard refuses such a plan). The queries
	// are the app's own, tested against its schema, and a new site has
	// empty tables (no forum message yet): AllowEmpty.
	//
	// The uploads whose rows have not committed come first: read before
	// the rows, every upload is in one or the other, so a cleanup with
	// no grace period ("0" on the admin page) keeps an upload that waits
	// for a busy database.
	pending := orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		fields := []*filefield.Field{a.qr}
		for _, k := range a.kinds {
			fields = append(fields, k.field)
		}
		for _, f := range fields {
			if err := f.PendingPaths(ctx, fn); err != nil {
				return err
			}
		}
		return nil
	})
	refs := orphan.Combine(pending, sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, appdb.RefQueries()...))
	a.finder = func(opts orphan.Options) *orphan.Finder {
		opts.Logger = log
		// The sweeper manages qr_codes/: its files may have no row.
		opts.Unreferenced = append(opts.Unreferenced, "qr_codes/**")
		return orphan.New(fsys, refs, opts)
	}
	return a, nil
}

// Routes returns the application's handler.
func (a *App) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /users", a.createUser)
	mux.HandleFunc("POST /forum", a.createMessage)
	mux.HandleFunc("POST /donations", a.createDonation)
	mux.HandleFunc("POST /files/{kind}/{id}", a.replaceFile)
	mux.HandleFunc("POST /qr/{id}", a.textForm(a.generateQR))
	mux.HandleFunc("POST /delete/{table}/{id}", a.textForm(a.deleteRow))
	mux.HandleFunc("GET /admin", a.admin)
	mux.HandleFunc("POST /admin/orphans", a.textForm(a.orphans))
	mux.HandleFunc("POST /admin/sweep", a.textForm(a.sweepNow))
	mux.HandleFunc("GET /media/{path...}", a.media)
	mux.HandleFunc("GET /static/{name}", static)
	mux.Handle("GET /metrics", a.metricsHandler())
	return mux
}

// textForm bounds the body of a form with no file to maxTextForm.
func (a *App) textForm(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := limitBody(w, r, maxTextForm); err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// media serves stored files: valid stored paths of regular files only, so
// no directory listings, dot-files or temp files.
func (a *App) media(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("path")
	if storage.ValidPath(p) != nil {
		http.NotFound(w, r)
		return
	}
	f, err := a.fs.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	// An upload must not run in the app's origin: a PDF with JavaScript,
	// an HTML or SVG file. The type comes from the stored name (whose
	// extension filefield chose from the sniffed content) and is never
	// sniffed by the browser; the file is sandboxed; and anything but an
	// image the app shows inline is a download.
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", mediaPolicy)
	ext := strings.ToLower(path.Ext(fi.Name()))
	if ctype, ok := inlineExts[ext]; ok {
		h.Set("Content-Type", ctype)
	} else {
		ctype := downloadExts[ext]
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		h.Set("Content-Type", ctype)
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fi.Name()}))
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// inlineTypes are the image types the app accepts for pictures,
// signatures and forum images, and shows inline; inlineExts their
// extensions. Anything else under /media/ downloads: downloadExts are
// the types of those that the app stores (receipts).
var (
	inlineTypes  = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}
	inlineExts   = map[string]string{".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif", ".webp": "image/webp"}
	downloadExts = map[string]string{".pdf": "application/pdf"}
)

// mediaPolicy sandboxes what /media/ serves: no scripts, no plugins, no
// loads, no framing, an origin of its own.
const mediaPolicy = "default-src 'none'; sandbox; frame-ancestors 'none'"

// RunSweeper expires and sweeps QR codes now and every interval until
// ctx ends.
func (a *App) RunSweeper(ctx context.Context, every time.Duration) {
	a.mu.Lock()
	a.sweepEvery = every
	a.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		a.sweepQR(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepQR expires QR codes older than qrAge through their rows, so that
// no page shows a code whose file is gone, then sweeps the QR folder for
// leftovers (files no row references any more: a crash between a commit
// and its file change, say). Then it records storage usage. It returns
// how many rows' codes expired and the sweep's report.
func (a *App) sweepQR(ctx context.Context) (int, *sweep.Report, error) {
	expired, err := a.expireQR(ctx)
	rep, serr := a.sweep.Sweep(ctx)
	err = errors.Join(err, serr)
	m := a.sweepMetrics
	if err == nil {
		m.runs.WithLabelValues("ok").Inc()
		m.last.SetToCurrentTime()
	} else {
		m.runs.WithLabelValues("error").Inc()
	}
	if rep != nil {
		m.deleted.WithLabelValues("files").Add(float64(rep.Deleted.Files))
		m.deleted.WithLabelValues("bytes").Add(float64(rep.Deleted.Bytes))
	}
	err = errors.Join(err, a.recordUsage(ctx, time.Now()))
	a.mu.Lock()
	a.lastSweep, a.lastExpired, a.sweepErr = rep, expired, err
	a.mu.Unlock()
	return expired, rep, err
}

// expireQR clears, in one transaction, the QR codes of users whose code is
// older than qrAge; their files are deleted after the commit. It returns
// how many it cleared.
func (a *App) expireQR(ctx context.Context) (int, error) {
	n := 0
	_, err := filefield.WithTx(ctx, a.db, nil, func(ctx context.Context, tx *sql.Tx) error {
		cutoff := time.Now().Add(-a.qrAge).Unix()
		rows, err := tx.QueryContext(ctx, `SELECT id, qr_code FROM users WHERE qr_code != '' AND qr_created < ?`, cutoff)
		if err != nil {
			return err
		}
		type expired struct {
			id   int64
			path string
		}
		var all []expired
		for rows.Next() {
			var e expired
			if err := rows.Scan(&e.id, &e.path); err != nil {
				rows.Close()
				return err
			}
			all = append(all, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range all {
			if _, err := a.qr.Delete(ctx, e.path); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE users SET qr_code = '', qr_created = 0 WHERE id = ? AND qr_code = ?`, e.id, e.path)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err == nil {
				n += int(k)
			}
		}
		return nil
	})
	if err != nil {
		n = 0 // rolled back
	}
	return n, err
}

// fail answers a failed request with the status errStatus gives err and
// a message for the user: the status text, and for a rejection what is
// wrong with the request. The error itself, which may hold SQL errors,
// stored paths or temp file names, goes to the log only.
//
// A browser gets the message on a page of the app's own (with a link back
// home), anything else as plain text.
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := errStatus(err)
	a.logFail(r, code, err)
	msg := publicMessage(err, code)
	if !wantsHTML(r) {
		errorPage(w, code, msg)
		return
	}
	w.Header().Del("Content-Disposition")
	a.render(w, r, errorHTML, code, struct {
		view
		Status, Msg string
	}{view{}, http.StatusText(code), sentence(msg)})
}

// logFail logs a failed request: a server-side failure as an error, a
// refused request as a warning.
func (a *App) logFail(r *http.Request, code int, err error) {
	level := slog.LevelWarn
	if code >= 500 {
		level = slog.LevelError
	}
	a.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "status", code, "error", err)
}

// errorPage writes a plain-text error page: the status text and msg.
func errorPage(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Del("Content-Disposition")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if r, n := utf8.DecodeRuneInString(msg); n > 0 {
		msg = string(unicode.ToUpper(r)) + msg[n:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	fmt.Fprintf(w, "%s\n\n%s\n", http.StatusText(code), msg)
}

// publicMessage says what went wrong in words fit for the user; for a
// failure on the server's side, only that it was one.
func publicMessage(err error, code int) string {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.msg
	case code >= 500:
		return "Something went wrong on the server. The details are in its log."
	case errors.Is(err, filefield.ErrTooLarge):
		return fmt.Sprintf("The file is too large (the limit is %s).", humanize.IBytes(maxUpload))
	case errors.Is(err, filefield.ErrTypeNotAllowed), errors.Is(err, filefield.ErrExtensionNotAllowed):
		return "This type of file is not allowed here."
	case errors.Is(err, filefield.ErrEmpty):
		return "The file is empty."
	case errors.Is(err, http.ErrMissingFile):
		return "The form has no file."
	case code == http.StatusNotFound:
		return "There is no such record."
	case code == http.StatusRequestTimeout:
		return "The request took too long to send."
	}
	return "The request could not be handled."
}

// errStatus maps an error to an HTTP status: an httpError's own, a
// filefield rejection's, 404 for a missing row, else 500 (an unsafe path
// read back from a row, too: the fault is the database's, not the
// request's).
func errStatus(err error) int {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, filefield.ErrTooLarge), errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, filefield.ErrTypeNotAllowed), errors.Is(err, filefield.ErrExtensionNotAllowed):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, filefield.ErrEmpty), errors.Is(err, http.ErrMissingFile):
		return http.StatusBadRequest
	case errors.Is(err, sql.ErrNoRows):
		return http.StatusNotFound
	case isTimeout(err):
		return http.StatusRequestTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest // the body was cut short
	}
	return http.StatusInternalServerError
}

// isTimeout reports a read deadline that passed: the body took longer
// than the server's body timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pathID is the row id in the path: a positive integer.
func pathID(r *http.Request) (int64, error) {
	return positiveID(r.PathValue("id"))
}

// replaceFile uploads a new file for one row's column, replacing the old
// one. The file is read and stored first, with no transaction open (a
// slow or stalled upload holds no database handle); then one short
// transaction points the row at it, and only if that commits is the file
// the row held until then deleted. If it does not, the new file is.
func (a *App) replaceFile(w http.ResponseWriter, r *http.Request) {
	k, ok := a.kinds[r.PathValue("kind")]
	id, err := pathID(r)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	form := fmt.Sprintf("%s-%d", k.name, id)
	if err := limitBody(w, r, k.maxSize+formAllowance); err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	// A short query first: no file is read for a row that is not there.
	owner, err := a.describe(ctx, k.table, id)
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	var ch *filefield.Change
	defer func() {
		if ch != nil {
			ch.Rollback(ctx) // nothing after the commit
		}
	}()
	_, err = readForm(r, func(_ url.Values, p *multipart.Part) error {
		var err error
		ch, err = k.field.Save(ctx, filefield.Upload{Body: p, Name: p.FileName(), Owner: strconv.FormatInt(id, 10)})
		return err
	})
	if err == nil && ch == nil {
		err = userErr(http.StatusBadRequest, "the form has no file")
	}
	var res filefield.Result
	if err == nil {
		res, err = a.setFile(ctx, k.field, k.table, k.column, id, ch, "")
	}
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	done(w, r, "/", fmt.Sprintf("Stored the new %s of %s (%s)%s.", k.noun, owner, human(ch.Size), filesNote(res)))
}

// setFile points the row's column at the stored file of ch, in one
// transaction, along with the extra assignments set (", qr_created = ?"
// and its arguments). The path the row holds then (another request may
// have replaced it since it was read) is deleted after the commit; if the
// transaction fails, ch goes back to the caller, whose deferred Rollback
// deletes its file.
func (a *App) setFile(ctx context.Context, f *filefield.Field, table, column string, id int64, ch *filefield.Change, set string, args ...any) (filefield.Result, error) {
	return filefield.WithTx(ctx, a.db, nil, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
			return err
		}
		var cur string
		if err := tx.QueryRowContext(ctx, "SELECT "+column+" FROM "+table+" WHERE id = ?", id).Scan(&cur); err != nil {
			return err // sql.ErrNoRows: the row was deleted meanwhile
		}
		if cur != "" {
			if _, err := f.Delete(ctx, cur); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "UPDATE "+table+" SET "+column+" = ?"+set+" WHERE id = ?", append(append([]any{ch.New}, args...), id)...)
		return err
	})
}

// generateQR makes the user's attendance QR code, replacing the previous
// one: each user keeps one (the seed's QR case).
func (a *App) generateQR(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	form := fmt.Sprintf("qr-%d", id)
	name, err := a.describe(ctx, "users", id)
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	png, err := qrcode.Encode(fmt.Sprintf("attendance:user:%d:%d", id, time.Now().UnixNano()), qrcode.Medium, 256)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var res filefield.Result
	ch, err := a.qr.Save(ctx, filefield.Upload{Body: bytesReader(png), Name: "qr.png", Owner: strconv.FormatInt(id, 10)})
	if err == nil {
		defer ch.Rollback(ctx) // nothing after the commit
		res, err = a.setFile(ctx, a.qr, "users", "qr_code", id, ch, ", qr_created = ?", time.Now().Unix())
	}
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	done(w, r, "/", fmt.Sprintf("Generated a QR code for %s%s.", name, filesNote(res)))
}

// deleteRow deletes a row and, after the commit, its files. Deleting a
// user deletes their messages and donations too.
func (a *App) deleteRow(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	table := r.PathValue("table")
	if err != nil || (table != "users" && table != "forum_messages" && table != "donations") {
		http.NotFound(w, r)
		return
	}
	ctx := r.Context()
	form := fmt.Sprintf("delete-%s-%d", table, id)
	what, err := a.describe(ctx, table, id)
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	res, err := filefield.WithTx(ctx, a.db, nil, func(ctx context.Context, tx *sql.Tx) error {
		// Every file column of the rows that go, with the field that owns it.
		type col struct {
			query string
			field *filefield.Field
		}
		var cols []col
		switch table {
		case "users":
			cols = []col{
				{"SELECT picture FROM users WHERE id = ?", a.kinds["picture"].field},
				{"SELECT signature FROM users WHERE id = ?", a.kinds["signature"].field},
				{"SELECT qr_code FROM users WHERE id = ?", a.qr},
				{"SELECT image FROM forum_messages WHERE user_id = ?", a.kinds["image"].field},
				{"SELECT receipt FROM donations WHERE user_id = ?", a.kinds["receipt"].field},
			}
		case "forum_messages":
			cols = []col{{"SELECT image FROM forum_messages WHERE id = ?", a.kinds["image"].field}}
		case "donations":
			cols = []col{{"SELECT receipt FROM donations WHERE id = ?", a.kinds["receipt"].field}}
		}
		for _, c := range cols {
			paths, err := queryStrings(ctx, tx, c.query, id)
			if err != nil {
				return err
			}
			for _, p := range paths {
				if _, err := c.field.Delete(ctx, p); err != nil {
					return err
				}
			}
		}
		stmts := []string{"DELETE FROM " + table + " WHERE id = ?"}
		if table == "users" {
			stmts = append(stmts, "DELETE FROM forum_messages WHERE user_id = ?", "DELETE FROM donations WHERE user_id = ?")
		}
		for i, s := range stmts {
			out, err := tx.ExecContext(ctx, s, id)
			if err != nil {
				return err
			}
			if i == 0 {
				// A second submit that waited for the first one's
				// transaction finds the row gone: it deleted nothing.
				if n, err := out.RowsAffected(); err != nil || n == 0 {
					return cmp.Or(err, sql.ErrNoRows)
				}
			}
		}
		return nil
	})
	if err != nil {
		a.formFail(w, r, form, nil, err)
		return
	}
	n := len(res.Deleted)
	msg := fmt.Sprintf("Deleted %s and %d %s, after the commit", what, n, plural(n, "file", "files"))
	if table == "users" {
		msg = fmt.Sprintf("Deleted %s, their messages and donations, and %d %s, after the commit", what, n, plural(n, "file", "files"))
	}
	if f := len(res.Failed); f > 0 {
		msg += fmt.Sprintf("; %d %s could not be deleted (the orphan check will find %s)", f, plural(f, "file", "files"), plural(f, "it", "them"))
	}
	done(w, r, "/", msg+".")
}

func queryStrings(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out, rows.Err()
}
