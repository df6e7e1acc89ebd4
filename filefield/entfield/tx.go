package entfield

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mediaclean/mediaclean/filefield"
)

// Client begins ent transactions: the generated *ent.Client.
type Client[T any] interface {
	Tx(ctx context.Context) (T, error)
}

// Tx is the generated *ent.Tx, whose OnCommit takes the generated
// CommitHook, H.
type Tx[H any] interface {
	Commit() error
	Rollback() error
	OnCommit(H)
}

// Committer is the generated ent.Committer interface, for transaction T.
type Committer[T any] interface {
	Commit(ctx context.Context, tx T) error
}

// errNotCommitted is the error of WithTx when a commit hook of the
// application returned without committing.
var errNotCommitted = errors.New("entfield: a commit hook returned without committing the transaction; it was rolled back")

// WithTx runs fn in an ent transaction begun on client and in a new
// filefield scope that fn's context carries: every tracked mutation made
// with that context, and every Save, Replace or Delete, belongs to the
// transaction. If fn returns an error or panics, or the commit fails,
// the transaction and the files roll back: new files are deleted, old
// ones stay. Only after the commit are stale files deleted. A panic is
// re-raised after the rollback.
//
//	res, err := entfield.WithTx(ctx, client, func(ctx context.Context, tx *ent.Tx) error {
//		return tx.User.UpdateOneID(id).SetPicture(ch.New).Exec(ctx)
//	})
//
// The files follow the database's own commit, seen from a commit hook
// (tx.OnCommit) added last, next to it: a commit hook of the application
// that fails after that commit makes WithTx return its error, but the
// stale files still go. A commit that failed on the connection (it may
// have committed), or a transaction fn ended itself, leaves the outcome
// unknown: the error also matches filefield.ErrCommitUnknown and every
// file is kept. The transaction does not inherit ctx's cancellation, so
// that it is not rolled back between fn's success and the commit; fn's
// statements use fn's ctx. A commit hook that panics keeps every file
// too.
//
// ent has no savepoints: WithTx always begins a transaction of its own,
// and its scope is a new outermost one even when ctx carries a scope, so
// that its files follow its own commit. Scopes made inside fn
// (filefield.NewScope) nest in it as usual.
func WithTx[T Tx[H], H ~func(C) C, C Committer[T]](ctx context.Context, client Client[T], fn func(ctx context.Context, tx T) error) (res filefield.Result, err error) {
	ctx, s := filefield.NewScope(filefield.WithoutScope(ctx))
	done, committing := false, false
	defer func() {
		switch {
		case done:
		case committing:
			// A commit hook of the application panicked: the database
			// may have committed. Keep every file.
			s.End(ctx, filefield.ErrCommitUnknown)
		default:
			// fn panicked (or called runtime.Goexit): run rolled the
			// transaction back; roll the files back, then let the
			// panic go on.
			s.Rollback(ctx)
		}
	}()
	tx, err := client.Tx(context.WithoutCancel(ctx))
	if err != nil {
		done = true
		return s.Rollback(ctx), err
	}
	if err := run(ctx, tx, fn); err != nil {
		done = true
		return s.Rollback(ctx), err
	}
	committing = true
	outcome, err := commit[T, H, C](tx)
	done = true
	return s.End(ctx, outcome), err
}

// run runs fn and rolls tx back if fn fails or panics.
func run[T Tx[H], H any](ctx context.Context, tx T, fn func(context.Context, T) error) error {
	ok := false
	defer func() {
		if !ok {
			_ = tx.Rollback()
		}
	}()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	ok = true
	return nil
}

// committerFunc is a Committer for transaction T.
type committerFunc[T any] func(context.Context, T) error

func (f committerFunc[T]) Commit(ctx context.Context, tx T) error { return f(ctx, tx) }

// commit commits tx and returns the outcome for the files (nil, an
// error, or one matching filefield.ErrCommitUnknown) and the error for
// the caller. The outcome is the database commit's own, seen by a commit
// hook added last, which ent runs innermost, next to the commit.
func commit[T Tx[H], H ~func(C) C, C Committer[T]](tx T) (outcome, err error) {
	observed, reached := false, false
	var real error
	tx.OnCommit(H(func(next C) C {
		c, ok := any(committerFunc[T](func(ctx context.Context, tx T) error {
			reached = true
			real = next.Commit(ctx, tx)
			return real
		})).(C)
		if !ok {
			// Not the interface ent generates: let the commit through,
			// and classify the error of tx.Commit instead.
			return next
		}
		observed = true
		return c
	}))
	err = tx.Commit()
	switch {
	case !observed:
		outcome = commitError(err)
	case !reached:
		// An application hook returned before the database's commit:
		// the transaction is still open.
		_ = tx.Rollback()
		if err == nil {
			err = errNotCommitted
		}
		outcome = err
	default:
		outcome = commitError(real)
	}
	if errors.Is(outcome, filefield.ErrCommitUnknown) && !errors.Is(err, filefield.ErrCommitUnknown) {
		if err == nil {
			err = outcome
		} else {
			err = fmt.Errorf("%w: %w", filefield.ErrCommitUnknown, err)
		}
	}
	return outcome, err
}

// commitError is filefield.CommitError, except that a transaction already
// done (sql.ErrTxDone: fn committed or rolled it back itself) leaves the
// outcome unknown too.
func commitError(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("%w: %w", filefield.ErrCommitUnknown, err)
	}
	return filefield.CommitError(err)
}
