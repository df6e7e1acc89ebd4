package pgxfield_test

// Red team, session 13: pgx transactions and savepoints.

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/pgxfield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Loss (found in session 13). WithTx on a pgx.Tx runs fn in a savepoint,
// but its scope was a child only when ctx carried a scope; a caller that
// began the transaction itself (pool.Begin, a framework's tx) with no
// scope got an outermost scope for the savepoint. RELEASE SAVEPOINT
// committed that scope, which deleted the old file at once; the real
// transaction then rolled back and the row held the deleted old path. Now
// WithTx refuses (filefield.ErrNoScope) and stores nothing.
func TestS13SavepointOnBareTxDeletesOldBeforeOuterCommit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)

	tx, err := a.pool.Begin(ctx) // the caller's own transaction, no scope
	require.NoError(t, err)
	res, err := a.replace(ctx, tx, "second", ok) // a savepoint of tx
	require.ErrorIs(t, err, filefield.ErrNoScope)
	require.NoError(t, tx.Rollback(ctx)) // the real transaction rolls back

	assert.Equal(t, first, a.picture(t), "the row still holds the first file")
	assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys),
		"the row's file was deleted at RELEASE SAVEPOINT, or an upload was left: %+v", res)
}

// Loss (found in session 13), same cause: ctx carries the scope of
// transaction A, and fn opens a savepoint of a different transaction B
// (begun by hand). The savepoint's scope became a child of A's: A's
// commit deleted the old file although B, which wrote the row, rolled
// back. Now the savepoint is refused (filefield.ErrNoScope).
func TestS13SavepointOfAnotherTxJoinsTheWrongScope(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)

	txB, err := a.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, txA pgx.Tx) error {
		_, err := a.replace(ctx, txB, "second", ok) // savepoint of B, scope child of A's
		return err
	})
	require.ErrorIs(t, err, filefield.ErrNoScope)
	require.NoError(t, txB.Rollback(ctx))

	assert.Equal(t, first, a.picture(t))
	assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys),
		"A's commit deleted the file the row (B rolled back) holds, or an upload was left")
}

// A savepoint the caller begins by hand on fn's transaction is refused
// (ErrNoScope): its rollback by hand would be seen by no scope, and the
// outer commit would delete the old file the row holds again (found by a
// review of session 13's first fix, which compared connections).
func TestS13HandMadeSavepointIsRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)

	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		_, err = a.replace(ctx, sp, "second", ok)
		assert.ErrorIs(t, err, filefield.ErrNoScope)
		if err := sp.Rollback(ctx); err != nil {
			return err
		}
		_, err = a.replace(ctx, tx, "second", ok) // fn's own tx: covered
		return err
	})
	require.NoError(t, err)
	second := a.picture(t)
	assert.NotEqual(t, first, second)
	assert.Equal(t, []string{second}, storagetest.Files(t, a.fsys))
}

// Held. A savepoint that released, then an outer failure: the outer
// rollback rolls back the savepoint's files (new gone, old kept).
func TestS13ReleasedSavepointThenOuterErrorKeepsOld(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	errOuter := errors.New("outer")
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := a.replace(ctx, tx, "inner", ok)
		require.NoError(t, err)
		_, err = a.replace(ctx, tx, "inner2", ok)
		require.NoError(t, err)
		return errOuter
	})
	require.ErrorIs(t, err, errOuter)
	assert.Equal(t, first, a.picture(t))
	assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys))
}

// Held. A panic in a savepoint's fn that the outer fn recovers: the
// savepoint rolls back with its files, the outer transaction commits its
// own replace.
func TestS13RecoveredSavepointPanicThenOuterCommit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	res, err := pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) (err error) {
		func() {
			defer func() { _ = recover() }()
			_, _ = a.replace(ctx, tx, "boom", func(context.Context, pgx.Tx) error { panic("x") })
		}()
		assert.Equal(t, first, a.pictureTx(t, ctx, tx))
		_, err = a.replace(ctx, tx, "kept", ok)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first}, res.Deleted)
	assert.Equal(t, []string{a.picture(t)}, storagetest.Files(t, a.fsys))
}

// Held (leak only). fn rolls its savepoint back itself and returns nil:
// the release says ErrTxClosed (ErrCommitUnknown), every file of the
// savepoint is kept; the row holds the first file, which stays.
func TestS13SavepointEndedInsideFnKeepsFiles(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := a.replace(ctx, tx, "inner", func(ctx context.Context, sp pgx.Tx) error {
			return sp.Rollback(ctx) // rolled back to the savepoint by hand
		})
		assert.ErrorIs(t, err, filefield.ErrCommitUnknown)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, first, a.picture(t))
	assert.Contains(t, storagetest.Files(t, a.fsys), first)
}

// Held. A context cancelled after fn's last statement: the commit does
// not inherit the cancellation; either it commits and deletes the old
// file (row has the new one) or the row keeps the old file.
func TestS13CancelledContextAtEndOfFn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	_, err := a.replace(t.Context(), a.pool, "first", ok)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	_, err = a.replace(ctx, a.pool, "second", func(context.Context, pgx.Tx) error { cancel(); return nil })
	now := a.picture(t)
	assert.Contains(t, storagetest.Files(t, a.fsys), now, "err %v", err)
}

// Loss (found in session 13, fixed). A savepoint's context outlives its WithTx (captured by
// a helper closure) and is used for a second savepoint of the same, still
// open transaction; the handler registers its upload the README's way
// (ScopeFrom(ctx).Add). The second savepoint's scope is a child of the
// released one: Add accepts, and its release finishes the change as
// "committed" at once (Scope.Commit's fallback reads the released child's
// state), deleting the old file before the transaction commits. The
// transaction then fails; the row holds the deleted file.
func TestS13StaleSavepointContextDeletesBeforeCommit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	ch, err := a.pics.Replace(ctx, first, upload("second")) // before the transaction
	require.NoError(t, err)
	defer ch.Rollback(ctx)

	errLater := errors.New("a later statement failed")
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		var inSavepoint func(fn func(context.Context, pgx.Tx) error) error
		_, err := pgxfield.WithTx(ctx, tx, func(spCtx context.Context, _ pgx.Tx) error {
			inSavepoint = func(fn func(context.Context, pgx.Tx) error) error {
				_, err := pgxfield.WithTx(spCtx, tx, fn) // spCtx captured
				return err
			}
			return nil
		})
		require.NoError(t, err)
		err = inSavepoint(func(ctx context.Context, sp pgx.Tx) error {
			if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
				return err
			}
			_, err := sp.Exec(ctx, `UPDATE users SET picture = $1 WHERE id = 1`, ch.New)
			return err
		})
		if err != nil {
			return err
		}
		assert.Contains(t, storagetest.Files(t, a.fsys), first, "deleted at a savepoint's release")
		return errLater
	})
	require.Error(t, err)
	assert.Equal(t, first, a.picture(t))
	assert.Contains(t, storagetest.Files(t, a.fsys), first, "the row's file is gone")
}

func (a *app) pictureTx(t *testing.T, ctx context.Context, tx pgx.Tx) string {
	var p string
	require.NoError(t, tx.QueryRow(ctx, `SELECT picture FROM users WHERE id = 1`).Scan(&p))
	return p
}
