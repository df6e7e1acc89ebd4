package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A refusal of the sweep's guards counts in mediaclean_guard_refusals as
// the orphan check's do: the coverage guard, and a source that names no
// stored file (a check that runs before the sweep too).
func TestSweepRefusalsAreInTheMetrics(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour}
	for _, tc := range []struct {
		guard string
		refs  string
	}{
		{"uncovered", "SELECT picture FROM users"},
		{"nothing_stored", "SELECT rowid FROM users"},
	} {
		root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
		prom := filepath.Join(t.TempDir(), "cleanup_media.prom")
		r := runCmd(t, "--root", root, "--db", "sqlite:"+db, "--refs-sql", tc.refs,
			"--rule", "cache/**=1h", "--qr-age", "0", "--metrics-file", prom)
		require.Equal(t, exitRefused, r.code, r.stderr)
		assert.Len(t, reviewFiles(t, root), 2, tc.guard)
		fam := readMetrics(t, prom)
		assert.Equal(t, 1.0, gauge(t, fam, "mediaclean_guard_refusals", "guard", tc.guard), tc.guard)
		assert.Equal(t, 0.0, gauge(t, fam, "mediaclean_last_run_success", "", ""), tc.guard)
	}
}
