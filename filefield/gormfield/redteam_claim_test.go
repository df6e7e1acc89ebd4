package gormfield_test

// Red team of 2257f5c and 7d7ea21 (Claim marks a change claimed until the
// claimer's Scope.Add). Each test fails on 7d7ea21 for the reason its
// comment gives.

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// On PostgreSQL (two connections). The handler stores its upload before
// its Transaction (no scope); its update claims it. Meanwhile another
// request (a double submit) writes the same path to a memo in gorm's
// default transaction: its after callback claims the change (held:
// early), then the memo's AfterUpdate hook fails and that statement rolls
// back. The handler then registers the upload in its transaction's scope
// (Scope.Add), and its transaction fails. The rollback gives the upload
// back to its maker (KeptGivenBack): a retry may write it again; the
// handler's Rollback, when it gives up, deletes it, and nothing stays on
// the field's list.
func TestRTClaimEarlyClaimThenMakersAddGivesBack(t *testing.T) {
	a := newApp(t, databases[1], gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
	require.NoError(t, a.db.AutoMigrate(&Memo{}))
	a.plugin.Track(&Memo{}, "File", a.pics)
	require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Memo{ID: 1}).Error)
	u := a.newUser(t, "ada")
	ctx := t.Context()
	ch, err := a.pics.Save(ctx, upload("new")) // parsed before the transaction
	require.NoError(t, err)
	errLater := errors.New("a later step failed")
	r, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
		if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
			return err
		}
		// Another request, on another connection, writes the same path
		// and fails after the plugin's after callback.
		m := &Memo{ID: 1}
		require.ErrorIs(t, a.db.WithContext(ctx).Model(m).Update("file", ch.New).Error, errMemo)
		// The handler stores its upload in its transaction's scope.
		_, err := filefield.ScopeFrom(tx.Statement.Context).Add(ch, nil)
		require.NoError(t, err)
		return errLater
	})
	require.ErrorIs(t, err, errLater)
	assert.Contains(t, a.files(t), ch.New, "given back: %+v", r)
	assert.Same(t, ch, a.pics.Claim(ch.New), "pending, its maker's")
	assert.Equal(t, []string{ch.New}, ch.Rollback(ctx).Deleted, "the handler gives up")
	assert.Nil(t, a.pics.Claim(ch.New), "left pending on the field's list")
}

// Badge belongs to a user: gorm saves the user first, in
// gorm:save_before_associations.
type Badge struct {
	ID     uint
	Icon   string
	UserID uint
	User   User
}

// Loss (SQLite and PostgreSQL). 232aa5d puts the statement's own scope in
// its context so that the associations gorm saves with it join it, but
// the plugin swaps the context in its before callback, which runs after
// gorm:save_before_associations: a belongs-to association (the badge's
// user) is written on gorm's default transaction with the caller's
// context. The handler works in a scope (filefield.NewScope) and creates
// a badge with a new user outside any Transaction, so gorm's default
// transaction commits both rows on its own. The badge's statement settles
// its icon early, as the README promises for a statement that commits on
// its own; the user's statement, in a transaction and with a scope in its
// context, adds the picture to the caller's scope instead. A later step of
// the handler fails and its scope rolls back: the committed user row's
// picture is deleted. (With no scope in the context the same create fails
// with ErrNoScope, as a has-many create did before 232aa5d.)
func TestRTClaimBelongsToAssociationJoinsCallersScope(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		require.NoError(t, a.db.AutoMigrate(&Badge{}))
		a.plugin.Track(&Badge{}, "Icon", a.images)
		sctx, s := filefield.NewScope(t.Context())
		pic, err := a.pics.Save(sctx, upload("pic"))
		require.NoError(t, err)
		icon, err := a.images.Save(sctx, upload("icon"))
		require.NoError(t, err)
		b := Badge{Icon: icon.New, User: User{Name: "ada", Picture: pic.New}}
		require.NoError(t, a.db.WithContext(sctx).Create(&b).Error)
		require.Equal(t, pic.New, a.user(t, b.UserID).Picture, "committed by gorm's default transaction")
		r := s.Rollback(sctx) // a later step of the handler failed
		assert.Contains(t, a.files(t), icon.New, "the badge row's icon")
		assert.Contains(t, a.files(t), pic.New, "the committed user row points at a deleted file; the scope's rollback did %+v", r)
	})
}

// Loss (SQLite and PostgreSQL), a race made deterministic. The early path
// takes for "the caller's scope" whatever scope Change.Scope() names; here
// it is another request's. Request 1 (the handler) stores its upload in
// its transaction's scope X and has not finished. Request 2 (a double
// submit; its context carries no scope) writes the same path into a user
// row in gorm's default transaction: its after callback claims the change
// (held by X: early) but does not add it to its own scope, so between
// gorm's commit of the row and the plugin's finish callback, which commits
// the change early, nothing of request 2 holds it. Request 1's transaction
// fails in that window (here, inside an application callback that runs
// after gorm's commit, such as cache invalidation, which widens it) and
// X's rollback deletes the file the committed row now points at. Had
// request 2's statement added the change to its own scope, X's rollback
// would have left it to that scope (held elsewhere).
func TestRTClaimEarlyChangeUnheldBetweenCommitAndFinish(t *testing.T) {
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		ctx := t.Context()
		xctx, x := filefield.NewScope(ctx) // request 1's transaction
		ch, err := a.pics.Save(xctx, upload("new"))
		require.NoError(t, err)
		var r filefield.Result
		done := false
		require.NoError(t, a.db.Callback().Update().After("gorm:commit_or_rollback_transaction").
			Register("app:after_commit", func(db *gorm.DB) {
				if !done && db.Error == nil {
					done = true
					r = x.Rollback(xctx) // request 1's transaction failed meanwhile
				}
			}))
		// Request 2.
		require.NoError(t, a.db.WithContext(ctx).Model(&User{ID: u.ID}).Update("picture", ch.New).Error)
		require.True(t, done)
		require.Equal(t, ch.New, a.user(t, u.ID).Picture, "request 2 committed")
		assert.Contains(t, a.files(t), ch.New, "the committed row points at a deleted file; X's rollback did %+v", r)
	})
}
