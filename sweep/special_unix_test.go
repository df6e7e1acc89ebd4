//go:build unix

package sweep_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/sweep"
)

// FIFOs and sockets are left alone.
func TestSpecialFilesLeftAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	for _, p := range []string{filepath.Join(dir, "fifo"), sock} {
		require.NoError(t, os.Chtimes(p, now.Add(-100*day), now.Add(-100*day)))
	}
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()
	rep, err := sweep.New(rfs, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Kept[sweep.KeptNotRegular].Files)
	assert.Zero(t, rep.Deleted.Files)
	for _, p := range []string{"fifo", "sock"} {
		_, err := os.Lstat(filepath.Join(dir, p))
		assert.NoError(t, err)
	}
}
