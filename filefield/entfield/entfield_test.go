package entfield_test

import (
	"bytes"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/message"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/migrate"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/user"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

// app is one test's database, ent client, storage, fields and tracker:
// the seed's app, with a user's picture and QR code and the images of
// their forum messages.
type app struct {
	db               *sql.DB
	drv              dialect.Driver
	client           *entdemo.Client
	fsys             afero.Fs             // the real directory
	ffs              *storagetest.FaultFs // the fields' view of it
	pics, qr, images *filefield.Field
	files            *entfield.Tracker

	mu     sync.Mutex
	events []filefield.Event
}

// migrating serializes the tests' migrations: ent's writes to the
// generated migrate.Tables as it runs.
var migrating sync.Mutex

type dbKind struct {
	name    string
	dialect string
	open    func(t *testing.T) *sql.DB
}

var databases = []dbKind{
	{"SQLite", dialect.SQLite, func(t *testing.T) *sql.DB {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "app.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)")
		require.NoError(t, err)
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}},
	{"PostgreSQL", dialect.Postgres, func(t *testing.T) *sql.DB {
		db, _ := sqltest.Postgres(t).NewDatabase(t)
		return db
	}},
}

// forEachDB runs fn on a fresh app on each database, on a real directory.
func forEachDB(t *testing.T, opts entfield.Options, fn func(t *testing.T, a *app)) {
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newApp(t, k, k.open(t), opts))
		})
	}
}

func newApp(t *testing.T, k dbKind, db *sql.DB, opts entfield.Options) *app {
	t.Helper()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	a := &app{db: db, fsys: rfs, ffs: storagetest.NewSpyFs(rfs)}
	onEvent := func(e filefield.Event) {
		a.mu.Lock()
		a.events = append(a.events, e)
		a.mu.Unlock()
	}
	a.pics = filefield.New("pics", a.ffs, filefield.Options{Dir: "pics", OnEvent: onEvent})
	a.qr = filefield.New("qr", a.ffs, filefield.Options{Dir: "qr/{owner}", OnEvent: onEvent})
	a.images = filefield.New("images", a.ffs, filefield.Options{Dir: "images", OnEvent: onEvent})
	drv := entsql.OpenDB(k.dialect, db)
	a.drv = drv
	a.client = entdemo.NewClient(entdemo.Driver(drv))
	migrating.Lock() // ent's migration writes the generated tables' descriptions
	err = a.client.Schema.Create(t.Context())
	migrating.Unlock()
	require.NoError(t, err)
	// A deferred foreign key, so that a commit itself can fail.
	_, err = db.ExecContext(t.Context(), `CREATE TABLE audits (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED)`)
	require.NoError(t, err)
	a.files = entfield.New(drv, opts)
	a.client.User.Use(
		a.files.Track(a.pics, migrate.UsersTable, user.FieldPicture),
		a.files.Track(a.qr, migrate.UsersTable, user.FieldQrCode),
	)
	a.client.Message.Use(a.files.Track(a.images, migrate.MessagesTable, message.FieldImage))
	return a
}

func png(tag string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), []byte(tag)...)
}

func upload(tag string) filefield.Upload {
	return filefield.Upload{Body: bytes.NewReader(png(tag)), Name: tag + ".png", Owner: "7"}
}

func (a *app) stored(t *testing.T) []string { return storagetest.Files(t, a.fsys) }

// user reads user id back.
func (a *app) user(t *testing.T, id int) *entdemo.User {
	t.Helper()
	u, err := a.client.User.Get(t.Context(), id)
	require.NoError(t, err)
	return u
}

// newUser stores a picture and creates a user with it, as a handler
// would: no file code besides the upload.
func (a *app) newUser(t *testing.T, name string) *entdemo.User {
	t.Helper()
	ch, err := a.pics.Save(t.Context(), upload(name))
	require.NoError(t, err)
	u, err := a.client.User.Create().SetName(name).SetPicture(ch.New).Save(t.Context())
	require.NoError(t, err)
	return u
}

// newPicture stores an upload for the picture field.
func (a *app) newPicture(t *testing.T, tag string) string {
	t.Helper()
	ch, err := a.pics.Save(t.Context(), upload(tag))
	require.NoError(t, err)
	return ch.New
}

func noAbandoned(t *testing.T, a *app) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.events {
		assert.NotEqual(t, filefield.ActionAbandon, e.Action, "%+v", e)
	}
}
