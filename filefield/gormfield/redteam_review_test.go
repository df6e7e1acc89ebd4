package gormfield_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Found by a red-team review (it failed before the fix). The GORM form of filefield's TestReviewParentWriteWhileChildOpenKeepsFile:
// inside a nested Transaction (savepoint) the row takes B, then a
// statement made with the outer tx (captured by the closure, a common
// slip; on the database it runs inside the savepoint, after B's write)
// puts A back. The row commits holding A; B's replace deletes A, since
// the released child's changes are appended after the parent's re-claim
// of A.
func TestReviewOuterTxWriteInsideSavepointKeepsFile(t *testing.T) {
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
		_, err = gormfield.Transaction(tx.Statement.Context, tx, func(tx2 *gorm.DB) error {
			chB, err := a.pics.Replace(tx2.Statement.Context, chA.New, upload("b"))
			if err != nil {
				return err
			}
			if err := tx2.Model(&User{ID: u.ID}).Update("picture", chB.New).Error; err != nil {
				return err
			}
			// the outer handle, inside the savepoint
			return tx.Model(&User{ID: u.ID}).Update("picture", chA.New).Error
		})
		return err
	})
	require.NoError(t, err)
	require.Equal(t, pathA, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), pathA, "the committed row's file was deleted; files: %v", a.files(t))
}

// The outer handle used inside a nested Transaction that then fails: the
// database runs its statement inside the savepoint, and the rollback to
// the savepoint undoes it. The upload it wrote was claimed into the
// outer scope, which commits: its replace deleted the old file, which
// the row holds again. The plugin now claims into the innermost
// Transaction open on the same connection.
func TestOuterHandleInsideAFailedSavepointKeepsTheOldFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	ctx := t.Context()
	u := a.newUser(t, "ada")
	old := u.Picture
	require.NotEmpty(t, old)
	_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		ch, err := a.pics.Replace(tx.Statement.Context, old, upload("new"))
		if err != nil {
			return err
		}
		_, err = gormfield.Transaction(tx.Statement.Context, tx, func(*gorm.DB) error {
			// the outer handle, inside the savepoint
			if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
				return err
			}
			return errors.New("a later step of the savepoint fails")
		})
		require.Error(t, err)
		return nil // the picture step was optional: the transaction commits
	})
	require.NoError(t, err)
	require.Equal(t, old, a.user(t, u.ID).Picture, "the savepoint's rollback undid the update")
	assert.Contains(t, a.files(t), old, "the committed row's file was deleted; files: %v", a.files(t))
}
