package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
)

// review s14: sweepCovered (execute.go, the sweep's Approve) keeps ONE
// planned path per directory before it asks ReferenceSet.Uncovered,
// which leaves out the paths --unreferenced declares. When the path
// kept for a directory is a declared one, the directory is never judged
// by its other files: here --unreferenced 'cache/thumb_*' declares the
// thumbnails, cache/x.png is not declared, no reference points into
// cache/ (the caches query is left out), and the sweep deletes
// cache/x.png, which a caches row names. The orphan check's own guard
// (Finder.uncovered) skips a declared path without deciding its
// directory, so it judges cache/ by x.png; the sweep's guard should too.
func TestReviewS14SweepCoverageOnePathPerDirSkipsUndeclaredFiles(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour}
	for i := range 40 { // the listing's order decides which path stands for cache/
		files[fmt.Sprintf("cache/thumb_%02d.png", i)] = 3 * time.Hour
	}
	for _, dry := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry-run=%v", dry), func(t *testing.T) {
			t.Parallel()
			root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
			args := []string{"--root", root, "--db", "sqlite:" + db, "--refs-sql", "SELECT picture FROM users",
				"--rule", "cache/**=1h", "--qr-age", "0", "--unreferenced", "cache/thumb_*", "--json"}
			if dry {
				args = append(args, "--dry-run")
			}
			r := runCmd(t, args...)
			assert.Equal(t, exitRefused, r.code, "cache/x.png is not declared unreferenced and no reference points into cache/: %s", r.stderr)
			assert.Contains(t, reviewFiles(t, root), "cache/x.png", "the file a caches row names was deleted")
		})
	}
}

// review s14: a refused sweep's JSON error names no directory. The
// coverage guard of the sweep (its Approve) refuses with exit 3 and
// lists the uncovered directories on stderr, but ErrorOutput.Uncovered
// ("names the directories the coverage guard refused") is filled only
// from the orphan plan (fail, execute.go), so a --json consumer learns
// nothing of which directory; with --check-orphans it would even carry
// the orphan plan's list, which passed.
func TestReviewS14SweepRefusalJSONNamesUncovered(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/a.jpg": 72 * time.Hour, "cache/x.png": 3 * time.Hour}
	root, db := reviewTree(t, files, []string{"pics/a.jpg"}, []string{"cache/x.png"})
	r := runCmd(t, "--root", root, "--db", "sqlite:"+db, "--refs-sql", "SELECT picture FROM users",
		"--rule", "cache/**=1h", "--qr-age", "0", "--json", "--dry-run")
	require.Equal(t, exitRefused, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.NotNil(t, out.Error)
	assert.Equal(t, []string{"cache"}, out.Error.Uncovered, "the JSON error names the directories the guard refused")
}

// review s14: the deterministic form of
// TestReviewS14SweepCoverageOnePathPerDirSkipsUndeclaredFiles (whose
// outcome there hangs on the listing's order): the same plan, in both
// orders, must be refused, since cache/x.png is not declared and no
// reference points into cache/.
func TestReviewS14SweepCoveredJudgesEveryUndeclaredPath(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	refs := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error { return fn("pics/a.jpg") })
	finder := orphan.New(fsys, refs, orphan.Options{Unreferenced: []string{"cache/thumb_*"}})
	set, err := finder.LoadReferences(t.Context())
	require.NoError(t, err)
	r := &runner{c: &config{}, stdout: io.Discard, stderr: io.Discard, verbose: io.Discard, prog: newProgress(io.Discard, "never")}
	for _, plan := range [][]string{
		{"cache/x.png", "cache/thumb_1.png"},
		{"cache/thumb_1.png", "cache/x.png"},
	} {
		assert.ErrorIs(t, r.sweepCovered(set, plan), orphan.ErrUncovered, "plan %v", plan)
	}
}
