package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

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
