package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Found by a third red-team pass. The upload is made in the outer
// Transaction with the documented "defer ch.Rollback"; the row is written
// in a nested Transaction (savepoint), whose claim adds the change to the
// child scope. The savepoint is released and the outer transaction
// commits with the row pointing at ch.New, which the deferred Rollback
// used to delete.
func TestNestedClaimThenDeferredRollbackKeepsRowFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	ctx := t.Context()
	u := a.newUser(t, "ada")
	var newPath string
	_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		ch, err := a.pics.Replace(tx.Statement.Context, u.Picture, upload("new"))
		if err != nil {
			return err
		}
		defer ch.Rollback(tx.Statement.Context)
		newPath = ch.New
		_, err = gormfield.Transaction(tx.Statement.Context, tx, func(tx *gorm.DB) error {
			return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		})
		return err
	})
	require.NoError(t, err)
	require.Equal(t, newPath, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), newPath, "the committed row's file was deleted; files: %v", a.files(t))
}

// Found by filefield's model of scopes and savepoints. In one
// Transaction the row takes upload A, then B, then a stale write puts A
// back: the row commits holding A, whose file B's replace deleted.
func TestPathWrittenAgainAfterItsReplaceIsKept(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	ctx := t.Context()
	u := a.newUser(t, "ada")
	var pathA string
	_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		chA, err := a.pics.Replace(tx.Statement.Context, u.Picture, upload("a"))
		if err != nil {
			return err
		}
		pathA = chA.New
		if err := tx.Model(&User{ID: u.ID}).Update("picture", chA.New).Error; err != nil {
			return err
		}
		chB, err := a.pics.Replace(tx.Statement.Context, chA.New, upload("b"))
		if err != nil {
			return err
		}
		if err := tx.Model(&User{ID: u.ID}).Update("picture", chB.New).Error; err != nil {
			return err
		}
		return tx.Model(&User{ID: u.ID}).Update("picture", chA.New).Error
	})
	require.NoError(t, err)
	require.Equal(t, pathA, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), pathA, "the committed row's file was deleted; files: %v", a.files(t))
}
