package main

// Review, session 13: checkStored and sweepCovered.

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// reviewTree writes files (path -> age) under a new root and a SQLite
// database whose tables users(picture) and caches(path) hold the given
// rows; it returns the root and the database path.
func reviewTree(t *testing.T, files map[string]time.Duration, pictures, caches []string) (string, string) {
	t.Helper()
	base := t.TempDir()
	root, db := filepath.Join(base, "media"), filepath.Join(base, "app.db")
	require.NoError(t, os.MkdirAll(root, 0o755))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	now := time.Now()
	for p, age := range files {
		storagetest.WriteFile(t, fsys, p, []byte(p), now.Add(-age))
	}
	d, err := sql.Open("sqlite", db)
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Exec(`CREATE TABLE users (picture TEXT); CREATE TABLE caches (path TEXT)`)
	require.NoError(t, err)
	for _, p := range pictures {
		_, err = d.Exec(`INSERT INTO users VALUES (?)`, p)
		require.NoError(t, err)
	}
	for _, p := range caches {
		_, err = d.Exec(`INSERT INTO caches VALUES (?)`, p)
		require.NoError(t, err)
	}
	return root, db
}

func reviewFiles(t *testing.T, root string) []string {
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	return storagetest.Files(t, fsys)
}

// Loss (found in a review of session 13; fixed), and --check-orphans deleted MORE than the same run without it.
// The references leave out the query of cache/ (caches.path), whose row
// holds cache/x.png, 3 hours old. An age rule cache/**=1h sweeps it.
// Without --check-orphans, sweepCovered refuses (no reference points
// into cache/). With --check-orphans it is skipped (execute.go:515,
// "the orphan check's coverage guard covers the age rules' directories
// too"), but that guard only counts files older than --min-age (24h by
// default): cache/ holds none, Find passes, and the sweep deletes the
// file the row references. The guard the sweep relies on should look at
// what the sweep deletes (run sweepCovered in that case too, or count
// the rules' ages).
func TestS13ReviewCheckOrphansSkipsSweepCoverage(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour}
	for _, orphans := range []bool{false, true} {
		t.Run(fmt.Sprintf("check-orphans=%v", orphans), func(t *testing.T) {
			t.Parallel()
			root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
			args := []string{"--root", root, "--db", "sqlite:" + db, "--refs-sql", "SELECT picture FROM users",
				"--rule", "cache/**=1h", "--qr-age", "0"}
			if orphans {
				args = append(args, "--check-orphans")
			}
			r := runCmd(t, args...)
			assert.Contains(t, reviewFiles(t, root), "cache/x.png",
				"the file caches.path references was swept (exit %d)\n%s", r.code, r.stderr)
		})
	}
}

// False refusal (availability, keeps files; found in a review of session
// 13, fixed). A sound run: users' oldest 64 rows name pictures lost long
// ago (a migration that never copied them); the later rows' files are
// there. checkStored looked only at the first 64 references and refused
// with errNothingStored; it samples the whole stream now.
func TestS13ReviewFirstRowsMissingRefusesSoundRun(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{}
	var pics []string
	for i := range 64 {
		pics = append(pics, fmt.Sprintf("pics/lost%03d.jpg", i))
	}
	for i := range 50 {
		p := fmt.Sprintf("pics/live%03d.jpg", i)
		pics = append(pics, p)
		files[p] = 72 * time.Hour
	}
	files["pics/orphan.jpg"] = 72 * time.Hour
	root, db := reviewTree(t, files, pics, nil)
	r := runCmd(t, "--root", root, "--db", "sqlite:"+db, "--refs-sql", "SELECT picture FROM users",
		"--check-orphans", "--qr-age", "0", "--dry-run")
	assert.Equal(t, exitOK, r.code, "a sound run refused: %s", r.stderr)
	assert.False(t, strings.Contains(r.stderr, "names a file under the root"), r.stderr)
}

// Held. The sweep with references and no --check-orphans refuses an
// uncovered rule directory; --unreferenced 'cache/**' lets it go, and
// then the referenced file is kept by the reference set.
func TestS13ReviewSweepCoveredRefusesThenUnreferenced(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour, "cache/y.png": 3 * time.Hour}
	root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
	base := []string{"--root", root, "--db", "sqlite:" + db, "--refs-sql", "SELECT picture FROM users", "--rule", "cache/**=1h", "--qr-age", "0"}
	r := runCmd(t, base...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Len(t, reviewFiles(t, root), 3)
	r = runCmd(t, append(base, "--refs-sql", "SELECT path FROM caches")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"cache/x.png", "pics/a.jpg"}, reviewFiles(t, root))
}

// Held. A --refs-file with a header line and CSV-quoted values: the
// header names no file, the quoted rows do; the run is not refused and
// keeps the referenced file.
func TestS13ReviewRefsFileHeaderAndQuotes(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "pics/b.jpg": 72 * time.Hour}
	root, _ := reviewTree(t, files, nil, nil)
	refs := filepath.Join(t.TempDir(), "refs.csv")
	require.NoError(t, os.WriteFile(refs, []byte("picture\n\"pics/a.jpg\"\npics/a.jpg\n"), 0o644))
	r := runCmd(t, "--root", root, "--refs-file", refs, "--check-orphans", "--qr-age", "0", "--max-fraction", "1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"pics/a.jpg"}, reviewFiles(t, root))
}
