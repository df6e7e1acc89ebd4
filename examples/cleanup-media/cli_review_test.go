package main

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReviewGzippedRefsFileRefusedForSweep: an operator passes the
// compressed export (refs.txt.gz) to a sweep that must keep every
// referenced file. No line of it is a reference: refused (this one
// passes; kept as a regression guard next to the binary-column case).
func TestReviewGzippedRefsFileRefusedForSweep(t *testing.T) {
	t.Parallel()
	root, users := s11SharedDir(t)
	plain, err := os.ReadFile(users)
	require.NoError(t, err)
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	w.Write(plain)
	w.Close()
	gz := filepath.Join(t.TempDir(), "users.txt.gz")
	require.NoError(t, os.WriteFile(gz, z.Bytes(), 0o644))
	r := runCmd(t, "--root", root, "--qr-age", "0", "--rule", "uploads/**=30d", "--refs-file", gz, "--verbose")
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	assert.Equal(t, exitRefused, r.code, "a compressed references file holds no reference")
	_, err = os.Stat(filepath.Join(root, "uploads/avatar0.png"))
	assert.NoError(t, err, "a referenced avatar was swept")
}

// TestReviewUTF16BlankRefsFileIsRefused: PowerShell 5's Out-File (and
// '>' redirection) writes UTF-16LE with a byte-order mark; a failed
// export is then "\xff\xfe\r\x00\n\x00". blankFile reads it as UTF-8 and
// sees a non-space rune, so it is accepted beside the users' export,
// and the forum's files go, exit 0 (the same case
// TestBlankRefsFileIsRefusedLikeAnEmptyOne refuses for UTF-8 BOMs).
func TestReviewUTF16BlankRefsFileIsRefused(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"UTF-16LE BOM+CRLF": "\xff\xfe\r\x00\n\x00",
		"UTF-16LE BOM":      "\xff\xfe",
		"UTF-16BE BOM+CRLF": "\xfe\xff\x00\r\x00\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root, users := s11SharedDir(t)
			forum := filepath.Join(t.TempDir(), "forum.txt")
			require.NoError(t, os.WriteFile(forum, []byte(content), 0o644))
			r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", users, "--refs-file", forum)
			t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			for _, p := range []string{"uploads/forum1.png", "uploads/forum2.png"} {
				_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
				assert.NoError(t, err, "%s deleted: the forum's export held no reference (%q)", p, content)
			}
		})
	}
}

// TestReviewBinaryColumnRefusedForSweep: --refs-sql picks the wrong
// column, a BLOB of 16-byte digests (avatar_sha instead of avatar). No
// value is a path, yet LoadReferences accepts the set: a reference counts
// as valid on any form, including forms that do not count for coverage.
// Random 16-byte values are "valid" about 0.8% of the time through the
// '?'/'#'/';' cuts (before f820ea9) and 8.4% since, through the
// Windows-1252 readings, so 200 rows always pass ErrNoReferences and the
// sweep deletes every referenced avatar older than the rule, exit 0.
// (Fails before f820ea9 too, with this many rows.)
func TestReviewBinaryColumnRefusedForSweep(t *testing.T) {
	t.Parallel()
	root, _ := s11SharedDir(t)
	dbPath := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", dbPath)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE users (avatar TEXT, avatar_sha BLOB);
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 199)
		INSERT INTO users SELECT 'uploads/avatar' || i || '.png', randomblob(16) FROM n;`)
	require.NoError(t, err)
	db.Close()
	r := runCmd(t, "--root", root, "--qr-age", "0", "--rule", "uploads/**=30d",
		"--db", "sqlite:"+dbPath, "--refs-sql", "SELECT avatar_sha FROM users")
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	assert.Equal(t, exitRefused, r.code, "no value of the column is a reference")
	_, err = os.Stat(filepath.Join(root, "uploads/avatar0.png"))
	assert.NoError(t, err, "a referenced avatar was swept")
}
