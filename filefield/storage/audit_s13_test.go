package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

var s13Old = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func s13Backends(t *testing.T, fn func(t *testing.T, fsys afero.Fs, dir string)) {
	t.Run("RootFs", func(t *testing.T) {
		dir := t.TempDir()
		fsys, err := rootfs.New(dir)
		require.NoError(t, err)
		t.Cleanup(func() { fsys.Close() })
		fn(t, fsys, dir)
	})
	t.Run("MemMapFs", func(t *testing.T) { fn(t, afero.NewMemMapFs(), "") })
}

func s13Put(t *testing.T, fsys afero.Fs, p string) {
	storagetest.WriteFile(t, fsys, p, []byte("0123456789"), s13Old)
}

func s13Delete(t *testing.T, fsys afero.Fs, targets []storage.Target, opts storage.DeleteOptions) map[string]storage.Outcome {
	t.Helper()
	out := map[string]storage.Outcome{}
	n := 0
	opts.OnOutcome = func(o storage.Outcome) {
		n++
		out[o.Path+"|"+o.MoveTo] = o
	}
	_ = storage.Delete(t.Context(), fsys, targets, opts)
	assert.Equal(t, len(targets), n, "exactly one outcome per target")
	return out
}

func s13Exists(fsys afero.Fs, p string) bool {
	_, err := storage.Lstat(fsys, p)
	return err == nil
}

// Delete refuses what the doc says it refuses, and removes only regular
// files.
func TestS13DeleteRefusals(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, dir string) {
		q := "trash/" + storage.QuarantineDirName + "/run/pics/a.jpg"
		temp := "pics/" + storage.TempPrefix + "0123456789abcdef0123456789abcdef"
		for _, p := range []string{"pics/a.jpg", "Receipts/2024/x.pdf", "keep/caf\u00e9.jpg", "pics/.htaccess", q, temp, "pics/sub/b.jpg"} {
			s13Put(t, fsys, p)
		}
		targets := []storage.Target{
			{Path: "../pics/a.jpg"},
			{Path: "/pics/a.jpg"},
			{Path: "pics/.htaccess"},
			{Path: "Receipts/2024/x.pdf"},
			{Path: "keep/caf\u00e9.jpg"},
			{Path: q},
			{Path: temp},
			{Path: "pics/sub"},
			{Path: "pics/a.jpg", Size: 11, ModTime: s13Old, Check: true},
			{Path: "pics/gone.jpg"},
			{Path: ""},
			{Path: "pics"},
		}
		out := s13Delete(t, fsys, targets, storage.DeleteOptions{Protected: []string{"receipts", "KEEP/cafe\u0301.jpg"}})
		assert.Equal(t, storage.KeptUnsafe, out["../pics/a.jpg|"].Reason)
		assert.Equal(t, storage.KeptUnsafe, out["/pics/a.jpg|"].Reason)
		assert.Equal(t, storage.KeptUnsafe, out["pics/.htaccess|"].Reason)
		assert.Equal(t, storage.KeptProtected, out["Receipts/2024/x.pdf|"].Reason, "case-insensitive folder glob")
		assert.Equal(t, storage.KeptProtected, out["keep/caf\u00e9.jpg|"].Reason, "NFD, other case")
		assert.Equal(t, storage.KeptUnsafe, out[q+"|"].Reason, "quarantine without AllowQuarantine")
		assert.Equal(t, storage.KeptUnsafe, out[temp+"|"].Reason, "temp without AllowTemp")
		assert.Equal(t, storage.KeptNotRegular, out["pics/sub|"].Reason, "a directory")
		assert.Equal(t, storage.KeptChanged, out["pics/a.jpg|"].Reason)
		assert.Equal(t, storage.KeptGone, out["pics/gone.jpg|"].Reason)
		assert.Equal(t, storage.ActionKeep, out["|"].Action, "the root")
		assert.Equal(t, storage.KeptNotRegular, out["pics|"].Reason)
		for _, p := range []string{"pics/a.jpg", "Receipts/2024/x.pdf", "keep/caf\u00e9.jpg", "pics/.htaccess", q, temp, "pics/sub/b.jpg"} {
			assert.True(t, s13Exists(fsys, p), p)
		}
		// The root as a directory target, and a non-empty directory.
		out = s13Delete(t, fsys, []storage.Target{{Path: "", Dir: true}, {Path: ".", Dir: true}, {Path: "pics/sub", Dir: true}}, storage.DeleteOptions{})
		for k, o := range out {
			assert.Equal(t, storage.ActionKeep, o.Action, k)
		}
		assert.True(t, s13Exists(fsys, "pics/sub/b.jpg"))
		// AllowTemp removes the temp file.
		out = s13Delete(t, fsys, []storage.Target{{Path: temp}}, storage.DeleteOptions{AllowTemp: true})
		assert.Equal(t, storage.ActionDelete, out[temp+"|"].Action)
	})
}

// Moves: never over an existing file, only into a quarantine area, and
// never to a protected destination.
func TestS13MoveRefusals(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, dir string) {
		s13Put(t, fsys, "pics/a.jpg")
		s13Put(t, fsys, "pics/b.jpg")
		qa := "trash/" + storage.QuarantineDirName + "/run/pics/a.jpg"
		s13Put(t, fsys, qa)
		out := s13Delete(t, fsys, []storage.Target{
			{Path: "pics/a.jpg", MoveTo: qa},
			{Path: "pics/b.jpg", MoveTo: "other/b.jpg"},
			{Path: "pics/b.jpg", MoveTo: "trash/" + storage.QuarantineDirName + "/run/x/pics/b.jpg"},
		}, storage.DeleteOptions{})
		assert.Equal(t, storage.KeptTaken, out["pics/a.jpg|"+qa].Reason)
		assert.Equal(t, storage.KeptUnsafe, out["pics/b.jpg|other/b.jpg"].Reason)
		assert.Equal(t, storage.KeptUnsafe, out["pics/b.jpg|trash/"+storage.QuarantineDirName+"/run/x/pics/b.jpg"].Reason, "RUN is one segment and the rest must be P")
		assert.True(t, s13Exists(fsys, "pics/a.jpg"))
		assert.True(t, s13Exists(fsys, "pics/b.jpg"))
		// DeleteOptions.Protected guards the stored path of a move: a
		// protected file is not moved into a quarantine, while a
		// quarantine under a protected glob (protected from sweeps, as
		// the CLI does) takes files in. The docs said "either end" until
		// session 13.
		s13Put(t, fsys, "pics/c.jpg")
		qc := "trash/" + storage.QuarantineDirName + "/run/pics/c.jpg"
		out = s13Delete(t, fsys, []storage.Target{{Path: "pics/c.jpg", MoveTo: qc}}, storage.DeleteOptions{Protected: []string{"pics/c.jpg"}})
		assert.Equal(t, storage.KeptProtected, out["pics/c.jpg|"+qc].Reason, "protected source: got action %q", out["pics/c.jpg|"+qc].Action)
		assert.True(t, s13Exists(fsys, "pics/c.jpg"))
		out = s13Delete(t, fsys, []storage.Target{{Path: "pics/c.jpg", MoveTo: qc}}, storage.DeleteOptions{Protected: []string{"trash"}})
		assert.Equal(t, storage.ActionMove, out["pics/c.jpg|"+qc].Action, "a quarantine under a protected glob: %+v", out["pics/c.jpg|"+qc])
		assert.True(t, s13Exists(fsys, qc))
		if dir != "" {
			// A dangling link at the destination is not replaced.
			qd := "trash/" + storage.QuarantineDirName + "/run2/pics/b.jpg"
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(qd)), 0o755))
			require.NoError(t, os.Symlink("/nonexistent", filepath.Join(dir, qd)))
			out = s13Delete(t, fsys, []storage.Target{{Path: "pics/b.jpg", MoveTo: qd}}, storage.DeleteOptions{})
			assert.Equal(t, storage.KeptTaken, out["pics/b.jpg|"+qd].Reason)
			assert.True(t, s13Exists(fsys, "pics/b.jpg"))
		}
	})
}

// Links on rootfs: a link is neither removed nor followed, and a file
// reached through a linked directory is refused.
func TestS13DeleteFollowsNoLink(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "media"), filepath.Join(base, "outside")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	secret := filepath.Join(outside, "s.jpg")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "dl")))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "fl.jpg")))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	out := s13Delete(t, fsys, []storage.Target{{Path: "dl/s.jpg"}, {Path: "fl.jpg"}, {Path: "dl", Dir: true}}, storage.DeleteOptions{})
	for k, o := range out {
		assert.NotEqual(t, storage.ActionDelete, o.Action, k)
	}
	_, err = os.Stat(secret)
	assert.NoError(t, err)
	_, err = os.Lstat(filepath.Join(root, "fl.jpg"))
	assert.NoError(t, err)
	_, err = os.Lstat(filepath.Join(root, "dl"))
	assert.NoError(t, err)
	// Through the afero API too.
	assert.Error(t, fsys.Remove("dl/s.jpg"))
	_ = fsys.RemoveAll("dl") // may remove the link itself, never what it points to
	_, err = os.Stat(secret)
	assert.NoError(t, err)
	_, err = fsys.Open("../outside/s.jpg")
	assert.Error(t, err)
}

// A cancelled ctx: Delete returns ctx.Err(), untried targets are
// KeptCancelled.
func TestS13DeleteCancelled(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		s13Put(t, fsys, "a/x.jpg")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var got []storage.Outcome
		err := storage.Delete(ctx, fsys, []storage.Target{{Path: "a/x.jpg"}}, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { got = append(got, o) }})
		assert.True(t, errors.Is(err, context.Canceled), "%v", err)
		require.Len(t, got, 1)
		assert.Equal(t, storage.KeptCancelled, got[0].Reason)
		assert.True(t, s13Exists(fsys, "a/x.jpg"))
	})
}

func TestS13ValidPathExamples(t *testing.T) {
	for _, p := range []string{"../x", "/etc/passwd", `C:\x`, "C:x", "a\x00b", "a\x01b", "a\u202eb.jpg", "cafe\u0301.jpg",
		"COM1 .txt", "com1.txt", "NUL .jpg", "CON", ".htaccess", "a/.b/c", "a\uffff.jpg", "a\ufffe", "a/\uff0e\uff0e/b",
		"a/", "a//b", "./a", "a/./b", "a.", "a ", "", `a\b`, "a:b"} {
		err := storage.ValidPath(p)
		if assert.Error(t, err, "%q", p) {
			assert.ErrorIs(t, err, storage.ErrUnsafePath, "%q", p)
			var pe *storage.PathError
			assert.ErrorAs(t, err, &pe)
		}
	}
	for _, p := range []string{"profile_pics/3f9c1e.jpg", "a b/c.png", "caf\u00e9.jpg", "a+b", " lead.jpg"} {
		assert.NoError(t, storage.ValidPath(p), "%q", p)
	}
}

func TestS13OlderThanBoundary(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.False(t, storage.OlderThan(now, now.Add(-time.Hour), time.Hour), "exactly age old is not older")
	assert.True(t, storage.OlderThan(now, now.Add(-time.Hour-time.Nanosecond), time.Hour))
	assert.False(t, storage.OlderThan(now, now.Add(time.Hour), 0), "the future is never old")
	assert.False(t, storage.OlderThan(now, time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC), time.Hour))
	assert.True(t, storage.OlderThan(now, time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), 500*24*time.Hour))
}

// RemoveEmptyDirs: never the root, stops below stop, keeps a protected
// directory and a non-empty one.
func TestS13RemoveEmptyDirs(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, d := range []string{"a/b/c", "keep/x", "full/y"} {
			require.NoError(t, fsys.MkdirAll(d, 0o755))
		}
		s13Put(t, fsys, "full/y/f.jpg")
		n := storage.RemoveEmptyDirs(t.Context(), fsys, []string{"a/b/c", "keep/x", "full/y", "", "."}, "a", storage.DeleteOptions{Protected: []string{"KEEP"}})
		assert.Equal(t, 2, n, "a/b/c and a/b")
		assert.True(t, s13Exists(fsys, "a"), "stop stays")
		assert.False(t, s13Exists(fsys, "a/b"))
		assert.True(t, s13Exists(fsys, "keep/x"), "protected")
		assert.True(t, s13Exists(fsys, "full/y/f.jpg"))
		require.NoError(t, fsys.MkdirAll("z/z", 0o755))
		storage.RemoveEmptyDirs(t.Context(), fsys, []string{"z/z"}, "", storage.DeleteOptions{})
		fi, err := fsys.Stat(".")
		require.NoError(t, err, "root stays")
		assert.True(t, fi.IsDir())
	})
}

// Every listing skips quarantine areas.
func TestS13ListSkipsQuarantine(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		s13Put(t, fsys, "a/"+storage.QuarantineDirName+"/r/x.jpg")
		s13Put(t, fsys, storage.QuarantineDirName+"/r/y.jpg")
		s13Put(t, fsys, "a/z.jpg")
		var got []string
		for _, o := range []storage.ListOptions{{}, {Sorted: true}, {Dir: "a"}, {From: "", To: "\xff"}} {
			require.NoError(t, storage.List(t.Context(), fsys, o, func(e storage.Entry) error {
				if !e.Type.IsDir() {
					got = append(got, e.Path)
				}
				return nil
			}))
		}
		assert.Equal(t, []string{"a/z.jpg", "a/z.jpg", "a/z.jpg", "a/z.jpg"}, got)
	})
}
