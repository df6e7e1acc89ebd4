package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// A create that saves tracked associations with it (a user and its
// messages) in gorm's default transaction, with no scope: gorm writes the
// messages with statements of their own on the same transaction. They
// belong to the create's unit of work, as they do in the database.
func TestCreateWithTrackedAssociations(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		pic, err := a.pics.Save(ctx, upload("pic"))
		require.NoError(t, err)
		img, err := a.images.Save(ctx, upload("img"))
		require.NoError(t, err)
		u := User{Name: "ada", Picture: pic.New, Messages: []Message{{Image: img.New}}}
		require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
		var m Message
		require.NoError(t, a.db.Where("user_id = ?", u.ID).First(&m).Error)
		assert.Equal(t, img.New, m.Image)
		assert.False(t, pic.Held())
		assert.False(t, img.Held())
		assert.Empty(t, pic.Rollback(ctx).Deleted, "committed with the row")
		assert.Empty(t, img.Rollback(ctx).Deleted, "committed with the row")
		assert.ElementsMatch(t, []string{pic.New, img.New}, a.files(t))

		// The same create, failing on the user's unique name: nothing is
		// written, and both uploads stay their handler's.
		pic2, err := a.pics.Save(ctx, upload("pic2"))
		require.NoError(t, err)
		img2, err := a.images.Save(ctx, upload("img2"))
		require.NoError(t, err)
		err = a.db.WithContext(ctx).Create(&User{Name: "ada", Picture: pic2.New, Messages: []Message{{Image: img2.New}}}).Error
		require.Error(t, err)
		assert.ElementsMatch(t, []string{pic.New, img.New, pic2.New, img2.New}, a.files(t))
		assert.Equal(t, []string{pic2.New}, pic2.Rollback(ctx).Deleted)
		assert.Equal(t, []string{img2.New}, img2.Rollback(ctx).Deleted)
	})
}

// Board is not tracked; its posts are.
type Board struct {
	ID    uint
	Posts []Post
}

type Post struct {
	ID      uint
	BoardID uint
	Image   string
}

// An untracked row created with tracked children, in gorm's default
// transaction: the children's uploads join that transaction's unit of
// work, not a scope the context carries (another transaction's), so a
// rollback of that scope after the create committed deletes nothing.
func TestUntrackedParentWithTrackedChildren(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Board{}, &Post{}))
		a.plugin.Track(&Post{}, "Image", a.images)
		ctx := t.Context()
		img, err := a.images.Save(ctx, upload("no scope"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(ctx).Create(&Board{Posts: []Post{{Image: img.New}}}).Error)
		assert.Empty(t, img.Rollback(ctx).Deleted, "committed with the board")

		sctx, s := filefield.NewScope(ctx)
		img2, err := a.images.Save(sctx, upload("in a scope"))
		require.NoError(t, err)
		require.NoError(t, a.db.WithContext(sctx).Create(&Board{Posts: []Post{{Image: img2.New}}}).Error)
		s.Rollback(sctx) // the handler's scope fails later
		assert.ElementsMatch(t, []string{img.New, img2.New}, a.files(t), "both posts committed")
	})
}
