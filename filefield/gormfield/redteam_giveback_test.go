package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Red team of 2257f5c, on PostgreSQL (two connections). The handler
// stores an upload (no scope) and updates its memo in gorm's default
// transaction: the plugin claims the upload into the statement's scope,
// borrowed, which takes it off the field's list. While the memo's
// after-hook runs, another request commits a user row holding the same
// path; its Claim finds nothing (a borrowed change is held but not
// claimable), so the committed row finishes nothing. The memo's hook
// fails, the statement's scope rolls back and gives the upload back
// (KeptGivenBack); the handler gives up on it as the README says ("The
// handler rolls it back if it gives up"): the file of the committed user
// row goes.
func TestRTGiveBackConcurrentCommitWhileBorrowedKeepsFile(t *testing.T) {
	a := newApp(t, databases[1], gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
	require.NoError(t, a.db.AutoMigrate(&Memo{}))
	a.plugin.Track(&Memo{}, "File", a.pics)
	require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Memo{ID: 1}).Error)
	u := a.newUser(t, "ada")
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)
	m := &Memo{ID: 1, during: func() {
		// Another request, on another connection.
		assert.NoError(t, a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
	}}
	err = a.db.WithContext(ctx).Model(m).Update("file", ch.New).Error
	require.ErrorIs(t, err, errMemo)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture, "the other request committed")
	ch.Rollback(ctx) // the handler's statement failed: it gives up
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}
