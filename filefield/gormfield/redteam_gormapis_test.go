package gormfield_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// From a red-team pass over gorm's other write APIs at 369f55e: FirstOrCreate,
// FullSaveAssociations, many2many, upserts, map and struct updates,
// PrepareStmt and SkipDefaultTransaction, on SQLite and PostgreSQL. The
// TestRTGormAPI... test failed then; the TestGormAPI... probes held.

// gormAPIConfigs: the default, a PrepareStmt session, no default
// transaction.
var gormAPIConfigs = []struct {
	name string
	cfg  gorm.Config
}{
	{"Default", gorm.Config{}},
	{"PrepareStmt", gorm.Config{PrepareStmt: true}},
	{"SkipDefaultTx", gorm.Config{SkipDefaultTransaction: true}},
	{"PrepareStmtSkipDefaultTx", gorm.Config{PrepareStmt: true, SkipDefaultTransaction: true}},
}

func eachGormAPIConfig(t *testing.T, fn func(t *testing.T, a *app)) {
	t.Parallel()
	for _, c := range gormAPIConfigs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, gormfield.Options{}, c.cfg, fn)
		})
	}
}

// Sticker is a many2many target with a tracked icon; Wall holds stickers.
type Sticker struct {
	ID   uint
	Icon string
}

type Wall struct {
	ID       uint
	Name     string
	Stickers []Sticker `gorm:"many2many:wall_stickers"`
}

func stickerApp(t *testing.T, a *app) {
	t.Helper()
	require.NoError(t, a.db.AutoMigrate(&Sticker{}, &Wall{}))
	a.plugin.Track(&Sticker{}, "Icon", a.images)
}

func (a *app) image(t *testing.T, tag string) string {
	t.Helper()
	ch, err := a.images.Save(t.Context(), upload(tag))
	require.NoError(t, err)
	return ch.New
}

func (a *app) pic(t *testing.T, tag string) string {
	t.Helper()
	ch, err := a.pics.Save(t.Context(), upload(tag))
	require.NoError(t, err)
	return ch.New
}

func TestGormAPIFirstOrCreateAssignReplaces(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		nw := a.pic(t, "new")
		var got User
		require.NoError(t, a.db.WithContext(t.Context()).Where(User{Name: "ada"}).Assign(User{Picture: nw}).FirstOrCreate(&got).Error)
		assert.Equal(t, nw, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{nw}, a.files(t))
		// Not found: created, its upload claimed.
		nw2 := a.pic(t, "new2")
		var bob User
		require.NoError(t, a.db.WithContext(t.Context()).Where(User{Name: "bob"}).Attrs(User{Picture: nw2}).FirstOrCreate(&bob).Error)
		assert.Equal(t, nw2, a.user(t, bob.ID).Picture)
		assert.ElementsMatch(t, []string{nw, nw2}, a.files(t))
		noAbandoned(t, a)
	})
}

func TestGormAPIFirstOrInitThenSave(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		nw := a.pic(t, "new")
		var got User
		require.NoError(t, a.db.Where(User{Name: "ada"}).Assign(User{Picture: nw}).FirstOrInit(&got).Error)
		require.NoError(t, a.db.WithContext(t.Context()).Save(&got).Error)
		assert.Equal(t, nw, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{nw}, a.files(t))
		noAbandoned(t, a)
	})
}

// Save with FullSaveAssociations updates a tracked child: its old image
// goes after the commit, the new one is claimed, the siblings stay.
func TestGormAPIFullSaveAssociationsUpdatesChildren(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := User{Name: "ada", Picture: a.pic(t, "p"), Messages: []Message{{Image: a.image(t, "m1")}, {Image: a.image(t, "m2")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
		old := u.Messages[0].Image
		u.Messages[0].Image = a.image(t, "m1new")
		require.NoError(t, a.db.WithContext(ctx).Session(&gorm.Session{FullSaveAssociations: true}).Save(&u).Error)
		var m Message
		require.NoError(t, a.db.First(&m, u.Messages[0].ID).Error)
		assert.Equal(t, u.Messages[0].Image, m.Image)
		assert.ElementsMatch(t, []string{u.Picture, u.Messages[0].Image, u.Messages[1].Image}, a.files(t))
		assert.NotContains(t, a.files(t), old)
		noAbandoned(t, a)
	})
}

// Same inside a Transaction whose scope holds the new upload, rolled back:
// the old image stays, the new one goes.
func TestGormAPIFullSaveAssociationsInRolledBackTransaction(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := User{Name: "ada", Picture: a.pic(t, "p"), Messages: []Message{{Image: a.image(t, "m1")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
		old := u.Messages[0].Image
		_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			ch, err := a.images.Save(tx.Statement.Context, upload("m1new"))
			require.NoError(t, err)
			u.Messages[0].Image = ch.New
			require.NoError(t, tx.Session(&gorm.Session{FullSaveAssociations: true}).Save(&u).Error)
			return fmt.Errorf("give up")
		})
		require.Error(t, err)
		var m Message
		require.NoError(t, a.db.First(&m, u.Messages[0].ID).Error)
		assert.Equal(t, old, m.Image)
		assert.ElementsMatch(t, []string{u.Picture, old}, a.files(t))
	})
}

// An upsert by primary key overwriting the tracked column.
func TestGormAPIUpsertByPrimaryKey(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		nw := a.pic(t, "new")
		require.NoError(t, a.db.WithContext(t.Context()).Clauses(clause.OnConflict{UpdateAll: true}).Create(&User{ID: u.ID, Name: "ada", Picture: nw}).Error)
		assert.Equal(t, nw, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{nw}, a.files(t))
		noAbandoned(t, a)
	})
}

// The same upsert with the upload in a caller's scope that then rolls
// back: the row committed the new path, so the file must stay.
func TestGormAPIUpsertOnUniqueColumnCallerRollbackKeepsRowFile(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		a.newUser(t, "ada")
		sctx, s := filefield.NewScope(t.Context())
		ch, err := a.pics.Save(sctx, upload("new"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(sctx).Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "name"}}, UpdateAll: true,
		}).Create(&User{ID: 0, Name: "ada", Picture: ch.New}).Error)
		s.Rollback(t.Context())
		var got User
		require.NoError(t, a.db.Where("name = ?", "ada").First(&got).Error)
		assert.Equal(t, ch.New, got.Picture)
		assert.Contains(t, a.files(t), ch.New, "a committed row's file was deleted")
	})
}

// An update of several rows through Where.
func TestGormAPIWhereUpdateSeveralRows(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ada, bob, cy := a.newUser(t, "ada"), a.newUser(t, "bob"), a.newUser(t, "cy")
		nw := a.pic(t, "new")
		res := a.db.WithContext(t.Context()).Model(&User{}).Where("name IN ?", []string{"ada", "bob"}).Update("picture", nw)
		require.NoError(t, res.Error)
		assert.EqualValues(t, 2, res.RowsAffected)
		assert.Equal(t, nw, a.user(t, ada.ID).Picture)
		assert.Equal(t, nw, a.user(t, bob.ID).Picture)
		assert.ElementsMatch(t, []string{nw, cy.Picture}, a.files(t))
		noAbandoned(t, a)
	})
}

func TestGormAPIUpdatesMapAndStruct(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		n1 := a.pic(t, "n1")
		require.NoError(t, a.db.WithContext(t.Context()).Model(&u).Updates(map[string]any{"Picture": n1}).Error)
		assert.Equal(t, []string{n1}, a.files(t))
		n2 := a.pic(t, "n2")
		require.NoError(t, a.db.WithContext(t.Context()).Model(&User{}).Where("id = ?", u.ID).Updates(&User{Picture: n2}).Error)
		assert.Equal(t, []string{n2}, a.files(t))
		// An update of other columns only, by map: no read, no change.
		require.NoError(t, a.db.WithContext(t.Context()).Model(&u).Updates(map[string]any{"name": "ada2"}).Error)
		assert.Equal(t, []string{n2}, a.files(t))
		noAbandoned(t, a)
	})
}

// many2many: creating a wall with new stickers claims their icons;
// Replace and Delete drop join rows only, so every icon stays.
func TestGormAPIManyToManyReplaceAndDelete(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		stickerApp(t, a)
		ctx := t.Context()
		w := Wall{Name: "w", Stickers: []Sticker{{Icon: a.image(t, "s1")}, {Icon: a.image(t, "s2")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&w).Error)
		icons := []string{w.Stickers[0].Icon, w.Stickers[1].Icon}
		s3 := Sticker{Icon: a.image(t, "s3")}
		require.NoError(t, a.db.WithContext(ctx).Model(&w).Association("Stickers").Replace(&s3))
		require.NoError(t, a.db.WithContext(ctx).Model(&w).Association("Stickers").Delete(&s3))
		assert.ElementsMatch(t, append(icons, s3.Icon), a.files(t))
		noAbandoned(t, a)
	})
}

// many2many Replace with an existing sticker whose icon changed: gorm
// inserts it ON CONFLICT DO NOTHING, so the row keeps its icon, and so
// must the storage.
func TestGormAPIManyToManyReplaceChangedTargetKeepsRowIcon(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		stickerApp(t, a)
		ctx := t.Context()
		w := Wall{Name: "w", Stickers: []Sticker{{Icon: a.image(t, "s1")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&w).Error)
		old := w.Stickers[0].Icon
		s := w.Stickers[0]
		s.Icon = a.image(t, "s1new")
		require.NoError(t, a.db.WithContext(ctx).Model(&w).Association("Stickers").Replace(&s))
		var got Sticker
		require.NoError(t, a.db.First(&got, s.ID).Error)
		assert.Contains(t, a.files(t), got.Icon)
		assert.Contains(t, a.files(t), old)
	})
}

// many2many with FullSaveAssociations: the target's icon is updated, the
// old one goes.
func TestGormAPIManyToManyFullSave(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		stickerApp(t, a)
		ctx := t.Context()
		w := Wall{Name: "w", Stickers: []Sticker{{Icon: a.image(t, "s1")}, {Icon: a.image(t, "s2")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&w).Error)
		old := w.Stickers[0].Icon
		w.Stickers[0].Icon = a.image(t, "s1new")
		require.NoError(t, a.db.WithContext(ctx).Session(&gorm.Session{FullSaveAssociations: true}).Save(&w).Error)
		var got Sticker
		require.NoError(t, a.db.First(&got, w.Stickers[0].ID).Error)
		assert.Equal(t, w.Stickers[0].Icon, got.Icon)
		assert.ElementsMatch(t, []string{w.Stickers[0].Icon, w.Stickers[1].Icon}, a.files(t))
		assert.NotContains(t, a.files(t), old)
		noAbandoned(t, a)
	})
}

// A new sticker created through a wall with the upload in a caller's
// scope, rolled back after the statement committed: the row holds it.
func TestGormAPIManyToManyCreateCallerRollbackKeepsIcon(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		stickerApp(t, a)
		sctx, s := filefield.NewScope(t.Context())
		ch, err := a.images.Save(sctx, upload("s1"))
		require.NoError(t, err)
		w := Wall{Name: "w", Stickers: []Sticker{{Icon: ch.New}}}
		require.NoError(t, a.db.WithContext(sctx).Create(&w).Error)
		s.Rollback(t.Context())
		assert.Equal(t, []string{ch.New}, a.files(t), "a committed row's file was deleted")
	})
}

// Upserts on the unique name, each with the upload in a caller's scope
// that rolls back after the statement committed: the row that holds the
// new path must keep its file.
func TestGormAPIUpsertVariantsCallerRollbackKeepsRowFile(t *testing.T) {
	variants := map[string]func(db *gorm.DB, p string) error{
		"explicit other ID": func(db *gorm.DB, p string) error {
			return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, UpdateAll: true}).
				Create(&User{ID: 999, Name: "ada", Picture: p}).Error
		},
		"DoUpdates picture": func(db *gorm.DB, p string) error {
			return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, DoUpdates: clause.AssignmentColumns([]string{"picture"})}).
				Create(&User{Name: "ada", Picture: p}).Error
		},
		"batch": func(db *gorm.DB, p string) error {
			return db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, UpdateAll: true}).
				Create(&[]User{{Name: "zed"}, {Name: "ada", Picture: p}}).Error
		},
		"map": func(db *gorm.DB, p string) error {
			return db.Model(&User{}).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, UpdateAll: true}).
				Create(map[string]any{"name": "ada", "picture": p}).Error
		},
		"FirstOrCreate": func(db *gorm.DB, p string) error {
			var u User
			return db.Where(User{Name: "ada"}).Assign(map[string]any{"picture": p}).FirstOrCreate(&u).Error
		},
	}
	for name, write := range variants {
		t.Run(name, func(t *testing.T) {
			eachGormAPIConfig(t, func(t *testing.T, a *app) {
				a.newUser(t, "ada")
				sctx, s := filefield.NewScope(t.Context())
				ch, err := a.pics.Save(sctx, upload("new"))
				require.NoError(t, err)
				if err := write(a.db.WithContext(sctx), ch.New); err != nil {
					t.Skipf("not supported here: %v", err)
				}
				s.Rollback(t.Context())
				var got User
				require.NoError(t, a.db.Where("name = ?", "ada").First(&got).Error)
				require.Equal(t, ch.New, got.Picture)
				assert.Contains(t, a.files(t), ch.New, "a committed row's file was deleted")
			})
		})
	}
}

// FullSaveAssociations with the child's new image in a caller's scope
// that rolls back after the save committed.
func TestGormAPIFullSaveChildCallerRollbackKeepsRowFile(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := User{Name: "ada", Picture: a.pic(t, "p"), Messages: []Message{{Image: a.image(t, "m1")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
		old := u.Messages[0].Image
		sctx, s := filefield.NewScope(ctx)
		ch, err := a.images.Save(sctx, upload("m1new"))
		require.NoError(t, err)
		u.Messages[0].Image = ch.New
		u.Messages = append(u.Messages, Message{Image: ch.New})
		require.NoError(t, a.db.WithContext(sctx).Session(&gorm.Session{FullSaveAssociations: true}).Save(&u).Error)
		s.Rollback(ctx)
		assert.ElementsMatch(t, []string{u.Picture, ch.New}, a.files(t))
		assert.NotContains(t, a.files(t), old)
	})
}

// A tracked join table (SetupJoinTable) with a file column.
type Frame struct {
	ID     uint
	Title  string
	Stamps []Stamp `gorm:"many2many:frame_stamps"`
}

type Stamp struct {
	ID   uint
	Icon string
}

type FrameStamp struct {
	FrameID uint `gorm:"primaryKey"`
	StampID uint `gorm:"primaryKey"`
	Badge   string
}

func TestGormAPITrackedJoinTableReplace(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		require.NoError(t, a.db.SetupJoinTable(&Frame{}, "Stamps", &FrameStamp{}))
		require.NoError(t, a.db.AutoMigrate(&Stamp{}, &Frame{}, &FrameStamp{}))
		a.plugin.Track(&Stamp{}, "Icon", a.images).Track(&FrameStamp{}, "Badge", a.images)
		ctx := t.Context()
		f := Frame{Title: "f", Stamps: []Stamp{{Icon: a.image(t, "s1")}, {Icon: a.image(t, "s2")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&f).Error)
		icons := []string{f.Stamps[0].Icon, f.Stamps[1].Icon}
		badge := a.image(t, "badge")
		require.NoError(t, a.db.WithContext(ctx).Model(&FrameStamp{}).Where("frame_id = ? AND stamp_id = ?", f.ID, f.Stamps[0].ID).Update("badge", badge).Error)
		keep := f.Stamps[1]
		require.NoError(t, a.db.WithContext(ctx).Model(&f).Association("Stamps").Replace(&keep))
		// The join row that held the badge is gone: the badge goes; icons stay.
		assert.ElementsMatch(t, icons, a.files(t))
		// Deleting the remaining association keeps icons.
		require.NoError(t, a.db.WithContext(ctx).Model(&f).Association("Stamps").Delete(&keep))
		assert.ElementsMatch(t, icons, a.files(t))
		// Inside a rolled-back Transaction the badge stays.
		f2 := Frame{Title: "g", Stamps: []Stamp{{Icon: a.image(t, "s3")}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&f2).Error)
		b2 := a.image(t, "badge2")
		require.NoError(t, a.db.WithContext(ctx).Model(&FrameStamp{}).Where("frame_id = ?", f2.ID).Update("badge", b2).Error)
		_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			require.NoError(t, tx.Model(&f2).Association("Stamps").Clear())
			return fmt.Errorf("give up")
		})
		require.Error(t, err)
		assert.Contains(t, a.files(t), b2)
	})
}

// The control: the same update from a map of untracked columns runs.
func TestGormAPIUntrackedMapUpdatesInBegin(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		tx := a.db.Begin()
		defer tx.Rollback()
		require.NoError(t, tx.Model(&u).Updates(map[string]any{"name": "ada2"}).Error)
		require.NoError(t, tx.Commit().Error)
		assert.Equal(t, []string{u.Picture}, a.files(t))
	})
}

// Session-level PrepareStmt, inside this package's Transaction (nested
// too) and outside it.
func TestGormAPISessionPrepareStmt(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		ps := a.db.WithContext(ctx).Session(&gorm.Session{PrepareStmt: true})
		n1 := a.pic(t, "n1")
		require.NoError(t, ps.Model(&u).Update("picture", n1).Error)
		assert.Equal(t, []string{n1}, a.files(t))
		var n2, n3 string
		_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			pt := tx.Session(&gorm.Session{PrepareStmt: true})
			ch, err := a.pics.Save(tx.Statement.Context, upload("n2"))
			require.NoError(t, err)
			n2 = ch.New
			require.NoError(t, pt.Model(&u).Update("picture", n2).Error)
			_, err = gormfield.Transaction(tx.Statement.Context, pt, func(tx2 *gorm.DB) error {
				ch, err := a.pics.Save(tx2.Statement.Context, upload("n3"))
				require.NoError(t, err)
				n3 = ch.New
				require.NoError(t, tx2.Session(&gorm.Session{PrepareStmt: true}).Clauses(clause.OnConflict{UpdateAll: true}).Create(&User{ID: u.ID, Name: "ada", Picture: n3}).Error)
				return fmt.Errorf("inner gives up")
			})
			require.Error(t, err)
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, n2, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{n2}, a.files(t))
	})
}

// An upsert on the name whose value carries the key of another row: the
// other row is untouched and keeps its file.
func TestGormAPIUpsertWithAnotherRowsKeyKeepsItsFile(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		ada, bob := a.newUser(t, "ada"), a.newUser(t, "bob")
		nw := a.pic(t, "new")
		err := a.db.WithContext(t.Context()).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "name"}}, UpdateAll: true}).
			Create(&User{ID: bob.ID, Name: "ada", Picture: nw}).Error
		t.Logf("upsert: %v", err)
		got := a.files(t)
		assert.Contains(t, got, a.user(t, bob.ID).Picture)
		assert.Contains(t, got, a.user(t, ada.ID).Picture)
	})
}

// Poster has a natural primary key.
type Poster struct {
	Slug string `gorm:"primaryKey"`
	Art  string
}

// An update that renames the key and writes a new path in one statement:
// the plugin reads the rows again by their old keys, finds none, and
// never claims the new path. The caller's scope that stored the upload
// then rolls back and deletes the file the committed row holds.
func TestRTGormAPIKeyChangingUpdateCallerRollbackDeletesRowFile(t *testing.T) {
	eachGormAPIConfig(t, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Poster{}))
		a.plugin.Track(&Poster{}, "Art", a.images)
		ctx := t.Context()
		p := Poster{Slug: "a", Art: a.image(t, "old")}
		require.NoError(t, a.db.WithContext(ctx).Create(&p).Error)
		sctx, s := filefield.NewScope(ctx)
		ch, err := a.images.Save(sctx, upload("new"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(sctx).Model(&p).Updates(map[string]any{"slug": "b", "art": ch.New}).Error)
		s.Rollback(ctx)
		var got Poster
		require.NoError(t, a.db.First(&got, "slug = ?", "b").Error)
		require.Equal(t, ch.New, got.Art)
		assert.Equal(t, []string{ch.New}, a.files(t), "a committed row's file was deleted")
	})
}
