package filefield

import (
	"context"
	"database/sql"
	"sync"
)

// Batch groups the pending changes of several fields that one database
// transaction records, so they commit or roll back together. A path that
// one change stores is never deleted by another change of the same batch
// (delete-then-recreate, or hash-named files). The zero Batch is ready to
// use and safe for concurrent use.
type Batch struct {
	mu      sync.Mutex
	changes []*Change
}

// Add adds c to the batch and returns it with err unchanged, so that a call
// can be wrapped: ch, err := b.Add(field.Replace(ctx, old, up)). A nil c is
// ignored.
func (b *Batch) Add(c *Change, err error) (*Change, error) {
	if c != nil {
		b.mu.Lock()
		b.changes = append(b.changes, c)
		b.mu.Unlock()
	}
	return c, err
}

func (b *Batch) take() []*Change {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Change(nil), b.changes...)
}

// Commit commits every change, in order, and returns what they did.
func (b *Batch) Commit(ctx context.Context) Result {
	changes := b.take()
	inUse := map[string]bool{}
	for _, c := range changes {
		if c.New != "" {
			inUse[c.New] = true
		}
	}
	var r Result
	for _, c := range changes {
		r.merge(c.finish(ctx, committed, inUse))
	}
	return r
}

// Rollback rolls back every change, in reverse order.
func (b *Batch) Rollback(ctx context.Context) Result {
	changes := b.take()
	var r Result
	for i := len(changes) - 1; i >= 0; i-- {
		r.merge(changes[i].Rollback(ctx))
	}
	return r
}

// WithTx runs fn inside a database transaction and finishes the files with
// it. fn records its file changes in the batch it is given (b.Add). If fn
// returns an error or panics, or tx.Commit fails, the transaction and every
// file change roll back: new files are deleted and old files stay. Only
// after a successful tx.Commit are old files deleted. A panic is re-raised
// after the rollback.
//
// The error is fn's, the commit's or BeginTx's, unwrapped; the Result says
// what the file commit or rollback did.
func WithTx(ctx context.Context, db *sql.DB, opts *sql.TxOptions, fn func(tx *sql.Tx, b *Batch) error) (res Result, err error) {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return Result{}, err
	}
	b := &Batch{}
	done := false
	defer func() {
		if done {
			return
		}
		// fn panicked (or called runtime.Goexit): roll back, then let the
		// panic go on.
		_ = tx.Rollback()
		b.Rollback(ctx)
		if p := recover(); p != nil {
			panic(p)
		}
	}()
	if err := fn(tx, b); err != nil {
		done = true
		_ = tx.Rollback()
		return b.Rollback(ctx), err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return b.Rollback(ctx), err
	}
	return b.Commit(ctx), nil
}
