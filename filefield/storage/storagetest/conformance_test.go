package storagetest_test

import (
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func TestConformanceRootFs(t *testing.T) {
	t.Parallel()
	storagetest.TestFS(t, func(t *testing.T) afero.Fs {
		rfs, err := rootfs.New(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { rfs.Close() })
		return rfs
	}, storagetest.Divergences{})
}

func TestConformanceOsFs(t *testing.T) {
	t.Parallel()
	storagetest.TestFS(t, func(t *testing.T) afero.Fs {
		return afero.NewBasePathFs(afero.NewOsFs(), t.TempDir())
	}, storagetest.Divergences{})
}

func TestConformanceMemMapFs(t *testing.T) {
	t.Parallel()
	storagetest.TestFS(t, func(t *testing.T) afero.Fs {
		return afero.NewMemMapFs()
	}, storagetest.MemMapFsDivergences)
}

func TestConformanceFaultFsForwards(t *testing.T) {
	t.Parallel()
	storagetest.TestFS(t, func(t *testing.T) afero.Fs {
		rfs, err := rootfs.New(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { rfs.Close() })
		return storagetest.NewSpyFs(rfs)
	}, storagetest.Divergences{})
}

// TestCheckFSReportsMisbehaviour shows the suite can fail: a MemMapFs
// declared as a POSIX disk is caught on each divergence, and a declared
// divergence that is not there is caught too.
func TestCheckFSReportsMisbehaviour(t *testing.T) {
	t.Parallel()
	err := storagetest.CheckFS(t.Context(), afero.NewMemMapFs(), storagetest.Divergences{})
	require.Error(t, err)
	for _, name := range []string{"CreateWithoutParent", "RemoveNonEmptyDir", "RefusesNUL"} {
		require.ErrorContains(t, err, name)
	}
	rfs, rerr := rootfs.New(t.TempDir())
	require.NoError(t, rerr)
	defer rfs.Close()
	err = storagetest.CheckFS(t.Context(), rfs, storagetest.MemMapFsDivergences)
	require.ErrorContains(t, err, "remove the declaration")
	require.NoError(t, storagetest.CheckFS(t.Context(), afero.NewMemMapFs(), storagetest.MemMapFsDivergences))
}
