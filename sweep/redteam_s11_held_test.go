package sweep_test

// Probes of a red-team pass that held, kept as regression tests.

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// Between the plan and the removal, qr_codes/1 is swapped for a link to a
// directory outside the root (and, second case, a directory inside the
// root) holding a file of the same name, size and time. RootFs removes
// neither.
func TestDirSwappedForALinkAfterThePlanRemovesNothing(t *testing.T) {
	t.Parallel()
	for _, inside := range []bool{false, true} {
		rfs, dirOnDisk := storagetest.LocalBackends()[0].New(t)
		outside := t.TempDir()
		target := outside
		if inside {
			target = filepath.Join(dirOnDisk, "keep")
			require.NoError(t, os.MkdirAll(target, 0o755))
		}
		put(t, rfs, "qr_codes/1/old.png", 10, 30*day)
		victim := filepath.Join(target, "old.png")
		require.NoError(t, os.WriteFile(victim, make([]byte, 10), 0o644))
		fi, err := os.Stat(filepath.Join(dirOnDisk, "qr_codes", "1", "old.png"))
		require.NoError(t, err)
		require.NoError(t, os.Chtimes(victim, fi.ModTime(), fi.ModTime()))
		swap := refsFunc(func(string) {
			d := filepath.Join(dirOnDisk, "qr_codes", "1")
			require.NoError(t, os.Rename(d, filepath.Join(dirOnDisk, "qr_codes", "moved")))
			require.NoError(t, os.Symlink(target, d))
		})
		_, err = sweep.New(rfs, sweep.Options{Now: clock, Refs: swap, RemoveEmptyDirs: true,
			Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}}).Sweep(context.Background())
		_ = err
		_, err = os.Stat(victim)
		assert.NoError(t, err, "inside=%v: a file through a swapped link was removed", inside)
	}
}

// A hard link to a protected file is removed as a name only: the
// protected name keeps its data. FIFOs and sockets are never removed
// (TestSpecialFilesLeftAlone).
func TestHardLinkToAProtectedFileLeavesItsData(t *testing.T) {
	t.Parallel()
	rfs, dirOnDisk := storagetest.LocalBackends()[0].New(t)
	put(t, rfs, "keep/a.png", 10, 30*day)
	require.NoError(t, os.MkdirAll(filepath.Join(dirOnDisk, "tmp"), 0o755))
	require.NoError(t, os.Link(filepath.Join(dirOnDisk, "keep", "a.png"), filepath.Join(dirOnDisk, "tmp", "a.png")))
	_, err := sweep.New(rfs, sweep.Options{Now: clock, Protected: []string{"KEEP/**"},
		Rules: []sweep.Rule{{Glob: "**", MaxAge: 7 * day}}}).Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"keep/a.png"}, files(t, rfs))
}
