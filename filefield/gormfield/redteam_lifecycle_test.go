package gormfield_test

// Red team of d31a9ae (ownScope after gorm:begin_transaction, forget on a
// reused handle). Tests named TestRTLifecycle... fail on d31a9ae for the
// reason their comment gives; TestLifecycle... are probes that hold.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Kiosk is untracked; its BeforeCreate hook writes a welcome message (a
// tracked row) on the statement's transaction, with its context, as
// gorm's docs advise for hooks.
type Kiosk struct {
	ID      uint
	Name    string
	OwnerID uint   `gorm:"-"`
	Welcome string `gorm:"-"`
	After   bool   `gorm:"-"`
}

func (k *Kiosk) BeforeCreate(tx *gorm.DB) error {
	if k.Welcome == "" || k.After {
		return nil
	}
	return tx.Create(&Message{UserID: k.OwnerID, Image: k.Welcome}).Error
}

func (k *Kiosk) AfterCreate(tx *gorm.DB) error {
	if k.Welcome == "" || !k.After {
		return nil
	}
	return tx.Create(&Message{UserID: k.OwnerID, Image: k.Welcome}).Error
}

// Loss (SQLite and PostgreSQL). gorm sorts mediaclean:scope_create after
// gorm:before_create (the model's BeforeSave/BeforeCreate hooks): it only
// has to come before gorm:save_before_associations. A statement a
// BeforeCreate hook runs on gorm's default transaction therefore sees the
// caller's context, not the statement's own scope: with a scope in the
// context (filefield.NewScope, outside any Transaction) the message's
// upload is claimed into that scope, which is another transaction's. gorm
// commits the kiosk and its message; a later step of the handler fails
// and its scope rolls back, deleting the image the committed message row
// points at. The same hook in AfterCreate (after ownScope) keeps it.
func TestRTLifecycleBeforeCreateHookJoinsCallersScope(t *testing.T) {
	t.Parallel()
	hookJoinsCallersScope(t, false)
}

// Probe: the same statement from AfterCreate (after ownScope) joins the
// create's own scope, and the caller's rollback keeps the committed file.
func TestLifecycleAfterCreateHookJoinsOwnScope(t *testing.T) {
	t.Parallel()
	hookJoinsCallersScope(t, true)
}

func hookJoinsCallersScope(t *testing.T, after bool) {
	{
		{
			forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
				require.NoError(t, a.db.AutoMigrate(&Kiosk{}))
				owner := a.newUser(t, "owner")
				sctx, s := filefield.NewScope(t.Context())
				img, err := a.images.Save(sctx, upload("welcome"))
				require.NoError(t, err)
				require.NoError(t, a.db.WithContext(sctx).Create(&Kiosk{Name: "k", OwnerID: owner.ID, Welcome: img.New, After: after}).Error)
				var m Message
				require.NoError(t, a.db.Where("image = ?", img.New).First(&m).Error, "committed by gorm's default transaction")
				r := s.Rollback(sctx) // a later step of the handler failed
				assert.Contains(t, a.files(t), img.New, "the committed message row points at a deleted file; the scope's rollback did %+v", r)
			})
		}
	}
}

// Probe: Association Append on a tracked has-many claims the upload and
// commits it with the row; Clear (even Unscoped) only unlinks the row on
// has-many, so its file stays, and a hard delete of it then removes it.
func TestLifecycleAssociationAppendThenUnscopedClear(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		img, err := a.images.Save(ctx, upload("img"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(ctx).Model(&u).Association("Messages").Append(&Message{Image: img.New}))
		assert.False(t, img.Held())
		assert.Empty(t, img.Rollback(ctx).Deleted, "committed with the message")
		assert.ElementsMatch(t, []string{u.Picture, img.New}, a.files(t))
		require.NoError(t, a.db.WithContext(ctx).Model(&u).Association("Messages").Unscoped().Clear())
		var n int64
		require.NoError(t, a.db.Unscoped().Model(&Message{}).Count(&n).Error)
		require.EqualValues(t, 1, n, "gorm unlinks has-many rows")
		assert.ElementsMatch(t, []string{u.Picture, img.New}, a.files(t), "the unlinked row still holds it")
		require.NoError(t, a.db.WithContext(ctx).Unscoped().Where("image = ?", img.New).Delete(&Message{}).Error)
		assert.ElementsMatch(t, []string{u.Picture}, a.files(t))
	})
}

// Refusal (SQLite and PostgreSQL). The same BeforeCreate hook with no
// scope in the context: the message's statement runs in gorm's default
// transaction, which the plugin began a scope for, yet it sees no scope
// and is refused with ErrNoScope, so the whole create fails. Moved to
// AfterCreate the same statement succeeds.
func TestRTLifecycleBeforeCreateHookRefused(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Kiosk{}))
		owner := a.newUser(t, "owner")
		ctx := t.Context()
		img, err := a.images.Save(ctx, upload("welcome"))
		require.NoError(t, err)
		err = a.db.WithContext(ctx).Create(&Kiosk{Name: "k", OwnerID: owner.ID, Welcome: img.New}).Error
		assert.NoError(t, err, "a hook's statement on the transaction gorm began")
		assert.NotErrorIs(t, err, gormfield.ErrNoScope)
	})
}

// Refusal (SQLite and PostgreSQL). forget (d31a9ae) clears the keys by
// storing typed nils, but ownScope tests only that ownKey is present
// ("if _, ok := db.InstanceGet(ownKey); ok"): on a reused handle every
// later statement skips ownScope. start() still swaps the context for a
// tracked table, but only in mediaclean:before_create, after
// gorm:save_before_associations: a belongs-to association (the badge's
// user), or any association of an untracked parent (the board's posts),
// runs in gorm's transaction with no scope and is refused with
// ErrNoScope. On a fresh handle both succeed.
func TestRTLifecycleReusedHandleSkipsOwnScope(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"belongs-to", "untracked parent"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
				require.NoError(t, a.db.AutoMigrate(&Badge{}, &Board{}, &Post{}))
				a.plugin.Track(&Badge{}, "Icon", a.images)
				a.plugin.Track(&Post{}, "Image", a.images)
				ctx := t.Context()
				var res *gorm.DB
				if how == "belongs-to" {
					res = a.db.WithContext(ctx).Create(&Badge{UserID: a.newUser(t, "zed").ID})
				} else {
					res = a.db.WithContext(ctx).Create(&Board{})
				}
				require.NoError(t, res.Error)
				img, err := a.images.Save(ctx, upload("img"))
				require.NoError(t, err)
				switch how {
				case "belongs-to":
					pic, perr := a.pics.Save(ctx, upload("pic"))
					require.NoError(t, perr)
					err = res.Create(&Badge{Icon: img.New, User: User{Name: "ada", Picture: pic.New}}).Error
				case "untracked parent":
					err = res.Create(&Board{Posts: []Post{{Image: img.New}}}).Error
				}
				assert.NoError(t, err, "a second statement on a reused handle, with associations")
				assert.NotErrorIs(t, err, gormfield.ErrNoScope)
			})
		})
	}
}

// Loss (SQLite and PostgreSQL). The same reused handle with a scope in
// its context: the belongs-to user's statement joins the caller's scope
// (the bug e259b6a fixed for fresh handles), gorm commits both rows, and
// the caller's rollback deletes the committed user's picture.
func TestRTLifecycleReusedHandleBelongsToJoinsCallersScope(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Badge{}, &Board{}))
		a.plugin.Track(&Badge{}, "Icon", a.images)
		sctx, s := filefield.NewScope(t.Context())
		res := a.db.WithContext(sctx).Create(&Badge{UserID: a.newUser(t, "zed").ID})
		require.NoError(t, res.Error)
		pic, err := a.pics.Save(sctx, upload("pic"))
		require.NoError(t, err)
		icon, err := a.images.Save(sctx, upload("icon"))
		require.NoError(t, err)
		b := Badge{Icon: icon.New, User: User{Name: "ada", Picture: pic.New}}
		require.NoError(t, res.Create(&b).Error)
		require.Equal(t, pic.New, a.user(t, b.UserID).Picture, "committed by gorm's default transaction")
		r := s.Rollback(sctx)
		assert.Contains(t, a.files(t), icon.New, "the badge row's icon")
		assert.Contains(t, a.files(t), pic.New, "the committed user row points at a deleted file; the scope's rollback did %+v", r)
	})
}
