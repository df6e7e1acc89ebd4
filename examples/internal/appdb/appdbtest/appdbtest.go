// Package appdbtest fills the example application's database and media
// for tests: the rows of every file column and their files, and orphans.
package appdbtest

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Seed writes the example app's files into fsys and its rows into db,
// whose tables exist, with placeholders written as mark ("?", or "$" for
// PostgreSQL's $1, $2, ...). It returns the orphans.
func Seed(t testing.TB, fsys afero.Fs, db *sql.DB, mark string) (orphans []string) {
	t.Helper()
	old := time.Now().Add(-3 * 24 * time.Hour)
	file := func(p string) string {
		storagetest.WriteFile(t, fsys, p, []byte(p), old)
		return p
	}
	exec := func(q string, args ...any) {
		if mark == "$" {
			for i := 1; strings.Contains(q, "?"); i++ {
				q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
			}
		}
		_, err := db.Exec(q, args...)
		require.NoError(t, err)
	}
	for i := 1; i <= 100; i++ {
		pic := file(fmt.Sprintf("profile_pics/%032x.jpg", i))
		var sig, qr string
		if i <= 10 {
			sig = file(fmt.Sprintf("e_signatures/%032x.png", i))
		}
		if i <= 20 {
			qr = file(fmt.Sprintf("qr_codes/%d/%032x.png", i, i))
		}
		exec(`INSERT INTO users (id, name, picture, signature, qr_code, qr_created) VALUES (?, ?, ?, ?, ?, ?)`, i, fmt.Sprint("user ", i), pic, sig, qr, old.Unix())
	}
	for i := 1; i <= 30; i++ {
		exec(`INSERT INTO donations (id, user_id, amount, receipt) VALUES (?, ?, '10', ?)`, i, i, file(fmt.Sprintf("donation_receipts/%032x.pdf", i)))
	}
	for i := 1; i <= 20; i++ {
		exec(`INSERT INTO forum_messages (id, user_id, body, image) VALUES (?, ?, 'hi', ?)`, i, i, file(fmt.Sprintf("forum_images/2026/11/%032x.png", i)))
	}
	for _, c := range appdb.FileColumns {
		orphans = append(orphans, file(c.Dir+"/orphan.png"))
	}
	return orphans
}
