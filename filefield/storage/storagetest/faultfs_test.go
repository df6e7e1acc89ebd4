package storagetest_test

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func writeSyncRename(fsys afero.Fs) error {
	f, err := fsys.OpenFile("d/tmp", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fsys.Rename("d/tmp", "d/final")
}

func TestSpyRecordsSequence(t *testing.T) {
	t.Parallel()
	mem := afero.NewMemMapFs()
	require.NoError(t, mem.MkdirAll("d", 0o755))
	spy := storagetest.NewSpyFs(mem)
	require.NoError(t, writeSyncRename(spy))
	var kinds []storagetest.OpKind
	for _, op := range spy.Ops() {
		kinds = append(kinds, op.Kind)
	}
	assert.Equal(t, []storagetest.OpKind{"create", "write", "sync", "close", "rename"}, kinds)
	assert.NotZero(t, spy.Ops()[0].Flag&os.O_EXCL)
	assert.Zero(t, spy.Fired())
}

func TestFaultFsFailsNthOperation(t *testing.T) {
	t.Parallel()
	for n := 1; ; n++ {
		mem := afero.NewMemMapFs()
		require.NoError(t, mem.MkdirAll("d", 0o755))
		ffs := storagetest.NewFaultFs(mem, storagetest.Fault{N: n})
		err := writeSyncRename(ffs)
		if ffs.Fired() == 0 {
			require.NoError(t, err)
			assert.Equal(t, 6, n, "the sequence has five operations")
			return
		}
		require.ErrorIs(t, err, syscall.ENOSPC, "operation %d", n)
		_, statErr := mem.Stat("d/final")
		assert.True(t, errors.Is(statErr, fs.ErrNotExist), "final file exists after failing op %d", n)
	}
}

func TestFaultFsByKindAndSticky(t *testing.T) {
	t.Parallel()
	mem := afero.NewMemMapFs()
	require.NoError(t, mem.MkdirAll("d", 0o755))
	boom := errors.New("boom")
	ffs := storagetest.NewFaultFs(mem, storagetest.Fault{Kind: storagetest.OpRename, N: 1, Err: boom})
	require.ErrorIs(t, writeSyncRename(ffs), boom)
	assert.Equal(t, 1, ffs.Fired())

	ffs.Reset(storagetest.Fault{Kind: storagetest.OpRemove, N: 2, Sticky: true})
	for _, p := range []string{"a", "b", "c"} {
		require.NoError(t, afero.WriteFile(mem, p, []byte(p), 0o644))
	}
	errs := storage.RemoveFiles(t.Context(), ffs, []storage.Target{{Path: "a"}, {Path: "b"}, {Path: "c"}})
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], syscall.ENOSPC)
	assert.ErrorIs(t, errs[2], syscall.ENOSPC)
	_, err := mem.Stat("b")
	assert.NoError(t, err, "a failed remove must not remove")
	assert.Equal(t, 2, ffs.Fired())
}

// A wrapper reports exactly its base's features: a spy over MemMapFs is a
// plain afero.Fs to code that asks, as MemMapFs is, so tests through it
// take the decisions MemMapFs users get; over RootFs it is a local disk.
func TestFaultFsReportsItsBaseFeatures(t *testing.T) {
	t.Parallel()
	assert.Equal(t, storage.Features{}, storage.FeaturesOf(storagetest.NewSpyFs(afero.NewMemMapFs())))
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	assert.Equal(t, rfs.Features(), storage.FeaturesOf(storagetest.NewSpyFs(rfs)))
	assert.Equal(t, rfs.Features(), storage.FeaturesOf(storagetest.NewSpyFs(storagetest.NewSpyFs(rfs))))
	// Bound to a context, still the same, and still recording.
	spy := storagetest.NewSpyFs(rfs)
	bound := storage.WithContext(t.Context(), spy)
	assert.Equal(t, rfs.Features(), storage.FeaturesOf(bound))
	_, _ = bound.Stat("x")
	assert.NotEmpty(t, spy.Ops())
}
