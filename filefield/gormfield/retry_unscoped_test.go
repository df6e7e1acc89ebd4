package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// A handler with no scope inserts, and on a unique violation updates the
// existing row with the same upload (an upsert by hand). The failed
// insert must not delete the upload: the handler still holds it, and
// the update that follows commits a row pointing at it.
func TestFailedUnscopedCreateThenUpdateKeepsUpload(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			a := newApp(t, d, gormfield.Options{}, &gorm.Config{})
			u := a.newUser(t, "ada")
			ctx := t.Context()
			ch, err := a.pics.Save(ctx, upload("new"))
			require.NoError(t, err)
			err = a.db.WithContext(ctx).Create(&User{Name: "ada", Picture: ch.New}).Error
			require.Error(t, err, "the name is unique")
			require.NoError(t, a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
			require.Equal(t, ch.New, a.user(t, u.ID).Picture)
			assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
		})
	}
}

// The two-step upload: one request stores the file and returns its path
// to the client; a second request writes the path into a row, fails
// (the form was invalid), and the client submits it again, fixed.
func TestFailedStatementInAnotherRequestKeepsUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	a.newUser(t, "ada")
	ch, err := a.pics.Save(t.Context(), upload("new"))
	require.NoError(t, err)
	err = a.db.WithContext(t.Context()).Create(&User{Name: "ada", Picture: ch.New}).Error
	require.Error(t, err, "the name is taken")
	require.NoError(t, a.db.WithContext(t.Context()).Create(&User{Name: "bob", Picture: ch.New}).Error)
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}

// With gorm's default transaction and no scope: the update writes the
// path and claims the upload, then the model's AfterUpdate hook fails and
// gorm rolls the statement back. The upload stays the handler's: its
// retry without the hook commits a row pointing at it.
func TestFailedHookUnscopedThenRetryKeepsUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	require.NoError(t, a.db.AutoMigrate(&Note{}))
	a.plugin.Track(&Note{}, "File", a.pics)
	require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Note{ID: 1}).Error)
	ch, err := a.pics.Save(t.Context(), upload("new"))
	require.NoError(t, err)
	err = a.db.WithContext(t.Context()).Model(&Note{ID: 1}).Update("file", ch.New).Error
	require.ErrorIs(t, err, errAudit)
	require.Contains(t, a.files(t), ch.New, "the failed statement left the handler's upload")
	require.NoError(t, a.db.WithContext(t.Context()).Model(&Note{ID: 1}).UpdateColumn("file", ch.New).Error)
	var n Note
	require.NoError(t, a.db.First(&n, 1).Error)
	require.Equal(t, ch.New, n.File)
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
	// The handler gives up on a second upload after a failed statement:
	// its Rollback removes it.
	ch2, err := a.pics.Save(t.Context(), upload("second"))
	require.NoError(t, err)
	err = a.db.WithContext(t.Context()).Model(&Note{ID: 1}).Update("file", ch2.New).Error
	require.ErrorIs(t, err, errAudit)
	require.Contains(t, a.files(t), ch2.New)
	require.False(t, ch2.Held(), "no scope holds it after the failed statement")
	ch2.Rollback(t.Context())
	assert.NotContains(t, a.files(t), ch2.New, "the handler's rollback removes its upload")
}
