package pgxfield_test

// Review, session 13: pgxfield.WithTx's ErrNoScope check.

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/pgxfield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Loss (found in a review of session 13; fixed: refused). fn begins a savepoint by hand on its transaction (tx.Begin) and
// runs WithTx on it, as TestS13HandMadeSavepointOfTheSameTxIsCovered
// does. covered() accepts it (same connection, the scope of fn), and the
// inner WithTx's RELEASE hands the change to fn's scope. The hand-made
// savepoint is then rolled back by hand (the row holds the first file
// again) and the outer transaction commits: fn's scope commits the
// change and deletes the first file, which the committed row holds. No
// scope covers the hand-made savepoint, so WithTx on it should be
// refused (ErrNoScope) just as a savepoint of a bare transaction is.
func TestS13ReviewHandSavepointRolledBackAfterInnerWithTx(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)

	var innerErr error
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		sp, err := tx.Begin(ctx) // SAVEPOINT, by hand
		if err != nil {
			return err
		}
		_, innerErr = a.replace(ctx, sp, "second", ok) // savepoint of sp, released
		return sp.Rollback(ctx)                        // ROLLBACK TO the hand-made savepoint
	})
	require.NoError(t, err)
	require.Equal(t, first, a.picture(t), "the row holds the first file")
	assert.Contains(t, storagetest.Files(t, a.fsys), first,
		"the committed row's file was deleted (inner WithTx said %v)", innerErr)
}

// Held. WithTx on fn's own tx (not a hand-made savepoint), rolled back
// by its fn: the first file stays.
func TestS13ReviewNestedWithTxRollbackKeepsFirst(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	_, err = pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := a.replace(ctx, tx, "second", func(context.Context, pgx.Tx) error { return assert.AnError })
		assert.ErrorIs(t, err, assert.AnError)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, first, a.picture(t))
	assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys))
}

// Held. A pgx.Conn (not a pool) transaction begun by hand with a user's
// own scope: accepted, and the files follow the user's scope.
func TestS13ReviewConnTxWithOwnScope(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	pc, err := a.pool.Acquire(ctx)
	require.NoError(t, err)
	defer pc.Release()
	sctx, s := filefield.NewScope(ctx)
	tx, err := pc.Conn().Begin(ctx)
	require.NoError(t, err)
	_, err = a.replace(sctx, tx, "second", ok)
	require.NoError(t, err)
	assert.Contains(t, storagetest.Files(t, a.fsys), first)
	require.NoError(t, tx.Rollback(ctx))
	s.Rollback(ctx)
	assert.Equal(t, first, a.picture(t))
	assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys))
}
