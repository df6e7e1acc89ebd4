// Package sqlrefs provides an orphan.Provider that reads stored paths from
// a database/sql database: one or more queries, each returning one column
// of paths. It works with any driver; NULL and empty values are skipped.
//
// A query that returns no path while another query of the same Provider
// returns some fails the run ([ErrEmptyQuery]) unless
// [Options.AllowEmpty] is set: it is the usual sign of a query on the
// wrong column or table, and the files only it should have named would
// look unreferenced beside the others'. When every query returns nothing,
// the Finder's own empty-set guard (orphan.ErrNoReferences) decides.
package sqlrefs

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Provider runs its queries and streams the paths they return.
type Provider struct {
	db      *sql.DB
	queries []string
	opts    Options
	mu      sync.Mutex
	counts  []int      // of the last References that read every query
	samples [][]string // its sample of each query's paths, up to SampleLen
}

// SampleLen is how many of each query's paths Samples keeps.
const SampleLen = 64

// Options configure a Provider. The zero value is what [New] uses.
type Options struct {
	// AllowEmpty lets a query return no path while another returns some:
	// a table that is empty for now, such as receipts before the first
	// one. By default that fails the run with ErrEmptyQuery.
	AllowEmpty bool
}

// New returns a Provider running queries against db, such as
// "SELECT picture FROM users", with the zero Options.
func New(db *sql.DB, queries ...string) *Provider {
	return NewWithOptions(db, Options{}, queries...)
}

// NewWithOptions is New with opts.
func NewWithOptions(db *sql.DB, opts Options, queries ...string) *Provider {
	return &Provider{db: db, queries: slices.Clone(queries), opts: opts}
}

// ErrEmptyQuery is returned, wrapped with the query, by a References call
// in which that query returned no path (no row, or NULL and empty values
// only) while another query returned some, unless Options.AllowEmpty is
// set. The paths of every query have been passed on by then; the orphan
// Finder fails on a provider error and deletes nothing.
var ErrEmptyQuery = errors.New("sqlrefs: a query returned no path while another returned some")

// ErrMultipleStatements is returned for a query that holds more than one
// statement ("SELECT a FROM t; SELECT b FROM u"), or that may: drivers
// return the rows of only one of them (SQLite the last, PostgreSQL's
// simple protocol the first) without an error, and the files only the
// others reference would look unreferenced. Give each query on its own.
var ErrMultipleStatements = errors.New("sqlrefs: a semicolon inside a query, which may hold a second statement (give each query on its own; write a semicolon the query needs as chr(59))")

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
		// refuse the option; try the next. A connection that failed is
		// no such refusal: the run fails rather than lose its snapshot.
		if tx, err = p.db.BeginTx(ctx, opts); err == nil || ctx.Err() != nil || connectionError(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("sqlrefs: begin: %w", err)
	}
	defer tx.Rollback()
	counts := make([]int, len(p.queries))
	samples := make([][]string, len(p.queries))
	for i, q := range p.queries {
		err := run(ctx, tx, q, func(s string) error {
			counts[i]++
			samples[i] = Sample(samples[i], SampleLen, counts[i], s)
			return fn(s)
		})
		if err != nil {
			return fmt.Errorf("sqlrefs: %q: %w", q, err)
		}
	}
	p.mu.Lock()
	p.counts, p.samples = counts, samples
	p.mu.Unlock()
	if empty := slices.Index(counts, 0); empty >= 0 && !p.opts.AllowEmpty && slices.ContainsFunc(counts, func(n int) bool { return n > 0 }) {
		return fmt.Errorf("%w: %q (a wrong column or table? if it is empty for now, set Options.AllowEmpty)", ErrEmptyQuery, p.queries[empty])
	}
	return nil
}

// Samples returns, in the order of the queries, a uniform random sample
// of up to SampleLen of the paths each query returned in the last
// References call that read them all; nil before one. A query on the
// wrong column (an id, a URL where paths are stored) returns values of
// which none names a stored file: a caller can check a few against
// storage.
func (p *Provider) Samples() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.samples == nil {
		return nil
	}
	out := make([][]string, len(p.samples))
	for i, s := range p.samples {
		out[i] = slices.Clone(s)
	}
	return out
}

// Sample adds v, the n-th value (from 1) of a stream, to sample, a
// uniform random sample of up to k of the stream's values so far
// (reservoir sampling), and returns it.
func Sample(sample []string, k, n int, v string) []string {
	if len(sample) < k {
		return append(sample, v)
	}
	if j := rand.IntN(n); j < k {
		sample[j] = v
	}
	return sample
}

// Counts returns how many paths (values neither NULL nor empty) each
// query returned, in the order of the queries, in the last References
// call that read them all; nil before one. A query that returned none
// while another did is the usual sign of a wrong column or table: the
// files only it references would look unreferenced.
func (p *Provider) Counts() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.counts)
}

// connectionError reports whether err says the connection failed (rather
// than that the database or driver refused what was asked).
func connectionError(err error) bool {
	var ne net.Error
	var retry interface{ SafeToRetry() bool } // pgx's connection errors
	return errors.As(err, &ne) || errors.As(err, &retry) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// oneStatement returns ErrMultipleStatements if q holds a semicolon other
// than at its end (trailing space aside). It does not try to tell a
// semicolon inside a quote or a comment from one between statements:
// quoting and comments differ between databases (nested comments,
// backslash escapes, E” strings, [identifiers], $tags$), and a reading
// that errs lets a second statement through. A semicolon a query needs
// can be written without one: chr(59) or CHAR(59).
func oneStatement(q string) error {
	if strings.Contains(strings.TrimRight(q, "; \t\n\r\f\v"), ";") {
		return ErrMultipleStatements
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
