//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
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
	// The collector's trace gives the heap still live after each cycle:
	// what the command holds, whatever the collector's lag. Peak RSS
	// includes that lag (59 to 67 MB on a quiet machine, 105 MB once
	// while the race tests of other packages loaded both cores), so it is
	// only logged, with a bound that holding the rows would break by far.
	measured := append(slices.Clone(env), "GODEBUG=gctrace=1")
	// Three of the million references name stored files: a sample of
	// them names none, which refuses the run unless --allow-unstored-refs
	// says it is expected.
	r, rss := runMeasured(t, measured, "--root", f.root, "--check-orphans", "--db-env", "APP_DB", "--qr-age", "0", "--refs-sql", rows, "--json", "--allow-unstored-refs")
	require.Equal(t, 0, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, 1000003, out.Orphans.Plan.References)
	assert.Equal(t, 1000000, out.Orphans.Plan.MissingCount)
	live, cycles := peakLiveHeap(t, r.stderr)
	t.Logf("1,000,000 references of 100 bytes: peak RSS %d MB, peak live heap %d MB over %d collections", rss>>20, live, cycles)
	require.Greater(t, cycles, 3, "the rows made garbage: %s", r.stderr)
	// What stays live is hash mode's set: 8 bytes for each form of each
	// reference (7 to 23 MB, growing with the rows); holding the rows would
	// take their strings alone, 1,000,000 of the 112-byte size class:
	// over 106 MiB live, before any slice.
	assert.Less(t, live, 48, "the rows are streamed, not held")
	assert.Less(t, rss, int64(160<<20), "the rows are streamed, not held")

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

// gcLine matches the collector's trace line: "gc 7 @0.3s 4%: ... 4->5->1 MB, ...".
var gcLine = regexp.MustCompile(`(?m)^gc \d+ @[^:]*:.* (\d+)->(\d+)->(\d+) MB`)

// peakLiveHeap returns the largest heap left live after a collection, in
// MB, from a gctrace=1 log, and the number of collections.
func peakLiveHeap(t *testing.T, log string) (peak, cycles int) {
	t.Helper()
	for _, m := range gcLine.FindAllStringSubmatch(log, -1) {
		n, err := strconv.Atoi(m[3])
		require.NoError(t, err)
		peak = max(peak, n)
		cycles++
	}
	return peak, cycles
}
