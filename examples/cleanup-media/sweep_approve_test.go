package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/sweep"
)

// The sweep's coverage guard judges the plan the sweep itself made (its
// Approve hook), in a dry run and a real run alike: an uncovered rule
// directory refuses with exit 3, deletes nothing, and the JSON report
// counts the planned files as kept, refused.
func TestSweepRefusalIsInTheReport(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour, "cache/y.png": 3 * time.Hour}
	for _, dry := range []bool{true, false} {
		root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
		args := []string{"--root", root, "--db", "sqlite:" + db, "--refs-sql", "SELECT picture FROM users",
			"--rule", "cache/**=1h", "--qr-age", "0", "--json"}
		if dry {
			args = append(args, "--dry-run")
		}
		r := runCmd(t, args...)
		assert.Equal(t, exitRefused, r.code, r.stderr)
		assert.Contains(t, r.stderr, "cache")
		assert.Len(t, reviewFiles(t, root), 3, "dry run %v", dry)
		var out Output
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.NotNil(t, out.Sweep, "dry run %v", dry)
		assert.Equal(t, 2, out.Sweep.Kept[sweep.KeptRefused].Files, "dry run %v", dry)
		assert.Zero(t, out.Sweep.Deleted.Files, "dry run %v", dry)
	}
}
