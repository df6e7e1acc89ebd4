package sqlrefs_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE users (picture TEXT, signature TEXT);
		INSERT INTO users VALUES ('a.jpg', 's.png'), (NULL, ''), ('b.jpg', NULL);`)
	require.NoError(t, err)
	return db
}

func collect(ctx context.Context, p *sqlrefs.Provider) ([]string, error) {
	var out []string
	err := p.References(ctx, func(s string) error { out = append(out, s); return nil })
	return out, err
}

func TestQueriesStreamNonEmptyValues(t *testing.T) {
	t.Parallel()
	got, err := collect(t.Context(), sqlrefs.New(openDB(t), "SELECT picture FROM users", "SELECT signature FROM users"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"a.jpg", "b.jpg", "s.png"}, got, "NULL and empty values are skipped")
}

// Counts says how many paths each query returned: a query that returned
// none beside others is the sign of a wrong column or table. A failed
// run keeps the counts of the last complete one.
func TestCountsPerQuery(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	p := sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, "SELECT picture FROM users", "SELECT signature FROM users", "SELECT picture FROM users WHERE picture = 'x'")
	assert.Nil(t, p.Counts())
	_, err := collect(t.Context(), p)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1, 0}, p.Counts())
	_, err = db.Exec(`DROP TABLE users`)
	require.NoError(t, err)
	_, err = collect(t.Context(), p)
	require.Error(t, err)
	assert.Equal(t, []int{2, 1, 0}, p.Counts())
}

func TestErrorsAreReturned(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	for _, q := range []string{"SELECT picture FROM no_such_table", "SELECT picture, signature FROM users", "NOT SQL"} {
		_, err := collect(t.Context(), sqlrefs.New(db, "SELECT picture FROM users", q))
		assert.Error(t, err, q)
		assert.Contains(t, err.Error(), "sqlrefs", q)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := collect(ctx, sqlrefs.New(db, "SELECT picture FROM users"))
	assert.ErrorIs(t, err, context.Canceled)
}

// A query is one statement: trailing semicolons are fine; any other
// semicolon, even inside a quote or a comment, is refused before any
// query runs, since databases read quotes and comments differently.
func TestOneStatementPerQuery(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	for _, q := range []string{
		"SELECT picture FROM users;",
		"SELECT picture FROM users ;; \n",
		"SELECT picture FROM users WHERE picture <> 'it''s' -- a comment\n",
		"SELECT picture FROM users WHERE picture <> 'a' || char(59) || 'b'",
	} {
		got, err := collect(t.Context(), sqlrefs.New(db, q))
		require.NoError(t, err, q)
		assert.ElementsMatch(t, []string{"a.jpg", "b.jpg"}, got, q)
	}
	for _, q := range []string{
		"SELECT picture FROM users; SELECT signature FROM users",
		"SELECT picture FROM users;SELECT 1",
		"SELECT picture FROM users; -- x\nSELECT signature FROM users",
		"SELECT picture FROM users; -- a trailing comment",
		"SELECT picture FROM users WHERE picture <> 'x;y'",
		"SELECT picture FROM users /* ; */",
		"SELECT signature AS [it's] FROM users; SELECT picture AS [it's] FROM users",
		"SELECT $body$;$body$",
	} {
		called := false
		err := sqlrefs.New(db, "SELECT signature FROM users", q).References(t.Context(), func(string) error { called = true; return nil })
		assert.ErrorIs(t, err, sqlrefs.ErrMultipleStatements, q)
		assert.False(t, called, "%q: refused before any query runs", q)
	}
}
