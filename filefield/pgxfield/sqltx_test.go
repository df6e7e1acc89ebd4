package pgxfield_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// filefield.WithTx over database/sql on PostgreSQL: a SERIALIZABLE
// transaction that loses to a concurrent one fails with a serialization
// failure (SQLSTATE 40001); it rolls back, the new file goes, and the old
// file stays byte for byte, as the row still names it.
func TestWithTxSerializationFailureKeepsTheOldFile(t *testing.T) {
	t.Parallel()
	_, url := sqltest.Postgres(t).NewDatabase(t)
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE users (id INT PRIMARY KEY, picture TEXT NOT NULL, visits INT NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	pics := filefield.New("pics", rfs, filefield.Options{Dir: "pics"})

	ctx := t.Context()
	first, err := pics.Save(ctx, upload("old"))
	require.NoError(t, err)
	first.Commit(ctx)
	_, err = db.Exec(`INSERT INTO users (id, picture) VALUES (1, $1)`, first.New)
	require.NoError(t, err)
	oldBytes, err := afero.ReadFile(rfs, first.New)
	require.NoError(t, err)

	var stored string
	serializable := &sql.TxOptions{Isolation: sql.LevelSerializable}
	res, err := filefield.WithTx(ctx, db, serializable, func(ctx context.Context, tx *sql.Tx) error {
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT picture FROM users WHERE id = 1`).Scan(&old); err != nil {
			return err
		}
		ch, err := pics.Replace(ctx, old, upload("new"))
		if err != nil {
			return err
		}
		stored = ch.New
		// Another request updates the row and commits first.
		if _, err := db.ExecContext(context.Background(), `UPDATE users SET visits = visits + 1 WHERE id = 1`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET picture = $1 WHERE id = 1`, ch.New)
		return err
	})
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want a PostgreSQL error, got %v", err)
	assert.Equal(t, "40001", pgErr.Code, "a serialization failure")
	assert.Equal(t, []string{stored}, res.Deleted, "the rollback deletes the new file, and only it")

	var picture string
	require.NoError(t, db.QueryRow(`SELECT picture FROM users WHERE id = 1`).Scan(&picture))
	assert.Equal(t, first.New, picture, "the row keeps the old path")
	now, err := afero.ReadFile(rfs, first.New)
	require.NoError(t, err)
	assert.Equal(t, oldBytes, now, "the old file, byte for byte")
	exists, err := afero.Exists(rfs, stored)
	require.NoError(t, err)
	assert.False(t, exists, "the rolled-back upload is removed")
}
