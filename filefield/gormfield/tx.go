package gormfield

import (
	"context"
	"database/sql"

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
// commit deletes. The Result is empty then.
func Transaction(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error, opts ...*sql.TxOptions) (filefield.Result, error) {
	return filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
		// gorm commits (or releases the savepoint) inside: its error says
		// whether it did.
		return noCommit, db.WithContext(ctx).Transaction(fn, opts...)
	})
}

func noCommit() error { return nil }
