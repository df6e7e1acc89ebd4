// Package sqlrefs provides an orphan.Provider that reads stored paths from
// a database/sql database: one or more queries, each returning one column
// of paths. It works with any driver; NULL and empty values are skipped.
package sqlrefs

import (
	"context"
	"database/sql"
	"fmt"
)

// Provider runs its queries and streams the paths they return.
type Provider struct {
	db      *sql.DB
	queries []string
}

// New returns a Provider running queries against db, such as
// "SELECT picture FROM users".
func New(db *sql.DB, queries ...string) *Provider {
	return &Provider{db: db, queries: queries}
}

// References implements orphan.Provider. Every query runs inside one
// read-only transaction where the driver supports it, so the set is one
// consistent snapshot; any error, including one met while iterating rows,
// is returned.
func (p *Provider) References(ctx context.Context, fn func(string) error) (err error) {
	tx, err := p.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil && ctx.Err() == nil {
		// Drivers without read-only transactions refuse the option; a
		// plain transaction is still one snapshot on most databases.
		tx, err = p.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return fmt.Errorf("sqlrefs: begin: %w", err)
	}
	defer tx.Rollback()
	for _, q := range p.queries {
		if err := run(ctx, tx, q, fn); err != nil {
			return fmt.Errorf("sqlrefs: %q: %w", q, err)
		}
	}
	return nil
}

func run(ctx context.Context, tx *sql.Tx, q string, fn func(string) error) error {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if len(cols) != 1 {
		return fmt.Errorf("returns %d columns, want 1", len(cols))
	}
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s.Valid && s.String != "" {
			if err := fn(s.String); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}
