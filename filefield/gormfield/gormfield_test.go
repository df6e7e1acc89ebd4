package gormfield_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/libtnb/sqlite"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// The seed's models: a user with a picture and a QR code, and the user's
// forum messages with an image, soft-deleted.
type User struct {
	ID       uint
	Name     string `gorm:"uniqueIndex"`
	Picture  string
	QRCode   *string
	Messages []Message
}

type Message struct {
	ID        uint
	UserID    uint
	Image     string
	DeletedAt gorm.DeletedAt `gorm:"index"`
}

// Audit has a deferred foreign key, so that a commit itself can fail.
type Audit struct {
	ID     uint
	UserID uint
}

// gorm's prepared-statement cache (PrepareStmt) starts a goroutine that
// never ends ("done channel is never closed", gorm's internal/lru).
func TestMain(m *testing.M) {
	sqltest.Main(m, goleak.IgnoreAnyFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"))
}

// app is one test's database, storage, fields and plugin.
type app struct {
	db               *gorm.DB
	fsys             afero.Fs             // the real directory
	ffs              *storagetest.FaultFs // the fields' view of it
	pics, qr, images *filefield.Field
	plugin           *gormfield.Plugin
	events           []filefield.Event
}

type dbKind struct {
	name string
	open func(t *testing.T, cfg *gorm.Config) *gorm.DB
}

var databases = []dbKind{
	{"SQLite", func(t *testing.T, cfg *gorm.Config) *gorm.DB {
		db, err := gorm.Open(sqlite.Open("file:"+filepath.Join(t.TempDir(), "app.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"), cfg)
		require.NoError(t, err)
		sqlDB, _ := db.DB()
		sqlDB.SetMaxOpenConns(1)
		t.Cleanup(func() { sqlDB.Close() })
		return db
	}},
	{"PostgreSQL", func(t *testing.T, cfg *gorm.Config) *gorm.DB {
		sqlDB, _ := sqltest.Postgres(t).NewDatabase(t)
		db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), cfg)
		require.NoError(t, err)
		return db
	}},
}

// forEachDB runs fn on a fresh app on each database, on a real directory.
func forEachDB(t *testing.T, opts gormfield.Options, cfg gorm.Config, fn func(t *testing.T, a *app)) {
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			cfg := cfg
			cfg.Logger = logger.Discard
			a := newApp(t, k, opts, &cfg)
			fn(t, a)
		})
	}
}

func newApp(t *testing.T, k dbKind, opts gormfield.Options, cfg *gorm.Config) *app {
	t.Helper()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	a := &app{fsys: rfs, ffs: storagetest.NewSpyFs(rfs)}
	var mu sync.Mutex
	onEvent := func(e filefield.Event) {
		mu.Lock()
		a.events = append(a.events, e)
		mu.Unlock()
	}
	a.pics = filefield.New("pics", a.ffs, filefield.Options{Dir: "pics", OnEvent: onEvent})
	a.qr = filefield.New("qr", a.ffs, filefield.Options{Dir: "qr/{owner}", OnEvent: onEvent})
	a.images = filefield.New("images", a.ffs, filefield.Options{Dir: "images", OnEvent: onEvent})
	a.db = k.open(t, cfg)
	require.NoError(t, a.db.AutoMigrate(&User{}, &Message{}))
	deferred := "DEFERRABLE INITIALLY DEFERRED"
	require.NoError(t, a.db.Exec(`CREATE TABLE audits (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id) `+deferred+`)`).Error)
	a.plugin = gormfield.New(opts).
		Track(&User{}, "Picture", a.pics).
		Track(&User{}, "QRCode", a.qr).
		Track(&Message{}, "Image", a.images)
	require.NoError(t, a.db.Use(a.plugin))
	return a
}

func png(tag string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), []byte(tag)...)
}

func upload(tag string) filefield.Upload {
	return filefield.Upload{Body: bytes.NewReader(png(tag)), Name: tag + ".png", Owner: "7"}
}

func (a *app) files(t *testing.T) []string { return storagetest.Files(t, a.fsys) }

// user reads user id back.
func (a *app) user(t *testing.T, id uint) User {
	t.Helper()
	var u User
	require.NoError(t, a.db.First(&u, id).Error)
	return u
}

// newUser stores a picture and creates a user with it, as a handler
// would: no file code besides the upload.
func (a *app) newUser(t *testing.T, name string) User {
	t.Helper()
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload(name))
	require.NoError(t, err)
	u := User{Name: name, Picture: ch.New}
	require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
	return u
}

func noAbandoned(t *testing.T, a *app) {
	t.Helper()
	for _, e := range a.events {
		if !assert.NotEqual(t, filefield.ActionAbandon, e.Action, "%+v", e) {
			for _, e := range a.events {
				t.Logf("event %+v", e)
			}
		}
	}
}

// The seed's first scenario, with each way gorm writes a column: the
// handler stores the upload and saves the row; the old file goes after
// the commit, and nothing else is deleted.
func TestReplaceAPictureWithNoFileCode(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Save", "Update", "Updates map", "Updates struct", "Where Updates"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				u := a.newUser(t, "ada")
				other := a.newUser(t, "bob")
				ch, err := a.pics.Save(ctx, upload("new"))
				require.NoError(t, err)
				db := a.db.WithContext(ctx)
				switch how {
				case "Save":
					u.Picture = ch.New
					err = db.Save(&u).Error
				case "Update":
					err = db.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
				case "Updates map":
					err = db.Model(&u).Updates(map[string]any{"picture": ch.New, "name": "ada2"}).Error
				case "Updates struct":
					err = db.Model(&u).Updates(User{Picture: ch.New}).Error
				case "Where Updates":
					err = db.Model(&User{}).Where("name = ?", "ada").Update("picture", ch.New).Error
				}
				require.NoError(t, err)
				assert.Equal(t, ch.New, a.user(t, u.ID).Picture)
				assert.ElementsMatch(t, []string{ch.New, other.Picture}, a.files(t))
				t.Logf("u %s other %s new %s", u.Picture, other.Picture, ch.New)
				noAbandoned(t, a)
			})
		})
	}
}

// An update that does not touch a file column reads nothing and deletes
// nothing.
func TestUnrelatedUpdatesLeaveFilesAlone(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		require.NoError(t, a.db.Model(&u).Update("name", "ada2").Error)
		require.NoError(t, a.db.Model(&u).Updates(User{Name: "ada3"}).Error)
		assert.Equal(t, []string{u.Picture}, a.files(t))
	})
}

// The QR code, a nullable column: regenerated, then cleared.
func TestRegenerateAndClearAQRCode(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		var last string
		for i := range 3 {
			ch, err := a.qr.Save(ctx, upload(fmt.Sprint("qr", i)))
			require.NoError(t, err)
			require.NoError(t, a.db.WithContext(ctx).Model(&u).Update("qr_code", ch.New).Error)
			last = ch.New
		}
		assert.ElementsMatch(t, []string{u.Picture, last}, a.files(t))
		require.NoError(t, a.db.WithContext(ctx).Model(&u).Update("qr_code", nil).Error)
		assert.Equal(t, []string{u.Picture}, a.files(t))
	})
}

// Deleting a user and their messages: a soft delete keeps the files (the
// rows may come back), an unscoped bulk delete removes them, and a
// delete by primary key removes the user's.
func TestDeleteAUserAndTheirMessages(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		keep := a.newUser(t, "bob")
		var images []string
		for i := range 3 {
			for _, owner := range []User{u, keep} {
				ch, err := a.images.Save(ctx, upload(fmt.Sprint("img", i, owner.Name)))
				require.NoError(t, err)
				require.NoError(t, a.db.WithContext(ctx).Create(&Message{UserID: owner.ID, Image: ch.New}).Error)
				if owner.ID == u.ID {
					images = append(images, ch.New)
				}
			}
		}
		before := a.files(t)
		require.NoError(t, a.db.WithContext(ctx).Where("user_id = ?", u.ID).Delete(&Message{}).Error)
		assert.Equal(t, before, a.files(t), "a soft delete keeps the files")

		require.NoError(t, a.db.WithContext(ctx).Unscoped().Where("user_id = ?", u.ID).Delete(&Message{}).Error)
		for _, p := range images {
			assert.NotContains(t, a.files(t), p)
		}
		require.NoError(t, a.db.WithContext(ctx).Delete(&User{}, u.ID).Error)
		assert.NotContains(t, a.files(t), u.Picture)
		assert.Len(t, a.files(t), 4, "bob's picture and three images")
	})
}

// Roll back after an error, after a panic and after a failed commit: the
// new file goes, the old one and the row stay.
func TestTransactionRollsBackFiles(t *testing.T) {
	t.Parallel()
	errApp := errors.New("application error")
	for _, end := range []string{"error", "panic", "failed commit"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				u := a.newUser(t, "ada")
				run := func() (filefield.Result, error) {
					return gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
						ch, err := a.pics.Save(tx.Statement.Context, upload("new"))
						if err != nil {
							return err
						}
						if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
							return err
						}
						switch end {
						case "error":
							return errApp
						case "panic":
							panic("handler bug")
						}
						return tx.Create(&Audit{UserID: 999}).Error // fails at commit
					})
				}
				if end == "panic" {
					assert.PanicsWithValue(t, "handler bug", func() { _, _ = run() })
				} else {
					res, err := run()
					require.Error(t, err)
					assert.Len(t, res.Deleted, 1, "the new file")
				}
				assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
				assert.Equal(t, []string{u.Picture}, a.files(t))
			})
		})
	}
}

// A statement that fails on its own (here a create that breaks a unique
// index) leaves the upload it meant to write to the handler, which may
// retry with the same path: it stays, unheld and claimable, until the
// handler rolls it back.
func TestFailedStatementsLeaveUploadsToTheHandler(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(ctx, upload("dup"))
		require.NoError(t, err)
		err = a.db.WithContext(ctx).Create(&User{Name: "ada", Picture: ch.New}).Error
		require.Error(t, err, "the name is unique")
		assert.ElementsMatch(t, []string{u.Picture, ch.New}, a.files(t))
		require.False(t, ch.Held())
		res := ch.Rollback(ctx)
		assert.Equal(t, []string{ch.New}, res.Deleted)
		assert.Equal(t, []string{u.Picture}, a.files(t))
		noAbandoned(t, a)
	})
}

// Inside a transaction the plugin does not own and no scope covers, it
// refuses rather than guess; with LeaveUnscoped it lets the statement run
// and leaves every file alone.
func TestUnscopedTransactions(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) { t.Parallel(); unscopedRefused(t) })
	t.Run("left", func(t *testing.T) { t.Parallel(); unscopedLeft(t) })
}

func unscopedRefused(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(t.Context(), upload("new"))
		require.NoError(t, err)
		tx := a.db.Begin()
		err = tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		assert.ErrorIs(t, err, gormfield.ErrNoScope)
		require.NoError(t, tx.Rollback().Error)
		assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
		ch.Rollback(t.Context())
		assert.Equal(t, []string{u.Picture}, a.files(t))
	})
}

func unscopedLeft(t *testing.T) {
	forEachDB(t, gormfield.Options{LeaveUnscoped: true}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(t.Context(), upload("new"))
		require.NoError(t, err)
		tx := a.db.Begin()
		require.NoError(t, tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
		require.NoError(t, tx.Commit().Error)
		ch.Commit(t.Context())
		assert.ElementsMatch(t, []string{u.Picture, ch.New}, a.files(t), "the old file is left to the orphan finder")
	})
}

// A savepoint rolled back inside a transaction: with this package's
// nested Transaction its files roll back with it; with gorm's own nested
// transaction the plugin cannot see the rollback, and the check against
// the committed rows keeps the file the row still holds.
func TestSavepoints(t *testing.T) {
	t.Parallel()
	errInner := errors.New("inner")
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		var inner string
		_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			_, err := gormfield.Transaction(tx.Statement.Context, tx, func(tx *gorm.DB) error {
				ch, err := a.pics.Save(tx.Statement.Context, upload("inner"))
				if err != nil {
					return err
				}
				inner = ch.New
				if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
					return err
				}
				return errInner
			})
			assert.ErrorIs(t, err, errInner)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{u.Picture}, a.files(t), "the inner file is gone, the old one stays")
		assert.NotEmpty(t, inner)

		// gorm's own nested transaction.
		_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			err := tx.Transaction(func(tx *gorm.DB) error {
				ch, err := a.pics.Save(tx.Statement.Context, upload("gorm-inner"))
				if err != nil {
					return err
				}
				inner = ch.New
				if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
					return err
				}
				return errInner
			})
			assert.ErrorIs(t, err, errInner)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
		assert.Contains(t, a.files(t), u.Picture, "the row's file is kept: the check of committed rows finds it")
	})
}

// Without gorm's default transaction each statement commits by itself;
// the plugin finishes its files right after it.
func TestWithoutDefaultTransaction(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{SkipDefaultTransaction: true}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(ctx).Model(&u).Update("picture", ch.New).Error)
		assert.Equal(t, []string{ch.New}, a.files(t))
		require.NoError(t, a.db.WithContext(ctx).Delete(&u).Error)
		assert.Empty(t, a.files(t))
		noAbandoned(t, a)
	})
}

// An upsert overwrites paths: those it replaced go.
func TestUpsertDeletesWhatItOverwrote(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		users := []User{a.newUser(t, "ada"), a.newUser(t, "bob")}
		olds := []string{users[0].Picture, users[1].Picture}
		for i := range users {
			ch, err := a.pics.Save(ctx, upload(fmt.Sprint("up", i)))
			require.NoError(t, err)
			users[i].Picture = ch.New
		}
		require.NoError(t, a.db.WithContext(ctx).Save(&users).Error)
		got := a.files(t)
		assert.Len(t, got, 2)
		for _, o := range olds {
			assert.NotContains(t, got, o)
		}
	})
}

// The same path in two rows: the deletion of one row keeps the file the
// other still holds.
func TestAPathTwoRowsHoldIsKept(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		require.NoError(t, a.db.Create(&User{Name: "copy", Picture: u.Picture}).Error)
		require.NoError(t, a.db.Delete(&u).Error)
		assert.Equal(t, []string{u.Picture}, a.files(t))
	})
}

// Faults at every storage operation of a replace, the upload and the
// deletion after the commit: whatever fails, the file the row points at
// exists, and no file but the stale one or the new one is ever missing.
func TestReplaceUnderStorageFaults(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
				u := a.newUser(t, "ada")
				other := a.newUser(t, "bob")
				a.ffs.Reset(storagetest.Fault{N: n})
				res, err := gormfield.Transaction(t.Context(), a.db, func(tx *gorm.DB) error {
					ch, err := a.pics.Save(tx.Statement.Context, upload("new"))
					if err != nil {
						return err
					}
					return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
				})
				row := a.user(t, u.ID).Picture
				have := a.files(t)
				assert.Contains(t, have, row, "n=%d: the row's file exists (err %v, %+v)", n, err, res)
				assert.Contains(t, have, other.Picture, "n=%d", n)
				for _, p := range have {
					assert.Contains(t, []string{row, u.Picture, other.Picture}, p, "n=%d: a file no row holds but the stale one", n)
				}
				if a.ffs.Fired() == 0 {
					assert.NoError(t, err)
					assert.Len(t, have, 2, "no fault: the stale file went")
					break
				}
				require.Less(t, n, 100, "the fault never stopped firing")
			}
		})
	}
}

func TestTrackRefusesBadDeclarations(t *testing.T) {
	t.Parallel()
	cfg := &gorm.Config{Logger: logger.Discard}
	db := databases[0].open(t, cfg)
	pics := filefield.New("pics", afero.NewMemMapFs(), filefield.Options{Dir: "pics"})
	type NoKey struct{ Picture string }
	for _, tc := range []struct {
		model  any
		column string
	}{{&User{}, "Nope"}, {&NoKey{}, "Picture"}, {&User{}, "ID"}} {
		p := gormfield.New(gormfield.Options{}).Track(tc.model, tc.column, pics)
		assert.Error(t, db.Session(&gorm.Session{NewDB: true}).Use(p), "%T.%s", tc.model, tc.column)
	}
	p := gormfield.New(gormfield.Options{}).Track(&User{}, "Picture", pics)
	require.NoError(t, db.Use(p))
	assert.Panics(t, func() { p.Track(&User{}, "Picture", pics) }, "tracked twice")
}

// Transaction on a db that is not in a transaction begins one of its own:
// a scope the caller has open does not own its files, so the row it
// committed keeps its new file when that outer scope rolls back.
func TestTransactionInsideAScopeIsIndependent(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		ctx, outer := filefield.NewScope(t.Context())
		var second string
		_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			ch, err := a.pics.Save(tx.Statement.Context, upload("second"))
			if err != nil {
				return err
			}
			second = ch.New
			return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		})
		require.NoError(t, err)
		assert.Equal(t, []string{second}, a.files(t), "its own commit deleted the old file")
		outer.Rollback(ctx)
		assert.Equal(t, second, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{second}, a.files(t), "the committed row's file stays")
	})
}
