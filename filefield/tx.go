package filefield

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// WithTx runs fn inside a database transaction, in a new Scope that the
// context given to fn carries: every Save, Replace and Delete made with
// that context belongs to the transaction by itself. If fn returns an
// error or panics, or tx.Commit fails, the transaction and every file
// change roll back: new files are deleted and old files stay. Only after
// a successful tx.Commit are old files deleted. A panic is re-raised
// after the rollback.
//
// The error is fn's, the commit's or BeginTx's, unwrapped, except that a
// commit that failed on the connection (the request may have reached the
// server: EOF, a reset, a network error) also matches ErrCommitUnknown,
// and every file is kept. So does a transaction fn committed or rolled
// back itself (tx.Commit then says sql.ErrTxDone, whichever it was). The
// Result says what the file commit or rollback did.
//
// The transaction is a new one on db, independent of any transaction the
// caller has open: its scope is a new outermost scope even when ctx
// carries one, so that its files follow its own commit, not the outer
// scope's end.
func WithTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(ctx context.Context, tx *sql.Tx) error) (Result, error) {
	return RunInScope(WithoutScope(ctx), func(ctx context.Context) (commit func() error, err error) {
		tx, err := db.BeginTx(ctx, opts)
		if err != nil {
			return nil, err
		}
		if err := runOrRollback(ctx, fn, tx); err != nil {
			return nil, err
		}
		return func() error {
			err := tx.Commit()
			if errors.Is(err, sql.ErrTxDone) {
				// fn ended the transaction itself: committed or rolled
				// back, nobody here knows which.
				return fmt.Errorf("%w: the transaction was ended inside fn: %w", ErrCommitUnknown, err)
			}
			return CommitError(err)
		}, nil
	})
}

// CommitError returns a commit's error, wrapped to match also
// ErrCommitUnknown when it leaves the outcome unknown: an error of the
// connection (EOF, a reset, a broken pipe, a net.Error, or one whose
// SafeToRetry method says it may have been sent, as pgx's connection
// errors do through database/sql), after which the request may have
// reached the server, rather than one the server answered. database/sql's
// ErrTxDone (rolled back already), driver.ErrBadConn and an error whose
// SafeToRetry says true (never sent) are definite. Integrations pass
// their commit errors through it, or classify them better where their
// driver can (pgxfield does).
func CommitError(err error) error {
	if err == nil || errors.Is(err, sql.ErrTxDone) || errors.Is(err, driver.ErrBadConn) {
		// ErrTxDone: rolled back already; ErrBadConn: never sent.
		return err
	}
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) {
		if retry.SafeToRetry() {
			return err // never sent
		}
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, err)
	}
	return err
}

// runOrRollback runs fn and rolls tx back if it fails or panics.
func runOrRollback(ctx context.Context, fn func(context.Context, *sql.Tx) error, tx *sql.Tx) (err error) {
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

// RunInScope is WithTx for any transaction API: it runs work in a new
// Scope (see NewScope), and work returns the function that commits its
// transaction. If work fails or panics, or commit fails, the scope rolls
// back (work must roll its own transaction back then); after a successful
// commit the scope commits, deleting the stale files. A commit error that
// matches ErrCommitUnknown keeps every file instead, as does a commit
// that panics (it may have committed). A panic is re-raised after the
// files are settled. The pgx and GORM integrations are built on it.
func RunInScope(ctx context.Context, work func(ctx context.Context) (commit func() error, err error)) (res Result, err error) {
	sctx, s := NewScope(ctx)
	done, committing := false, false
	defer func() {
		switch {
		case done:
		case committing:
			// commit panicked (or called runtime.Goexit): the transaction
			// may have committed, so every file stays; then the panic
			// goes on.
			s.End(ctx, ErrCommitUnknown)
		default:
			// work panicked: roll back, then let the panic go on.
			s.Rollback(ctx)
		}
	}()
	commit, err := work(sctx)
	if err != nil {
		done = true
		return s.Rollback(ctx), err
	}
	committing = true
	err = commit()
	done = true
	return s.End(ctx, err), err
}
