//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// A reference query over 1,000,000 rows streams: the command's memory
// does not grow with the rows (each row is 100 bytes; holding them would
// take over 100 MB). And a query that fails halfway deletes nothing.
func TestReferenceQueryStreams(t *testing.T) {
	t.Parallel()
	s := sqltest.Postgres(t)
	_, url := s.NewDatabase(t)
	f := newFixture(t)
	env := []string{"APP_DB=" + url}
	rows := `SELECT 'profile_pics/ref.jpg' UNION ALL SELECT 'qr_codes/1/new.png' UNION ALL SELECT '/forum_images/a.png' UNION ALL
		SELECT 'nowhere/' || lpad(g::text, 92, '0') || '.jpg' FROM generate_series(1, 1000000) g`
	// A soft memory limit keeps the collector from falling behind when
	// other tests load both cores (RSS reached 102 MB so, in a race run,
	// without one); it cannot shrink rows that are held, which are live.
	measured := append(slices.Clone(env), "GOMEMLIMIT=80MiB")
	r, rss := runMeasured(t, measured, "--root", f.root, "--check-orphans", "--db-env", "APP_DB", "--qr-age", "0", "--refs-sql", rows, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, 1000003, out.Orphans.Plan.References)
	assert.Equal(t, 1000000, out.Orphans.Plan.MissingCount)
	t.Logf("peak RSS with 1,000,000 references of 100 bytes: %d MB", rss>>20)
	// Streaming peaks at 59 to 66 MB on a quiet machine, and reached 81
	// and 102 MB without GOMEMLIMIT while the race tests of other packages
	// loaded both cores; holding the rows takes their strings alone,
	// 1,000,000 of the 112-byte size class, over 106 MiB, before any slice.
	assert.Less(t, rss, int64(100<<20), "the rows are streamed, not held")

	// Rows flow, then the query fails (division by zero at row 600,000).
	f = newFixture(t)
	before := f.files(t)
	failing := `SELECT CASE WHEN g < 600000 THEN 'profile_pics/ref.jpg' ELSE (1 / (g - g))::text END FROM generate_series(1, 1000000) g`
	r = runEnv(t, env, "--root", f.root, "--check-orphans", "--db-env", "APP_DB", "--refs-sql", failing, "--force")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "division by zero")
	assert.Equal(t, before, f.files(t), "nothing deleted, not even by the sweep")
}

// runMeasured runs the command and returns its peak resident memory.
func runMeasured(t *testing.T, env []string, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	require.True(t, ok)
	return result{code, out.String(), errb.String()}, ru.Maxrss * 1024 // kilobytes on Linux
}
