package filefield_test

import (
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// TestFaultInjection fails the Nth filesystem operation of a Replace, and
// then of a Commit, for every N (P2). The "row" is a variable set only when
// Replace succeeded, as an application would. Afterwards either the old
// state or the new state holds: the row points at a complete file, no temp
// file is left, and at most the one stale file remains.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, base afero.Fs, _ string) {
		ctx := t.Context()
		setup := filefield.New("pics", base, filefield.Options{Dir: "pics"})
		old, err := setup.Save(ctx, upload("old"))
		require.NoError(t, err)

		for _, phase := range []string{"replace", "commit"} {
			for n := 1; ; n++ {
				row := old.New
				ffs := storagetest.NewFaultFs(base, storagetest.Fault{})
				f := filefield.New("pics", ffs, filefield.Options{Dir: "pics"})
				if phase == "replace" {
					ffs.Reset(storagetest.Fault{N: n})
				}
				ch, err := f.Replace(ctx, row, upload("new"))
				if phase == "commit" {
					require.NoError(t, err)
					ffs.Reset(storagetest.Fault{N: n})
				}
				var res filefield.Result
				if err == nil {
					row = ch.New // the database commit
					res = ch.Commit(ctx)
				}
				fired := ffs.Fired() > 0

				want := map[string]string{old.New: string(png("old"))}
				if row != old.New {
					want = map[string]string{row: string(png("new"))}
					if len(res.Failed) > 0 {
						want[old.New] = string(png("old")) // a failed delete leaves the stale file
					}
				}
				got := map[string]string{}
				for _, p := range files(t, base) {
					got[p] = read(t, base, p)
				}
				assert.Equal(t, want, got, "%s, op %d failed=%v", phase, n, fired)
				noTempFiles(t, base)

				// Back to the old state for the next N.
				if row != old.New {
					require.NoError(t, base.Remove(row))
					require.NoError(t, afero.WriteFile(base, old.New, png("old"), 0o644))
				}
				if !fired {
					assert.Greater(t, n, 1, "no operation of %s was failed", phase)
					break
				}
				if t.Failed() {
					return
				}
			}
		}
	})
}

// TestDirSyncFailureTakesFileBack: a failed directory sync after the
// rename removes the new file, so no row comes to point at it.
func TestDirSyncFailureTakesFileBack(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	// The second sync is the directory's (the first is the file's).
	ffs := storagetest.NewFaultFs(rfs, storagetest.Fault{Kind: storagetest.OpSync, N: 2})
	f := filefield.New("pics", ffs, filefield.Options{Dir: "pics"})
	_, err = f.Save(t.Context(), upload("a"))
	require.Error(t, err)
	assert.Equal(t, 1, ffs.Fired())
	assert.Empty(t, files(t, rfs))
}
