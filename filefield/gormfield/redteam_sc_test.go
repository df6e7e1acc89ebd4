package gormfield_test

import (
	"context"
	"errors"
	"github.com/mediaclean/mediaclean/filefield"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// The upload is made in the outer Transaction; a nested Transaction
// (savepoint) writes its path and then fails. The handler treats the
// picture step as optional and does not retry: the outer transaction
// commits with the row still holding the OLD path. The child's rollback
// skipped the change (held by the open parent), the parent's commit
// committed it and deleted the old file the committed row points at.
func TestSavepointRollbackWithoutRetryKeepsOldFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
	oldPath := u.Picture
	errLater := errors.New("a later step of the savepoint failed")
	var newPath string
	_, err := gormfield.Transaction(t.Context(), a.db, func(tx *gorm.DB) error {
		ch, err := a.pics.Replace(tx.Statement.Context, u.Picture, upload("new"))
		if err != nil {
			return err
		}
		newPath = ch.New
		_, err = gormfield.Transaction(tx.Statement.Context, tx, func(tx *gorm.DB) error {
			if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
				return err
			}
			return errLater
		})
		require.ErrorIs(t, err, errLater)
		return nil // the picture was optional: commit the rest
	})
	require.NoError(t, err)
	require.Equal(t, oldPath, a.user(t, u.ID).Picture, "the savepoint rolled the update back")
	t.Logf("new=%s files=%v", newPath, a.files(t))
	assert.Contains(t, a.files(t), oldPath, "committed row points at a deleted file; files: %v", a.files(t))
}

// The caller's scope holds the upload; an independent gorm Transaction
// (its own outermost scope) writes the path, claiming the change, and
// fails; its rollback skips the change (the caller's scope holds it) but
// the change is no longer claimable. A retry in a second Transaction
// commits the row with the new path, and claims nothing. A later step
// fails, the caller's scope rolls back and deletes the new file the
// committed row points at.
func TestIndependentTxRetryThenCallerRollbackKeepsNewFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
	errLater := errors.New("a later step failed")
	var newPath string
	_, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
		ch, err := a.pics.Replace(ctx, u.Picture, upload("new"))
		if err != nil {
			return nil, err
		}
		newPath = ch.New
		_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
				return err
			}
			return errLater // first attempt fails
		})
		require.ErrorIs(t, err, errLater)
		_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		})
		require.NoError(t, err) // the retry committed
		return nil, errLater    // a later step of the handler fails
	})
	require.ErrorIs(t, err, errLater)
	require.Equal(t, newPath, a.user(t, u.ID).Picture, "the retry committed the row")
	assert.Contains(t, a.files(t), newPath, "committed row points at a deleted file; files: %v", a.files(t))
}

// Control: the same without the failed first attempt passes (the claim
// commits the change with the independent transaction).
func TestIndependentTxThenCallerRollbackKeepsNewFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
	errLater := errors.New("a later step failed")
	var newPath string
	_, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
		ch, err := a.pics.Replace(ctx, u.Picture, upload("new"))
		if err != nil {
			return nil, err
		}
		newPath = ch.New
		_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		})
		require.NoError(t, err)
		return nil, errLater
	})
	require.ErrorIs(t, err, errLater)
	require.Equal(t, newPath, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), newPath, "files: %v", a.files(t))
}

// With gorm's default transaction: an update claims the caller's upload
// into its early list, then the model's AfterUpdate hook fails and the
// statement's transaction rolls back. The claim took the change off the
// field's pending list and nothing puts it back. The handler retries
// without the hook (UpdateColumn); that statement commits the row but
// claims nothing, so the change stays only in the caller's scope, whose
// later rollback deletes the new file the committed row points at.
func TestFailedStatementAfterClaimThenRetryKeepsNewFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	require.NoError(t, a.db.AutoMigrate(&Note{}))
	a.plugin.Track(&Note{}, "File", a.pics)
	require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Note{ID: 1}).Error)
	errLater := errors.New("a later step failed")
	var p string
	_, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
		ch, err := a.pics.Save(ctx, upload("new"))
		if err != nil {
			return nil, err
		}
		p = ch.New
		err = a.db.WithContext(ctx).Model(&Note{ID: 1}).Update("file", ch.New).Error
		require.ErrorIs(t, err, errAudit) // rolled back with gorm's transaction
		var n Note
		require.NoError(t, a.db.First(&n, 1).Error)
		require.Empty(t, n.File, "the first attempt rolled back")
		// Retry without the hook: commits on its own.
		require.NoError(t, a.db.WithContext(ctx).Model(&Note{ID: 1}).UpdateColumn("file", ch.New).Error)
		return nil, errLater
	})
	require.ErrorIs(t, err, errLater)
	var n Note
	require.NoError(t, a.db.First(&n, 1).Error)
	require.Equal(t, p, n.File, "the retry committed")
	assert.Contains(t, a.files(t), p, "committed row points at a deleted file; files: %v", a.files(t))
}
