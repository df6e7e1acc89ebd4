package sqlrefs_test

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

// plainDriver is the least a database/sql driver implements: no
// ConnBeginTx, so no read-only transactions. Every query returns the
// column "path" with the rows "a.jpg" and "b.jpg".
type plainDriver struct{}

func (plainDriver) Open(string) (driver.Conn, error) { return plainConn{}, nil }

type plainConn struct{}

func (plainConn) Prepare(string) (driver.Stmt, error) { return plainStmt{}, nil }
func (plainConn) Close() error                        { return nil }
func (plainConn) Begin() (driver.Tx, error)           { return plainTx{}, nil }

type plainTx struct{}

func (plainTx) Commit() error   { return nil }
func (plainTx) Rollback() error { return nil }

type plainStmt struct{}

func (plainStmt) Close() error                               { return nil }
func (plainStmt) NumInput() int                              { return 0 }
func (plainStmt) Exec([]driver.Value) (driver.Result, error) { return nil, errors.New("read only") }
func (plainStmt) Query([]driver.Value) (driver.Rows, error) {
	return &plainRows{rows: []string{"a.jpg", "b.jpg"}}, nil
}

type plainRows struct{ rows []string }

func (*plainRows) Columns() []string { return []string{"path"} }
func (*plainRows) Close() error      { return nil }
func (r *plainRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	dest[0], r.rows = r.rows[0], r.rows[1:]
	return nil
}

func init() { sql.Register("sqlrefs-plain", plainDriver{}) }

// TestDriverWithoutReadOnlyTransactions: "works with any driver" includes
// drivers that refuse the read-only option; the provider falls back to a
// plain transaction.
func TestDriverWithoutReadOnlyTransactions(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlrefs-plain", "")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	require.Error(t, err, "the driver must refuse read-only transactions for this test to mean anything")
	got, err := collect(t.Context(), sqlrefs.New(db, "SELECT path FROM files"))
	require.NoError(t, err)
	assert.Equal(t, []string{"a.jpg", "b.jpg"}, got)
}
