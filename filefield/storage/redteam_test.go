//go:build unix

package storage_test

// Red-team tests: each asserts the safe, documented behaviour. Those that
// fail show bugs.

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Delete documents "Only regular files are deleted or moved". A plain
// deletion (no Check, as sweeps, filefield commits and purges make) of a
// path that is a symbolic link, a FIFO or a socket must keep it, on every
// local backend alike.
func TestRedteamDeleteRemovesOnlyRegularFiles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RootFs", "OsFs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := localBackends(t)[name](t)
			writeAt(t, fsys, "pics/real.jpg", "live", time.Time{})
			require.NoError(t, os.Symlink("real.jpg", filepath.Join(dir, "pics", "link.jpg")))
			require.NoError(t, os.Symlink("../outside-nowhere", filepath.Join(dir, "pics", "dangling.jpg")))
			require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "pics", "fifo.jpg"), 0o644))
			out := deleteAll(t, fsys, []storage.Target{
				{Path: "pics/link.jpg"},
				{Path: "pics/dangling.jpg"},
				{Path: "pics/fifo.jpg"},
			}, storage.DeleteOptions{})
			for _, p := range []string{"pics/link.jpg", "pics/dangling.jpg", "pics/fifo.jpg"} {
				assert.Equal(t, storage.ActionKeep, out[p].Action, "%s is not a regular file: %+v", p, out[p])
				_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
				assert.NoError(t, err, "%s must still be there", p)
			}
		})
	}
}

// Deleting through a directory that is a link out of the root, on a
// backend that follows links (BasePathFs over OsFs), is refused and the
// outside file stays. Moves into a quarantine whose area is a link out,
// and restores into a directory that is a link out, are refused too.
func TestRedteamNoLinkFollowedOnOsFs(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RootFs", "OsFs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := localBackends(t)[name](t)
			outside := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(outside, "a.jpg"), []byte("outside"), 0o644))
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "pics")))
			writeAt(t, fsys, "live/b.jpg", "live", time.Time{})
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "t"), 0o755))
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "t", ".mediaclean-quarantine")))
			writeAt(t, fsys, "u/.mediaclean-quarantine/r/pics/c.jpg", "quarantined", time.Time{})
			out := deleteAll(t, fsys, []storage.Target{
				{Path: "pics/a.jpg"},
				{Path: "live/b.jpg", MoveTo: "t/.mediaclean-quarantine/r/live/b.jpg"},
				{Path: "u/.mediaclean-quarantine/r/pics/c.jpg", MoveTo: "pics/c.jpg"},
			}, storage.DeleteOptions{AllowQuarantine: true})
			for p, o := range out {
				assert.Equal(t, storage.ActionKeep, o.Action, "%s: %+v", p, o)
			}
			ents, err := os.ReadDir(outside)
			require.NoError(t, err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{"a.jpg"}, names, "nothing written to or removed from outside the root")
			assert.FileExists(t, filepath.Join(dir, "live", "b.jpg"))
		})
	}
}

// Hostile targets: nothing outside the root, nothing in a quarantine
// without AllowQuarantine, no dot-files, no paths with NUL or control
// characters, no non-NFC names, no moves between arbitrary places.
func TestRedteamDeleteHostileTargets(t *testing.T) {
	t.Parallel()
	fsys, dir := localBackends(t)["OsFs"](t)
	writeAt(t, fsys, "a/x.jpg", "x", time.Time{})
	writeAt(t, fsys, "a/.mediaclean-quarantine/r/a/x.jpg", "q", time.Time{})
	writeAt(t, fsys, "a/e\u0301.jpg", "nfd", time.Time{})
	parent := filepath.Dir(dir)
	require.NoError(t, os.WriteFile(filepath.Join(parent, "sibling.jpg"), []byte("s"), 0o644))
	targets := []storage.Target{
		{Path: "../sibling.jpg"},
		{Path: "/../sibling.jpg"},
		{Path: "a/../../sibling.jpg"},
		{Path: "a/x.jpg\x00"},
		{Path: "a\\..\\..\\sibling.jpg"},
		{Path: "a/e\u0301.jpg"},
		{Path: "a/.mediaclean-quarantine/r/a/x.jpg"},
		{Path: "a/.mediaclean-quarantine/r/a/x.jpg", MoveTo: "b/x.jpg"},
		{Path: "a/x.jpg", MoveTo: "../sibling2.jpg"},
		{Path: "a/x.jpg", MoveTo: "a/.mediaclean-quarantine/r/../../../../sibling2.jpg"},
		{Path: "a/.mediaclean-quarantine", Dir: true},
		{Path: "..", Dir: true},
		{Path: "a/..", Dir: true},
	}
	var got []storage.Outcome
	_ = storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { got = append(got, o) }})
	require.Len(t, got, len(targets))
	for _, o := range got {
		assert.Equal(t, storage.ActionKeep, o.Action, "%q -> %q: %+v", o.Path, o.MoveTo, o)
	}
	assert.FileExists(t, filepath.Join(parent, "sibling.jpg"))
	assert.NoFileExists(t, filepath.Join(parent, "sibling2.jpg"))
	assert.FileExists(t, filepath.Join(dir, "a", "x.jpg"))
	assert.FileExists(t, filepath.Join(dir, "a", ".mediaclean-quarantine", "r", "a", "x.jpg"))
}

// RemoveEmptyDirs never removes the stop directory or anything beside it
// whose name merely starts with it ("pics" vs "pics2"), nor the root, nor a
// directory that is a link.
func TestRedteamRemoveEmptyDirsStopPrefix(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RootFs", "OsFs", "MemMapFs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := localBackends(t)[name](t)
			for _, d := range []string{"pics/a", "pics2/b", "q/.mediaclean-quarantine/r/x"} {
				require.NoError(t, fsys.MkdirAll(d, 0o755))
			}
			if dir != "" {
				require.NoError(t, os.Symlink("pics2", filepath.Join(dir, "linkdir")))
			}
			n := storage.RemoveEmptyDirs(t.Context(), fsys, []string{"pics/a", "pics2/b", "q/.mediaclean-quarantine/r/x", "linkdir", "."}, "pics", storage.DeleteOptions{})
			assert.Equal(t, 1, n, "only pics/a is below pics")
			for _, d := range []string{"pics", "pics2/b", "q/.mediaclean-quarantine/r/x"} {
				fi, err := fsys.Stat(d)
				if assert.NoError(t, err, d) {
					assert.True(t, fi.IsDir())
				}
			}
		})
	}
}

// Quarantine paths whose quarantine directory has ".mediaclean-quarantine"
// inside a longer segment name are still quarantine paths of a valid
// directory; a move into such a quarantine is what Delete documents as
// allowed (a valid stored path P to "DIR/.mediaclean-quarantine/RUN/P").
func TestRedteamQuarantinePathOddDirName(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	writeAt(t, fsys, "a.jpg", "x", time.Time{})
	out := deleteAll(t, fsys, []storage.Target{{Path: "a.jpg", MoveTo: "x.mediaclean-quarantine/.mediaclean-quarantine/r/a.jpg"}}, storage.DeleteOptions{})
	assert.Equal(t, storage.ActionMove, out["a.jpg"].Action, "%+v", out["a.jpg"])
}
