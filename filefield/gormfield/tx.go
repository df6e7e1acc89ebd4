package gormfield

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield"
)

// Transaction runs fn in a gorm transaction (db.Transaction) and in a
// filefield.Scope that the transaction's context carries: every tracked
// change inside it, and every Save, Replace or Delete made with
// tx.Statement.Context, commits or rolls back with it. Stale files are
// deleted after the commit; if fn returns an error or panics, or the
// commit fails, the new files are deleted and the old ones stay.
//
// Inside another Transaction (db already in a transaction) it runs fn in
// a savepoint (gorm's nested transaction) and a child scope: a rollback
// of the savepoint rolls back the files of fn alone, and the outermost
// commit deletes. The Result is empty then. Otherwise the transaction is
// its own, independent of any the caller has open, and so is its scope,
// even when ctx carries one.
func Transaction(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) (filefield.Result, error) {
	_, nested := db.Statement.ConnPool.(gorm.TxCommitter)
	if nested && db.DisableNestedTransaction {
		// gorm runs fn in the transaction itself, with no savepoint: its
		// statements stay whatever fn returns, and so do their files,
		// which the caller's scope finishes.
		return filefield.Result{}, db.WithContext(ctx).Transaction(fn)
	}
	if !nested {
		// A transaction of its own: independent of any scope ctx carries.
		ctx = filefield.WithoutScope(ctx)
	}
	return filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
		if nested {
			// gorm runs fn in a savepoint and releases it: its error says
			// whether it did. fn's statements belong to the savepoint from
			// when gorm has made it until fn returns, before gorm releases
			// it or rolls back to it.
			return noCommit, db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				defer savepoints.push(db.Statement.ConnPool, ctx)()
				return fn(tx)
			})
		}
		tx := db.WithContext(ctx).Begin(opts...)
		if tx.Error != nil {
			return nil, tx.Error
		}
		if err := run(tx, fn); err != nil {
			return nil, err
		}
		return func() error {
			err := tx.Commit().Error
			if errors.Is(err, sql.ErrTxDone) {
				// fn ended the transaction itself: committed or rolled
				// back, nobody here knows which, so every file stays.
				return fmt.Errorf("%w: the transaction was ended inside fn: %w", filefield.ErrCommitUnknown, err)
			}
			return filefield.CommitError(err)
		}, nil
	})
}

// run runs fn and rolls tx back if fn fails or panics.
func run(tx *gorm.DB, fn func(*gorm.DB) error) error {
	ok := false
	defer func() {
		if !ok {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	ok = true
	return nil
}

func noCommit() error { return nil }

// savepoints records, for each transaction, the contexts of the nested
// Transactions open on it, innermost last. The database runs every
// statement of the transaction in its innermost savepoint, whichever
// handle issued it (the outer tx, captured by a nested Transaction's
// closure, is a common slip): the plugin finishes the statement's file
// changes with that savepoint's scope, so that a rollback to the
// savepoint, which undoes the statement, rolls them back too.
var savepoints = savepointStack{m: map[gorm.ConnPool][]context.Context{}}

type savepointStack struct {
	mu sync.Mutex
	m  map[gorm.ConnPool][]context.Context
}

// txOf returns the transaction under pool: a session with PrepareStmt
// wraps it anew for each handle.
func txOf(pool gorm.ConnPool) gorm.ConnPool {
	for {
		p, ok := pool.(*gorm.PreparedStmtTX)
		if !ok || p.Tx == nil {
			return pool
		}
		pool = p.Tx
	}
}

// push records ctx as the innermost savepoint of the transaction pool,
// and returns the function that drops it again.
func (s *savepointStack) push(pool gorm.ConnPool, ctx context.Context) func() {
	pool = txOf(pool)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[pool] = append(s.m[pool], ctx)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.m[pool]
		if i := slices.Index(st, ctx); i >= 0 {
			st = slices.Delete(st, i, i+1)
		}
		if len(st) == 0 {
			delete(s.m, pool)
		} else {
			s.m[pool] = st
		}
	}
}

// innermost returns the context of the innermost savepoint open on the
// transaction pool, or ctx if there is none.
func (s *savepointStack) innermost(pool gorm.ConnPool, ctx context.Context) context.Context {
	pool = txOf(pool)
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[pool]; len(st) > 0 {
		return st[len(st)-1]
	}
	return ctx
}
