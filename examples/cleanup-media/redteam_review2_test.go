package main

// Review of 99a149f: the empty-source refusal must not fire when a
// query's rows are all outside a shard's range, with --merge, or with
// the check-orphans + sweep combination, and must fire (exit 3, nothing
// deleted) before any deletion.

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmptySourceRefusalShardsAndMerge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	maps := t.TempDir()
	// Boundary "profile_pics/": shard 0 has forum_images/ only (the rows
	// of "SELECT picture" and "SELECT qr" are outside its range); shard 1
	// has profile_pics/ and qr_codes/ (forum's rows are outside).
	two := filepath.Join(maps, "two.json")
	require.NoError(t, os.WriteFile(two, []byte(`{"boundaries": ["profile_pics/"]}`), 0o644))
	for _, extra := range [][]string{
		{"--shard", "0/2", "--shard-map", two},
		{"--shard", "1/2", "--shard-map", two},
		{"--merge", "--temp-dir", t.TempDir()},
		{"--shard", "1/2", "--shard-map", two, "--merge", "--temp-dir", t.TempDir()},
	} {
		r := runCmd(t, f.orphanArgs(append([]string{"--dry-run"}, extra...)...)...)
		assert.Equal(t, exitOK, r.code, "%v: %s", extra, r.stderr)
	}
	// And it does fire with a shard or --merge when a query is wrong.
	before := f.files(t)
	for _, extra := range [][]string{
		{"--shard", "1/2", "--shard-map", two},
		{"--merge", "--temp-dir", t.TempDir()},
	} {
		r := runCmd(t, f.orphanArgs(append([]string{"--refs-sql", "SELECT image FROM forum WHERE 0"}, extra...)...)...)
		assert.Equal(t, exitRefused, r.code, "%v: %s", extra, r.stderr)
		assert.Contains(t, r.stderr, "nothing deleted")
	}
	assert.Equal(t, before, f.files(t))
	// With --check-orphans and a sweep: refused before the sweep deletes.
	r := runCmd(t, f.orphanArgs("--refs-sql", "SELECT image FROM forum WHERE 0", "--qr-age", "7d")...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Equal(t, before, f.files(t), "a refused run deleted")
}
