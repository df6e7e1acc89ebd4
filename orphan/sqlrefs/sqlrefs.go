// Package sqlrefs provides an orphan.Provider that reads stored paths from
// a database/sql database: one or more queries, each returning one column
// of paths. It works with any driver; NULL and empty values are skipped.
package sqlrefs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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

// ErrMultipleStatements is returned for a query that holds more than one
// statement ("SELECT a FROM t; SELECT b FROM u"), or that may: drivers
// return the rows of only one of them (SQLite the last, PostgreSQL's
// simple protocol the first) without an error, and the files only the
// others reference would look unreferenced. Give each query on its own.
var ErrMultipleStatements = errors.New("sqlrefs: more than one statement in a query (give each query on its own)")

// References implements orphan.Provider. Every query runs inside one
// read-only transaction at the isolation level REPEATABLE READ, so the set
// is one consistent snapshot (PostgreSQL's default, READ COMMITTED, takes
// a snapshot per statement, and a row that moves its path from one queried
// table to another would be in neither); where the driver refuses that
// level or read-only transactions, it falls back to what it accepts, which
// is one snapshot on SQLite and on MySQL's InnoDB. A query holding more
// than one statement is refused ([ErrMultipleStatements]), before any
// query runs. Any error, including one met while iterating rows, is
// returned.
func (p *Provider) References(ctx context.Context, fn func(string) error) (err error) {
	for _, q := range p.queries {
		if err := oneStatement(q); err != nil {
			return fmt.Errorf("sqlrefs: %q: %w", q, err)
		}
	}
	var tx *sql.Tx
	for _, opts := range []*sql.TxOptions{
		{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
		{ReadOnly: true},
		nil,
	} {
		// Drivers without an isolation level or read-only transactions
		// refuse the option; try the next.
		if tx, err = p.db.BeginTx(ctx, opts); err == nil || ctx.Err() != nil {
			break
		}
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

// oneStatement returns ErrMultipleStatements if q may hold more than one
// statement: a semicolon outside quotes and comments with anything but
// space and comments after it. It reads quoted text as standard SQL does
// (single and double quotes, PostgreSQL's $tag$ quoting and MySQL's
// backquotes, a doubled quote inside), backslashes as
// plain characters, and comments as -- and /* */. Where a database reads
// q otherwise (MySQL's backslash escapes and # comments, nested /* */),
// it finds more semicolons than there are, and refuses; an unterminated
// quote or comment is refused too. What it passes, every database reads
// as one statement.
func oneStatement(q string) error {
	ended := false // a semicolon was seen: only space and comments may follow
	for i := 0; i < len(q); {
		end, text, ok := skip(q, i)
		switch {
		case !ok:
			return ErrMultipleStatements // an unterminated quote or comment
		case q[i] == ';':
			ended = true
		case text && ended:
			return ErrMultipleStatements
		}
		i = end
	}
	return nil
}

// skip returns the end of the token of q at i: a quoted string, a
// comment, a semicolon, a space or another character; text says whether
// it is more than space or a comment, ok false that a quote or comment
// does not end.
func skip(q string, i int) (end int, text, ok bool) {
	c := q[i]
	switch {
	case c == '\'' || c == '"' || c == '`':
		// A doubled quote reads as two quoted strings: the same text.
		n := strings.IndexByte(q[i+1:], c)
		return i + n + 2, true, n >= 0
	case strings.HasPrefix(q[i:], "--"):
		n := strings.IndexByte(q[i:], '\n')
		if n < 0 {
			return len(q), false, true
		}
		return i + n + 1, false, true
	case strings.HasPrefix(q[i:], "/*"):
		n := strings.Index(q[i+2:], "*/")
		return i + n + 4, false, n >= 0
	case c == '$':
		tag := dollarTag(q[i:])
		if tag == "" {
			return i + 1, true, true
		}
		n := strings.Index(q[i+len(tag):], tag)
		return i + n + 2*len(tag), true, n >= 0
	case c == ';':
		return i + 1, false, true
	case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
		return i + 1, false, true
	}
	return i + 1, true, true
}

// dollarTag returns the opening tag of a PostgreSQL dollar quote at the
// start of s ("$$", "$body$"), or "" if s does not start with one ($1).
func dollarTag(s string) string {
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '$':
			return s[:i+1]
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || i > 1 && c >= '0' && c <= '9':
		default:
			return ""
		}
	}
	return ""
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
	if err := rows.Err(); err != nil {
		return err
	}
	// A second result set means a second statement that oneStatement
	// could not see (a procedure's results): its rows are not read here.
	if rows.NextResultSet() {
		return ErrMultipleStatements
	}
	return rows.Err()
}
