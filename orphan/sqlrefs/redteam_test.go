package sqlrefs_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// TestMain stops the PostgreSQL server the redteam tests start.
func TestMain(m *testing.M) { sqltest.Main(m) }

// A --refs-sql holding two statements ("SELECT picture FROM users;
// SELECT signature FROM users", an operator joining two columns the
// way psql takes them) must either stream every row of both or fail:
// the package promises that any error is returned and that the provider
// streams the paths its queries return. modernc.org/sqlite runs both
// and hands back only the LAST statement's rows, with no error: a.jpg
// and b.jpg silently disappear from the reference set.
func TestRedteamSQLiteMultiStatementLosesRows(t *testing.T) {
	got, err := collect(t.Context(), sqlrefs.New(openDB(t), "SELECT picture FROM users; SELECT signature FROM users"))
	if err == nil {
		assert.Subset(t, got, []string{"a.jpg", "b.jpg", "s.png"},
			"two statements in one query: rows of the first statement were dropped without an error")
	}
}

// The same through pgx in simple-protocol mode (the mode PgBouncer in
// transaction pooling needs: postgres://...?default_query_exec_mode=simple_protocol).
// Here only the FIRST statement's rows come back; the second result set
// is never read, and no error is returned.
func TestRedteamPostgresSimpleProtocolMultiStatementLosesRows(t *testing.T) {
	_, url := sqltest.Postgres(t).NewDatabase(t)
	db, err := sql.Open("pgx", url+"&default_query_exec_mode=simple_protocol")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE users (picture TEXT, signature TEXT)`)
	require.NoError(t, err)
	_, err = db.Exec(`INSERT INTO users VALUES ('a.jpg', 's.png'), (NULL, ''), ('b.jpg', NULL)`)
	require.NoError(t, err)
	got, err := collect(t.Context(), sqlrefs.New(db, "SELECT picture FROM users; SELECT signature FROM users"))
	if err == nil {
		assert.Subset(t, got, []string{"a.jpg", "b.jpg", "s.png"},
			"two statements in one query: the second result set was dropped without an error")
	}
}

// End to end: the lost rows make Find plan, and Apply delete, files that
// rows still reference. Both columns hold files in one directory, so the
// coverage guard cannot tell, and the dropped rows are under half the
// files, so the fraction guard passes.
func TestRedteamSQLiteMultiStatementDeletesReferencedFiles(t *testing.T) {
	dir := t.TempDir()
	fsys, err := rootfs.New(dir)
	require.NoError(t, err)
	defer fsys.Close()
	var mem afero.Fs = fsys
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, p := range []string{"uploads/avatar1.jpg", "uploads/post1.jpg", "uploads/post2.jpg", "uploads/post3.jpg", "uploads/post4.jpg", "uploads/stale.jpg"} {
		storagetest.WriteFile(t, mem, p, []byte(p), old)
	}
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE users (picture TEXT); CREATE TABLE posts (image TEXT);
		INSERT INTO users VALUES ('uploads/avatar1.jpg');
		INSERT INTO posts VALUES ('uploads/post1.jpg'), ('uploads/post2.jpg'), ('uploads/post3.jpg'), ('uploads/post4.jpg');`)
	require.NoError(t, err)
	for _, merge := range []bool{false, true} {
		f := orphan.New(mem, sqlrefs.New(db, "SELECT picture FROM users; SELECT image FROM posts"),
			orphan.Options{Merge: merge, TempDir: t.TempDir()})
		plan, err := f.Find(t.Context())
		if err != nil {
			continue // refusing the query is the safe outcome
		}
		var planned []string
		for _, o := range plan.Orphans {
			planned = append(planned, o.Path)
		}
		assert.NotContains(t, planned, "uploads/avatar1.jpg", "merge=%v: a file users.picture references is planned for deletion", merge)
	}
	f := orphan.New(mem, sqlrefs.New(db, "SELECT picture FROM users; SELECT image FROM posts"), orphan.Options{Merge: true, TempDir: t.TempDir()})
	if plan, err := f.Find(t.Context()); err == nil {
		_, _ = f.Apply(t.Context(), plan)
	}
	assert.Contains(t, storagetest.Files(t, mem), "uploads/avatar1.jpg", "a referenced file was deleted")
}

// sqlrefs promises: "Every query runs inside one read-only transaction
// where the driver supports it, so the set is one consistent snapshot".
// On PostgreSQL the transaction is opened at the default isolation, READ
// COMMITTED, where every statement takes a snapshot of its own. A row
// that moves its file from users.picture to archive.picture while the
// provider runs (archive queried first, users after) is then in neither
// result: the file is referenced throughout, and missing from the set.
func TestRedteamPostgresQueriesAreNotOneSnapshot(t *testing.T) {
	db, _ := sqltest.Postgres(t).NewDatabase(t)
	_, err := db.Exec(`CREATE TABLE users (picture TEXT); CREATE TABLE archive (picture TEXT);
		INSERT INTO users VALUES ('x.jpg'); INSERT INTO archive VALUES ('other.jpg')`)
	require.NoError(t, err)
	moved := false
	var got []string
	err = sqlrefs.New(db, "SELECT picture FROM archive", "SELECT picture FROM users").References(t.Context(), func(s string) error {
		got = append(got, s)
		if !moved {
			moved = true
			// Another connection moves the reference, in one transaction.
			tx, err := db.BeginTx(t.Context(), nil)
			require.NoError(t, err)
			_, err = tx.Exec(`DELETE FROM users WHERE picture = 'x.jpg'`)
			require.NoError(t, err)
			_, err = tx.Exec(`INSERT INTO archive VALUES ('x.jpg')`)
			require.NoError(t, err)
			require.NoError(t, tx.Commit())
		}
		return nil
	})
	require.NoError(t, err)
	assert.Contains(t, got, "x.jpg", "x.jpg was referenced at every instant, and is missing from the 'one consistent snapshot'")
}
