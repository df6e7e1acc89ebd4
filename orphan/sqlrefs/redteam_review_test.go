package sqlrefs_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// Found by a red-team review (it failed before the fix). Queries that hold two statements for SQLite, yet passed oneStatement:
// SQLite quotes identifiers in [brackets] (so an apostrophe inside is
// no quote), and takes '$' inside an identifier (p$a$ is a name, not a
// dollar quote). modernc.org/sqlite runs both statements and returns the
// last one's rows only: the signatures (s.png) are lost without an error.
func TestReviewSQLiteTwoStatementsPassOneStatement(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	for _, q := range []string{
		"SELECT signature AS [it's] FROM users; SELECT picture AS [it's] FROM users",
		"SELECT signature AS p$a$ FROM users; SELECT picture AS p$a$ FROM users",
	} {
		got, err := collect(t.Context(), sqlrefs.New(db, q))
		if err == nil {
			assert.Subset(t, got, []string{"a.jpg", "b.jpg", "s.png"}, "%q: rows of a statement were dropped without an error", q)
		} else {
			assert.ErrorIs(t, err, sqlrefs.ErrMultipleStatements, q)
		}
	}
}

// The same on PostgreSQL through pgx's simple protocol (PgBouncer in
// transaction pooling), which returns the FIRST statement's rows only:
// an E” string reads \' as a quote, a nested /* /* */ */ comment ends
// at its second */, and '$' continues an identifier. oneStatement reads
// each otherwise, sees the semicolon inside a quote, and passes.
func TestReviewPostgresTwoStatementsPassOneStatement(t *testing.T) {
	_, url := sqltest.Postgres(t).NewDatabase(t)
	db, err := sql.Open("pgx", url+"&default_query_exec_mode=simple_protocol")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE users (picture TEXT, signature TEXT)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO users VALUES ('a.jpg', 's.png'), (NULL, ''), ('b.jpg', NULL)`)
	require.NoError(t, err)
	for _, q := range []string{
		`SELECT signature FROM users WHERE signature <> E'it\'s'; SELECT picture FROM users WHERE picture <> E'it\'s'`,
		`SELECT signature FROM users /* a /* nested */ it's */; SELECT picture FROM users -- it's`,
		`SELECT signature AS p$a$ FROM users; SELECT picture AS p$a$ FROM users`,
	} {
		got, err := collect(t.Context(), sqlrefs.New(db, q))
		if err == nil {
			assert.Subset(t, got, []string{"a.jpg", "b.jpg", "s.png"}, "%q: rows of a statement were dropped without an error (got %v)", q, got)
		} else {
			assert.ErrorIs(t, err, sqlrefs.ErrMultipleStatements, q)
		}
	}
}

// MySQL/MariaDB with multiStatements=true: backslash escapes and #
// comments hide the semicolon from oneStatement; the second-result-set
// check in run catches it. This one PASSES (what held): kept as a
// regression guard for that backstop.
func TestReviewMariaDBTwoStatementsPassOneStatement(t *testing.T) {
	srv := sqltest.MariaDB(t)
	db0, u := srv.NewDatabase(t)
	_, err := db0.Exec(`CREATE TABLE users (picture TEXT, signature TEXT)`)
	require.NoError(t, err)
	_, err = db0.Exec(`INSERT INTO users VALUES ('a.jpg', 's.png'), (NULL, ''), ('b.jpg', NULL)`)
	require.NoError(t, err)
	name := u[strings.LastIndexByte(u, '/')+1:]
	db, err := sql.Open("mysql", srv.DriverDSN(name)+"&multiStatements=true")
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{
		`SELECT signature FROM users WHERE signature <> 'it\'s'; SELECT picture FROM users WHERE picture <> 'it\'s'`,
		"SELECT signature FROM users # it's\n; SELECT picture FROM users -- it's",
	} {
		got, err := collect(t.Context(), sqlrefs.New(db, q))
		if err == nil {
			assert.Subset(t, got, []string{"a.jpg", "b.jpg", "s.png"}, "%q: rows of a statement were dropped without an error (got %v)", q, got)
		} else {
			t.Logf("%q: %v", q, err)
		}
	}
}

// flakyBegin fails the first BeginTx of a pgx connection with a
// connection error (as a BEGIN whose answer was lost), then behaves.
type flakyBegin struct {
	driver.Driver
	failed *atomic.Bool
}

type flakyConn struct {
	driver.Conn
	failed *atomic.Bool
}

func (d flakyBegin) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return flakyConn{c, d.failed}, nil
}

func (c flakyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.failed.CompareAndSwap(false, true) {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	}
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c flakyConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

// The REPEATABLE READ transaction falls back on ANY BeginTx error, not
// only on a driver refusing the option: one transient failure of the
// first BEGIN on PostgreSQL and the queries run at READ COMMITTED, a
// snapshot per statement, which the commit's own test shows loses a
// reference that moves between tables. Safe: the error is returned, or
// the transaction is still REPEATABLE READ.
func TestReviewPostgresTransientBeginFallsBackToReadCommitted(t *testing.T) {
	_, url := sqltest.Postgres(t).NewDatabase(t)
	var failed atomic.Bool
	sql.Register("pgx-flaky-begin", flakyBegin{stdlib.GetDefaultDriver(), &failed})
	db, err := sql.Open("pgx-flaky-begin", url)
	require.NoError(t, err)
	defer db.Close()
	got, err := collect(t.Context(), sqlrefs.New(db, "SELECT current_setting('transaction_isolation')"))
	require.True(t, failed.Load())
	if err == nil {
		assert.Equal(t, []string{"repeatable read"}, got, "the references were read without one snapshot after a transient BEGIN failure")
	}
}
