package gormfield_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// Found by a red-team pass (each failed before its fix). TestReviewOuterHandleInsideAFailedSavepointKeepsTheOldFile with the
// outer handle made a prepared-statement session (tx.Session with
// PrepareStmt), a common way to get one: gorm wraps the *sql.Tx in a new
// *gorm.PreparedStmtTX, so the statement's ConnPool is not the key the
// nested Transaction pushed, and the statement is claimed into the outer
// scope again, as before 952f711.
func TestRTLastPreparedOuterHandleInsideAFailedSavepointKeepsTheOldFile(t *testing.T) {
	for _, how := range []string{"outer handle prepared", "savepoint opened on a prepared handle"} {
		t.Run(how, func(t *testing.T) {
			a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
			ctx := t.Context()
			u := a.newUser(t, "ada")
			old := u.Picture
			_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
				ch, err := a.pics.Replace(tx.Statement.Context, old, upload("new"))
				if err != nil {
					return err
				}
				outer, on := tx, tx
				if how == "outer handle prepared" {
					outer = tx.Session(&gorm.Session{PrepareStmt: true})
				} else {
					on = tx.Session(&gorm.Session{PrepareStmt: true})
				}
				_, err = gormfield.Transaction(tx.Statement.Context, on, func(*gorm.DB) error {
					// the outer handle, inside the savepoint
					if err := outer.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
						return err
					}
					return errors.New("a later step of the savepoint fails")
				})
				require.Error(t, err)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, old, a.user(t, u.ID).Picture, "the savepoint's rollback undid the update")
			assert.Contains(t, a.files(t), old, "the committed row's file was deleted; files: %v", a.files(t))
		})
	}
}

// Two goroutines on one transaction (a *sql.Tx is safe for concurrent
// use): a nested Transaction is pushed on the savepoint stack before gorm
// runs its SAVEPOINT. A statement of the outer transaction that starts in
// that window is attributed to the nested Transaction's scope, although
// the database runs it before the savepoint exists. The savepoint then
// fails: ROLLBACK TO leaves the statement alone, the row commits holding
// the new upload, but the child scope rolled the upload back and deleted
// its file.
func TestRTLastStatementBeforeAConcurrentSavepointKeepsItsNewFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	ctx := t.Context()
	u := a.newUser(t, "ada")
	// The handler stores the upload first, as in the package doc.
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)

	var armed atomic.Bool
	reached := make(chan struct{})
	release := make(chan struct{})
	require.NoError(t, a.db.Callback().Raw().Before("gorm:raw").Register("rt:hold_savepoint", func(db *gorm.DB) {
		if armed.Load() && strings.HasPrefix(db.Statement.SQL.String(), "SAVEPOINT") {
			armed.Store(false)
			close(reached)
			<-release
		}
	}))

	_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		var wg sync.WaitGroup
		wg.Add(1)
		armed.Store(true)
		go func() {
			defer wg.Done()
			_, err := gormfield.Transaction(tx.Statement.Context, tx, func(*gorm.DB) error {
				return errors.New("the other goroutine's step fails")
			})
			assert.Error(t, err)
		}()
		<-reached // pushed, SAVEPOINT not yet run
		err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
		close(release)
		wg.Wait()
		return err
	})
	require.NoError(t, err)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture, "the update ran before the savepoint: it commits")
	assert.Contains(t, a.files(t), ch.New, "the committed row's new file was deleted; files: %v", a.files(t))
}

// gorm's DisableNestedTransaction: a nested Transaction runs fn with no
// savepoint, so its failure undoes nothing in the database; the outer
// transaction commits the row with the new upload. The child scope
// still rolls back and deletes the new file.
func TestRTLastNestedTransactionWithoutSavepointsKeepsTheCommittedFile(t *testing.T) {
	for _, how := range []string{"config", "session"} {
		t.Run(how, func(t *testing.T) {
			cfg := &gorm.Config{}
			if how == "config" {
				cfg.DisableNestedTransaction = true
			}
			a := newApp(t, databases[0], gormfield.Options{}, cfg)
			ctx := t.Context()
			u := a.newUser(t, "ada")
			var newPath string
			_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
				on := tx
				if how == "session" {
					on = tx.Session(&gorm.Session{DisableNestedTransaction: true})
				}
				_, err := gormfield.Transaction(tx.Statement.Context, on, func(tx2 *gorm.DB) error {
					ch, err := a.pics.Save(tx2.Statement.Context, upload("new"))
					if err != nil {
						return err
					}
					newPath = ch.New
					if err := tx2.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
						return err
					}
					return errors.New("a later step fails")
				})
				require.Error(t, err)
				return nil // optional step: commit
			})
			require.NoError(t, err)
			got := a.user(t, u.ID).Picture
			require.Equal(t, newPath, got, "no savepoint: the failed step's update stays and commits")
			assert.Contains(t, a.files(t), got, "the committed row (%s) points at a deleted file; files: %v", got, a.files(t))
		})
	}
}

// gorm's own nested db.Transaction inside Transaction, the same slip as
// TestReviewOuterHandleInsideAFailedSavepointKeepsTheOldFile: the doc says
// a savepoint rolled back behind the plugin's back keeps its row's file,
// but the Replace's old path is deleted without asking the database.
func TestRTLastGormSavepointRolledBackKeepsTheOldFile(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{})
	ctx := t.Context()
	u := a.newUser(t, "ada")
	old := u.Picture
	_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		ch, err := a.pics.Replace(tx.Statement.Context, old, upload("new"))
		if err != nil {
			return err
		}
		err = tx.Transaction(func(tx2 *gorm.DB) error {
			if err := tx2.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
				return err
			}
			return errors.New("a later step of the savepoint fails")
		})
		require.Error(t, err)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, old, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), old, "the committed row's file was deleted; files: %v", a.files(t))
}
