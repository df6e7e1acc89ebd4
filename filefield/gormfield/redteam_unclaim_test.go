package gormfield_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// From a red-team pass over 84a81a3, which gave a failed statement's
// claimed upload back through stmtState.claimed and Field.Unclaim. Each
// test failed then; the fix keeps a claimed upload in the statement's
// scope, where it is held, and has a scope's rollback give a borrowed
// upload (one made in no scope) back to its maker instead.

// Red team of 84a81a3 (Unclaim). With gorm's default transaction the
// update claims the handler's upload into stmtState.claimed, where no
// scope holds it and the field's list no longer has it, until the
// plugin's finish callback adopts it. A callback of the application that
// runs after gorm's commit (cache invalidation) panics: finish never
// runs. Before the change the upload sat in the statement's own scope,
// never ended, so it stayed held and a Rollback only recorded a wish;
// now it is a plain unheld change, and the handler's documented
// "defer ch.Rollback" (run as the panic unwinds to the server's recovery)
// deletes the file of the row that committed.
func TestRTUnclaimPanicAfterCommitKeepsClaimedUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
	u := a.newUser(t, "ada")
	require.NoError(t, a.db.Callback().Update().After("gorm:commit_or_rollback_transaction").
		Register("app:invalidate_cache", func(db *gorm.DB) {
			if db.Error == nil && db.Statement.Table == "users" {
				panic("cache invalidation bug")
			}
		}))
	ctx := t.Context()
	var p string
	func() {
		defer func() { _ = recover() }() // the HTTP server's recovery
		ch, err := a.pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		p = ch.New
		defer ch.Rollback(ctx) // "safe, since Rollback after Commit does nothing"
		_ = a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error
	}()
	require.Equal(t, p, a.user(t, u.ID).Picture, "the update committed")
	assert.Contains(t, a.files(t), p, "committed row points at a deleted file; files: %v", a.files(t))
}

// Album has a cover and tracks whose titles are unique.
type Album struct {
	ID     uint
	Cover  string
	Tracks []Track
}

type Track struct {
	ID      uint
	AlbumID uint
	Title   string `gorm:"uniqueIndex"`
}

// Red team of 84a81a3. With SkipDefaultTransaction the album's insert
// commits by itself; gorm then saves its tracks (gorm:save_after_associations
// runs before the plugin's after_create), and one breaks a unique index.
// The plugin sees db.Error, takes the statement for failed, and gives the
// upload back to the handler (Unclaim); the handler gives up on it as
// the README says ("the handler rolls it back if it gives up"), and the
// file of the album row that committed goes. The README promises that a
// statement that commits on its own settles its files as soon as its
// write succeeded.
func TestRTUnclaimAutocommitAssociationFailureKeepsFile(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{SkipDefaultTransaction: true}, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Album{}, &Track{}))
		a.plugin.Track(&Album{}, "Cover", a.pics)
		ctx := t.Context()
		require.NoError(t, a.db.WithContext(ctx).Create(&Album{Tracks: []Track{{Title: "intro"}}}).Error)
		ch, err := a.pics.Save(ctx, upload("cover"))
		require.NoError(t, err)
		err = a.db.WithContext(ctx).Create(&Album{Cover: ch.New, Tracks: []Track{{Title: "intro"}}}).Error
		require.Error(t, err, "the track's title is taken")
		var n int64
		require.NoError(t, a.db.Model(&Album{}).Where("cover = ?", ch.New).Count(&n).Error)
		require.EqualValues(t, 1, n, "the album row committed on its own")
		ch.Rollback(ctx) // the handler gives up, as documented
		assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
	})
}

// Red team of 84a81a3. The change keeps the upload when a statement that
// commits on its own fails, since the handler may retry with the same
// path. The same handler retrying a gormfield.Transaction (a
// serialization failure, say), with an upload stored before it (no
// scope), still loses it: the first attempt claims the unheld upload into
// its scope and its rollback deletes it; the retry commits a row pointing
// at no file.
func TestRTUnclaimRetriedTransactionKeepsUnscopedUpload(t *testing.T) {
	a := newApp(t, databases[0], gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
	u := a.newUser(t, "ada")
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)
	errRetry := errors.New("could not serialize access")
	for attempt := 0; ; attempt++ {
		_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
			if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
				return err
			}
			if attempt == 0 {
				return errRetry
			}
			return nil
		})
		if !errors.Is(err, errRetry) {
			break
		}
	}
	require.NoError(t, err)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}

// Memo's AfterUpdate hook runs a step of the test, then fails.
type Memo struct {
	ID     uint
	File   string
	during func()
}

var errMemo = errors.New("memo audit failed")

func (m *Memo) AfterUpdate(*gorm.DB) error {
	if m.during != nil {
		m.during()
	}
	return errMemo
}

// Red team of 84a81a3, on PostgreSQL (two connections). The two-step
// upload: the upload is stored with no scope and its path sent to the
// client, which submits it twice at once. Request 1 (gorm's default
// transaction) claims the upload into stmtState.claimed, then its hook
// fails; meanwhile request 2 commits a user row with the same path. While
// claimed, the change is neither on the field's list nor held, so request
// 2's Claim finds nothing and its commit does not finish the change.
// Before the change request 1's own scope held it, request 2 took it as
// "early" and committed it. Request 1's finish then gives the change back
// (Unclaim), unfinished though a committed row holds its path; a third
// submission in a Transaction that fails claims it and deletes the file.
func TestRTUnclaimConcurrentCommitDuringClaimKeepsFile(t *testing.T) {
	a := newApp(t, databases[1], gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
	require.NoError(t, a.db.AutoMigrate(&Memo{}))
	a.plugin.Track(&Memo{}, "File", a.pics)
	require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Memo{ID: 1}).Error)
	u := a.newUser(t, "ada")
	v := a.newUser(t, "bob")
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload("new")) // the upload request
	require.NoError(t, err)
	m := &Memo{ID: 1, during: func() {
		// Request 2, on another connection.
		assert.NoError(t, a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
	}}
	err = a.db.WithContext(ctx).Model(m).Update("file", ch.New).Error // request 1
	require.ErrorIs(t, err, errMemo)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture, "request 2 committed")
	// Request 3 fails after writing the path.
	errLater := errors.New("a later step failed")
	_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		if err := tx.Model(&User{ID: v.ID}).Update("picture", ch.New).Error; err != nil {
			return err
		}
		return errLater
	})
	require.ErrorIs(t, err, errLater)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture)
	assert.Contains(t, a.files(t), ch.New, "committed row points at a deleted file; files: %v", a.files(t))
}
