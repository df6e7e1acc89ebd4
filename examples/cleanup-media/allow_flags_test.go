package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// --allow-empty-refs and --allow-unstored-refs each relax their own check
// only: an operator who says an empty table is expected keeps the check
// that another source's column names stored files (here a query on the
// ids, which would make every picture look unreferenced), and the other
// way round.
func TestAllowFlagsRelaxOneCheckEach(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "pics/b.jpg": 72 * time.Hour}
	all := []string{"pics/a.jpg", "pics/b.jpg"}
	for _, tc := range []struct {
		flags []string
		code  int
		left  []string
		msg   string
	}{
		{nil, exitRefused, all, "--allow-empty-refs"},
		{[]string{"--allow-empty-refs"}, exitRefused, all, "--allow-unstored-refs"},
		{[]string{"--allow-unstored-refs"}, exitRefused, all, "--allow-empty-refs"},
		{[]string{"--allow-empty-refs", "--allow-unstored-refs"}, exitOK, []string{"pics/a.jpg"}, ""},
	} {
		root, db := reviewTree(t, files, []string{"pics/a.jpg"}, nil)
		args := append([]string{"--root", root, "--db", "sqlite:" + db, "--check-orphans", "--qr-age", "0",
			"--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT path FROM caches", "--refs-sql", "SELECT rowid FROM users"}, tc.flags...)
		r := runCmd(t, args...)
		assert.Equal(t, tc.code, r.code, "%v: %s", tc.flags, r.stderr)
		assert.Equal(t, tc.left, reviewFiles(t, root), "%v", tc.flags)
		if tc.msg != "" {
			assert.Contains(t, r.stderr, tc.msg, "%v: the refusal names the flag that overrides it", tc.flags)
		}
	}
}
