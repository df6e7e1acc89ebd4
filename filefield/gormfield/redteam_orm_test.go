package gormfield_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Found by a red-team pass (it failed before the fix). An autocommit create that fails inside the caller's scope
// claims the caller's change into its own scope and rolls it back,
// deleting the upload the caller still holds. The caller's fallback
// update then commits a row pointing at the deleted file.
func TestFailedAutocommitCreateKeepsCallerScopedUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
	ctx, s := filefield.NewScope(t.Context())
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)
	require.Same(t, s, ch.Scope())
	// Insert, and on a unique violation update the existing row instead.
	err = a.db.WithContext(ctx).Create(&User{Name: "ada", Picture: ch.New}).Error
	require.Error(t, err, "the name is unique")
	require.NoError(t, a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
	s.Commit(ctx)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}

// Found by a red-team pass (it failed before the fix). The upload is made in the outer Transaction; a nested
// Transaction (savepoint) writes the path, claiming the change into the
// child scope, then fails on a later step. The savepoint rollback deletes
// the outer scope's upload; the outer transaction writes the path again
// and commits.
func TestSavepointRollbackKeepsOuterUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
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
		// Retry without the failing step.
		return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
	})
	require.NoError(t, err)
	require.Equal(t, newPath, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), newPath, "committed row points at a deleted file; files: %v", a.files(t))
}

// Pet has a model hook that panics after the row is written.
type Pet struct {
	ID    uint
	Photo string
}

func (p *Pet) AfterUpdate(*gorm.DB) error { panic("audit hook bug") }

// Found by a red-team pass (it failed before the fix). Without gorm's default transaction the update
// commits on its own; a model hook then panics. The upload the caller's
// scope holds is rolled back by RunInScope's panic handling although the
// committed row points at it.
func TestPanicAfterAutocommitKeepsCallerScopedUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{SkipDefaultTransaction: true})
	require.NoError(t, a.db.AutoMigrate(&Pet{}))
	a.plugin.Track(&Pet{}, "Photo", a.pics)
	require.NoError(t, a.db.Create(&Pet{ID: 1}).Error)
	var p string
	assert.Panics(t, func() {
		_, _ = filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
			ch, err := a.pics.Save(ctx, upload("new"))
			if err != nil {
				return nil, err
			}
			p = ch.New
			return nil, a.db.WithContext(ctx).Model(&Pet{ID: 1}).Update("photo", ch.New).Error
		})
	})
	var got Pet
	require.NoError(t, a.db.First(&got, 1).Error)
	require.Equal(t, p, got.Photo, "the update committed")
	assert.Contains(t, a.files(t), p, "committed row points at a deleted file; files: %v", a.files(t))
}

// Found by a red-team pass (it failed before the fix). Fn commits the transaction itself and returns nil. gorm's
// tx.Commit then says sql.ErrTxDone, which CommitError passes through as
// a definite failure, so the scope rolls back and deletes the new file
// of the row that committed. (filefield.WithTx and entfield.WithTx treat
// ErrTxDone as ErrCommitUnknown and keep every file.)
func TestTransactionCommittedByFnKeepsFiles(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	u := a.newUser(t, "ada")
	var p string
	_, err := gormfield.Transaction(t.Context(), a.db, func(tx *gorm.DB) error {
		ch, err := a.pics.Replace(tx.Statement.Context, u.Picture, upload("new"))
		if err != nil {
			return err
		}
		p = ch.New
		if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
			return err
		}
		return tx.Commit().Error
	})
	t.Logf("Transaction error: %v (ErrCommitUnknown: %v)", err, errors.Is(err, filefield.ErrCommitUnknown))
	require.Equal(t, p, a.user(t, u.ID).Picture, "the row committed")
	assert.Contains(t, a.files(t), p, "committed row points at a deleted file; files: %v", a.files(t))
}

// Doc is a model whose file field reports abandoned changes quickly.
type Doc struct {
	ID   uint
	File string
}

// Found by a red-team pass (it failed before the fix). An upload the caller's scope holds passes PendingTimeout and
// is reported as abandoned, which takes it off the field's pending list.
// An autocommit create then writes its path: Claim finds nothing, so the
// change is not committed early, and the scope's later rollback deletes
// the file the committed row points at.
func TestAbandonedScopedUploadThenAutocommitKeepsFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	docs := filefield.New("docs", a.ffs, filefield.Options{Dir: "docs", PendingTimeout: 20 * time.Millisecond})
	require.NoError(t, a.db.AutoMigrate(&Doc{}))
	a.plugin.Track(&Doc{}, "File", docs)
	ctx, s := filefield.NewScope(t.Context())
	ch, err := docs.Save(ctx, upload("slow"))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // a slow handler: reported as abandoned
	require.NoError(t, a.db.WithContext(ctx).Create(&Doc{ID: 1, File: ch.New}).Error)
	s.Rollback(ctx) // a later step of the handler fails
	var d Doc
	require.NoError(t, a.db.First(&d, 1).Error)
	assert.Contains(t, a.files(t), d.File, "committed row points at a deleted file; files: %v", a.files(t))
}

// Note is a model whose AfterUpdate hook fails (an audit write, say).
type Note struct {
	ID   uint
	File string
}

var errAudit = errors.New("audit write failed")

func (n *Note) AfterUpdate(*gorm.DB) error { return errAudit }

// Found by a red-team pass (it failed before the fix). Without gorm's default transaction the update commits on
// its own; a model hook then returns an error. The plugin reads db.Error
// as the statement's outcome and rolls its own scope back, deleting the
// new file of the row that committed.
func TestHookErrorAfterAutocommitKeepsFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{SkipDefaultTransaction: true})
	require.NoError(t, a.db.AutoMigrate(&Note{}))
	a.plugin.Track(&Note{}, "File", a.pics)
	require.NoError(t, a.db.Create(&Note{ID: 1}).Error)
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)
	err = a.db.WithContext(ctx).Model(&Note{ID: 1}).Update("file", ch.New).Error
	require.ErrorIs(t, err, errAudit)
	var n Note
	require.NoError(t, a.db.First(&n, 1).Error)
	require.Equal(t, ch.New, n.File, "the update committed")
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}
