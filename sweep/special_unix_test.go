//go:build unix

package sweep_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
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

// A file dated past 2262, where nanoseconds since 1970 overflow 64 bits,
// is in the future and kept as young, with or without KeepLatest; one
// dated before 1678 is old and swept, on disk and in memory. (An
// overflowing time once made a file dated 2300 look 300 years old.)
func TestFarTimesKeepTheirMeaning(t *testing.T) {
	t.Parallel()
	future := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	ancient := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, b := range storagetest.LocalBackends() {
		for _, keepLatest := range []int{0, 1} {
			t.Run(b.Name, func(t *testing.T) {
				fsys, dir := b.New(t)
				times := map[string]time.Time{"qr/future.png": future, "qr/ancient.png": ancient}
				if b.OnDisk() {
					// Disks keep times from 1901 at best: before 1678 is
					// for MemMapFs only.
					times["qr/ancient.png"] = time.Date(1901, 12, 14, 0, 0, 0, 0, time.UTC)
				}
				for p, mtime := range times {
					storagetest.WriteFile(t, fsys, p, []byte(p), time.Time{})
					// os.Chtimes passes nanoseconds since 1970 too, and wraps.
					if b.OnDisk() {
						ts, err := unix.TimeToTimespec(mtime)
						require.NoError(t, err)
						require.NoError(t, unix.UtimesNano(filepath.Join(dir, p), []unix.Timespec{ts, ts}))
					} else {
						require.NoError(t, fsys.Chtimes(p, mtime, mtime))
					}
					fi, err := fsys.Stat(p)
					require.NoError(t, err)
					require.True(t, fi.ModTime().Equal(mtime), "%s: %s", p, fi.ModTime())
				}
				storagetest.WriteFile(t, fsys, "qr/old.png", []byte("o"), time.Now().Add(-10*24*time.Hour))
				rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/*.png", MaxAge: 7 * 24 * time.Hour, KeepLatest: keepLatest}}}).Sweep(t.Context())
				require.NoError(t, err)
				// The future file is young and takes no place among the
				// latest: with KeepLatest 1 the newest real file stays.
				want := []string{"qr/future.png"}
				if keepLatest == 1 {
					want = []string{"qr/future.png", "qr/old.png"}
				}
				assert.Equal(t, want, storagetest.Files(t, fsys), "keep latest %d", keepLatest)
				assert.Equal(t, 3-len(want), rep.Deleted.Files)
			})
		}
	}
}

// KeepLatest keeps the newest file of a group even when the times are
// beyond what nanoseconds since 1970 hold: of files dated 2300 and 2400
// (or 1500 and 1600), the later one. The clock reads 2500: a file from
// the future counts as young and is kept whatever its rank.
func TestKeepLatestOrdersFarTimes(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]time.Time{
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		for _, names := range [][2]string{{"qr/a.png", "qr/b.png"}, {"qr/b.png", "qr/a.png"}} {
			fsys := afero.NewMemMapFs()
			storagetest.WriteFile(t, fsys, names[0], []byte("older"), pair[0])
			storagetest.WriteFile(t, fsys, names[1], []byte("newer"), pair[1])
			clock := func() time.Time { return time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC) }
			_, err := sweep.New(fsys, sweep.Options{Now: clock, Rules: []sweep.Rule{{Glob: "qr/*.png", KeepLatest: 1}}}).Sweep(t.Context())
			require.NoError(t, err)
			assert.Equal(t, []string{names[1]}, storagetest.Files(t, fsys), "%s", pair[1])
		}
	}
}
