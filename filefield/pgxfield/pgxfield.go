// Package pgxfield runs pgx transactions in a filefield.Scope, as
// filefield.WithTx does for database/sql: pgx has no transaction hooks,
// so the scope is finished here, after Commit returns.
//
// Every Save, Replace and Delete made with the context given to fn
// belongs to the transaction: if fn returns an error or panics, or the
// commit fails, the new files are deleted and the old ones stay; only
// after a successful commit are the stale files deleted.
//
// Nested calls (db is itself a pgx.Tx) run in a savepoint and a child
// scope: a failure rolls back the savepoint and the files of fn alone,
// and the outermost commit deletes. A savepoint of a transaction that no
// scope covers is refused (filefield.ErrNoScope).
package pgxfield

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mediaclean/mediaclean/filefield"
)

// Beginner starts a transaction: *pgxpool.Pool, *pgx.Conn, and pgx.Tx
// (a savepoint) all do.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// WithTx runs fn in a transaction begun on db and in a new filefield
// scope that fn's context carries. The error is Begin's, fn's or
// Commit's, unwrapped, except that a commit that failed without an
// answer from the server (the connection broke: it may have committed)
// also matches filefield.ErrCommitUnknown, and every file is kept. The
// Result says what the file commit or rollback did.
//
// When db is a pgx.Tx, the transaction is a savepoint of it and the scope
// a child of the scope ctx carries: a rollback of the savepoint rolls back
// fn's files alone, and the outermost commit deletes (the Result is empty
// then). db must be the transaction a WithTx gave its fn, with that fn's
// context (or a context carrying a scope the caller made itself): without
// a scope, or for another pgx.Tx under a WithTx's scope (another
// transaction, or a savepoint begun by hand, whose rollback no scope would
// see), WithTx begins nothing and returns an error matching
// filefield.ErrNoScope, since old files could otherwise be deleted while
// a row still holds them. Any other db (a pool, a connection) begins a
// transaction of its own, independent of any the caller has open, so its
// scope is a new outermost one even when ctx carries a scope.
func WithTx(ctx context.Context, db Beginner, fn func(ctx context.Context, tx pgx.Tx) error) (filefield.Result, error) {
	if outer, savepoint := db.(pgx.Tx); savepoint {
		if err := covered(ctx, outer); err != nil {
			return filefield.Result{}, err
		}
	} else {
		ctx = filefield.WithoutScope(ctx)
	}
	return filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
		tx, err := db.Begin(ctx)
		if err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, txKey{}, scopedTx{tx: tx, scope: filefield.ScopeFrom(ctx)})
		if err := run(ctx, tx, fn); err != nil {
			return nil, err
		}
		// The commit is the transaction's last word: a cancelled context
		// must not leave it half done, so it does not inherit the
		// cancellation.
		return func() error { return commitError(tx.Commit(context.WithoutCancel(ctx))) }, nil
	})
}

// txKey is the context key of the transaction a WithTx began.
type txKey struct{}

// scopedTx is a transaction WithTx began, and the scope that covers it.
type scopedTx struct {
	tx    pgx.Tx
	scope *filefield.Scope
}

// covered returns an error matching filefield.ErrNoScope unless ctx
// carries a scope that covers a savepoint of tx: it has none, or it is
// the scope of a WithTx whose transaction is not tx (another transaction
// begun by hand, or a savepoint begun by hand, whose rollback that scope
// would not see). A scope the caller made itself is trusted.
func covered(ctx context.Context, tx pgx.Tx) error {
	s := filefield.ScopeFrom(ctx)
	if s == nil {
		return fmt.Errorf("pgxfield: a savepoint of a transaction begun outside WithTx, and ctx carries no scope: %w", filefield.ErrNoScope)
	}
	if v, ok := ctx.Value(txKey{}).(scopedTx); ok && v.scope == s && v.tx != tx {
		return fmt.Errorf("pgxfield: a savepoint of a transaction other than the one ctx's scope covers (begun by hand?): %w", filefield.ErrNoScope)
	}
	return nil
}

// run runs fn and rolls tx back if fn fails or panics.
func run(ctx context.Context, tx pgx.Tx, fn func(context.Context, pgx.Tx) error) error {
	ok := false
	defer func() {
		if !ok {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	ok = true
	return nil
}

// commitError marks a commit error that leaves the outcome unknown
// (filefield.ErrCommitUnknown, which keeps every file): any but an answer
// of the server (a *pgconn.PgError, or pgx.ErrTxCommitRollback: it rolled
// back) or a request pgconn says was never sent. A transaction already
// closed (pgx.ErrTxClosed) was ended inside fn, committed or rolled back:
// unknown too.
func commitError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil, errors.As(err, &pgErr), errors.Is(err, pgx.ErrTxCommitRollback), pgconn.SafeToRetry(err) && !errors.Is(err, pgx.ErrTxClosed):
		return err
	}
	return fmt.Errorf("%w: %w", filefield.ErrCommitUnknown, err)
}
