package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// rtTree writes old files under a new root and returns it.
func rtTree(t *testing.T, paths ...string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "media")
	require.NoError(t, os.MkdirAll(root, 0o755))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, p := range paths {
		storagetest.WriteFile(t, fsys, p, []byte(p), old)
	}
	return root
}

func rtFiles(t *testing.T, root string) []string {
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	return storagetest.Files(t, fsys)
}

// Found by a red-team pass (it failed before the fix). An operator puts two columns in one --refs-sql, as psql would take
// them. On SQLite the command exits 0 and deletes the file users.picture
// references: the driver returns only the last statement's rows, and
// sqlrefs does not notice. Both --merge and the default mode.
func TestRedteamRefsSQLTwoStatementsDeletesReferencedFile(t *testing.T) {
	for _, mode := range [][]string{nil, {"--merge"}} {
		root := rtTree(t, "uploads/avatar1.jpg", "uploads/post1.jpg", "uploads/post2.jpg", "uploads/post3.jpg", "uploads/post4.jpg", "uploads/stale.jpg")
		dbPath := filepath.Join(t.TempDir(), "app.db")
		db, err := sql.Open("sqlite", dbPath)
		require.NoError(t, err)
		_, err = db.Exec(`CREATE TABLE users (picture TEXT); CREATE TABLE posts (image TEXT);
			INSERT INTO users VALUES ('uploads/avatar1.jpg');
			INSERT INTO posts VALUES ('uploads/post1.jpg'), ('uploads/post2.jpg'), ('uploads/post3.jpg'), ('uploads/post4.jpg');`)
		require.NoError(t, err)
		db.Close()
		r := runCmd(t, append([]string{"--root", root, "--check-orphans", "--qr-age", "0", "--db", "sqlite:" + dbPath,
			"--refs-sql", "SELECT picture FROM users; SELECT image FROM posts"}, mode...)...)
		t.Logf("%v: exit %d\n%s%s", mode, r.code, r.stdout, r.stderr)
		assert.Contains(t, rtFiles(t, root), "uploads/avatar1.jpg", "%v: exit %d and the file users.picture references is gone", mode, r.code)
		assert.NotEqual(t, 0, r.code, "%v: the query is refused", mode)
		assert.Contains(t, r.stderr, "may hold a second statement", mode)
	}
}

// Found by a red-team pass (it failed before the fix). A missing reference query: the single run is refused by the coverage
// guard (exit 3, nothing deleted), but shard 1 of a two-shard map split
// at "b" passes every guard and deletes pics/legacy.png, which only the
// missing query referenced. README: "every shard reads all references,
// so the coverage guard and the empty-reference guard decide as the
// single run would".
func TestRedteamShardRunsWhatTheSingleRunRefuses(t *testing.T) {
	for _, mode := range [][]string{nil, {"--merge"}} {
		root := rtTree(t, "avatars/1.png", "pics/1.png", "pics/2.png", "pics/3.png", "pics/legacy.png")
		refs := filepath.Join(t.TempDir(), "refs.txt")
		require.NoError(t, os.WriteFile(refs, []byte("pics/1.png\npics/2.png\npics/3.png\n"), 0o644))
		smap := filepath.Join(t.TempDir(), "shards.json")
		require.NoError(t, os.WriteFile(smap, []byte(`{"boundaries": ["b"]}`), 0o644))
		base := append([]string{"--root", root, "--check-orphans", "--qr-age", "0", "--refs-file", refs}, mode...)

		r := runCmd(t, base...)
		require.Equal(t, exitRefused, r.code, "the single run is refused: %s", r.stderr)
		require.Contains(t, rtFiles(t, root), "pics/legacy.png")

		for _, shard := range []string{"0/2", "1/2"} {
			r = runCmd(t, append(base, "--shard", shard, "--shard-map", smap)...)
			t.Logf("%v shard %s: exit %d %s", mode, shard, r.code, r.stderr)
			assert.Equal(t, exitRefused, r.code, "%v shard %s: the single run's refusal must hold", mode, shard)
		}
		assert.Contains(t, rtFiles(t, root), "pics/legacy.png", "%v: the sharded run deleted what the single run refused to touch", mode)
	}
}
