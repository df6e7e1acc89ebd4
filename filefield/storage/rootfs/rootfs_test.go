package rootfs_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// escapeTree lays out
//
//	base/outside/secret.txt          (must never change)
//	base/media-secret/x              (sibling that shares the root's prefix)
//	base/media/ok.jpg
//	base/media/link -> ../outside
//	base/media/dir  -> /
//	base/media/abs  -> base/outside  (absolute link)
//
// and returns base.
func escapeTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"outside", "media-secret", "media"} {
		require.NoError(t, os.MkdirAll(filepath.Join(base, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(base, "outside", "secret.txt"), []byte("secret"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "media-secret", "x"), []byte("sibling"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(base, "media", "ok.jpg"), []byte("ok"), 0o644))
	require.NoError(t, os.Symlink("../outside", filepath.Join(base, "media", "link")))
	require.NoError(t, os.Symlink("/", filepath.Join(base, "media", "dir")))
	require.NoError(t, os.Symlink(filepath.Join(base, "outside"), filepath.Join(base, "media", "abs")))
	return base
}

// attack tries every way out of the root through fsys and returns the
// operations that got out.
func attack(fsys afero.Fs) []string {
	var escaped []string
	try := func(what string, err error) {
		if err == nil {
			escaped = append(escaped, what)
		}
	}
	_, err := fsys.Stat("link/secret.txt")
	try("stat link/secret.txt", err)
	_, err = fsys.Open("dir/etc/hostname")
	try("open dir/etc/hostname", err)
	_, err = afero.ReadFile(fsys, "abs/secret.txt")
	try("read abs/secret.txt", err)
	_, err = afero.ReadFile(fsys, "../media-secret/x")
	try("read ../media-secret/x", err)
	try("write link/planted", afero.WriteFile(fsys, "link/planted", []byte("x"), 0o644))
	try("rename link/secret.txt", fsys.Rename("link/secret.txt", "stolen.txt"))
	try("remove ../media-secret/x", fsys.Remove("../media-secret/x"))
	try("remove link/secret.txt", fsys.Remove("link/secret.txt"))
	try("removeall abs/secret.txt", fsys.RemoveAll("abs/secret.txt"))
	return escaped
}

func outsideIntact(t *testing.T, base string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(base, "outside", "secret.txt"))
	require.NoError(t, err, "outside/secret.txt is gone")
	assert.Equal(t, "secret", string(got))
	got, err = os.ReadFile(filepath.Join(base, "media-secret", "x"))
	require.NoError(t, err, "media-secret/x is gone")
	assert.Equal(t, "sibling", string(got))
	_, err = os.Stat(filepath.Join(base, "outside", "planted"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "a file was planted outside the root")
}

func TestRootFsNoEscape(t *testing.T) {
	t.Parallel()
	base := escapeTree(t)
	rfs, err := rootfs.New(filepath.Join(base, "media"))
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })

	assert.Empty(t, attack(rfs), "operations that escaped the root")
	outsideIntact(t, base)

	// Fast paths: the listing reports the links as links and enters none;
	// batch removal through a link is refused.
	var files []string
	require.NoError(t, rfs.ListFiles(t.Context(), storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			files = append(files, e.Path)
		}
		return nil
	}))
	assert.Equal(t, []string{"ok.jpg"}, files)
	files = nil
	require.NoError(t, rfs.ListFiles(t.Context(), storage.ListOptions{Measure: measureNone}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			files = append(files, e.Path)
		}
		return nil
	}))
	assert.Equal(t, []string{"ok.jpg"}, files, "ListNames")
	outward := []string{"link/secret.txt", "abs/secret.txt", "dir/etc/hostname", "../media-secret/x"}
	var targets []storage.Target
	for _, p := range outward {
		targets = append(targets, storage.Target{Path: p})
	}
	errs := rfs.RemoveFiles(t.Context(), targets)
	for i, err := range errs {
		assert.Errorf(t, err, "RemoveFiles path %d was not refused", i)
	}
	// StatFiles reads through a verified handle on each directory: a
	// path through a link is an error, never a stat of what is outside.
	for _, p := range outward {
		err := rfs.StatFiles(t.Context(), []string{p}, func(_ int, e storage.Entry) error {
			t.Errorf("StatFiles reported %+v through a link", e)
			return nil
		})
		assert.Errorf(t, err, "StatFiles(%q) was not refused", p)
	}
	outsideIntact(t, base)
}

// TestListNamesThenStatFiles: ListNames leaves regular files unmeasured on
// a local disk (the point of it: no stat per file), StatFiles measures
// them, skips the missing, refuses names that are not names, and stops on
// a cancelled context.
func TestListNamesThenStatFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	var want []string
	for i := range 300 {
		p := filepath.Join(dir, "d"+strconv.Itoa(i%7), strconv.Itoa(i)+".png")
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, make([]byte, i), 0o644))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
		want = append(want, "d"+strconv.Itoa(i%7)+"/"+strconv.Itoa(i)+".png")
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "d0", "sub.png"), 0o755))
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()

	var paths []string
	require.NoError(t, rfs.ListFiles(t.Context(), storage.ListOptions{Measure: measureNone}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			assert.True(t, e.ModTime.IsZero() && e.Size == 0, "ListNames measured %+v", e)
			paths = append(paths, e.Path)
		}
		return nil
	}))
	assert.ElementsMatch(t, want, paths)

	// With a measure function, exactly the files it wants are measured.
	measured := 0
	require.NoError(t, rfs.ListFiles(t.Context(), storage.ListOptions{Measure: func(p string) bool { return strings.HasPrefix(p, "d3/") }}, func(e storage.Entry) error {
		if !e.Type.IsRegular() {
			return nil
		}
		if strings.HasPrefix(e.Path, "d3/") {
			measured++
			assert.True(t, e.ModTime.Equal(mtime), "%s was not measured", e.Path)
		} else {
			assert.True(t, e.ModTime.IsZero(), "%s was measured", e.Path)
		}
		return nil
	}))
	assert.Equal(t, 43, measured, "d3 holds 43 of the 300 files")

	paths = append(paths, "d3/gone.png", "nodir/gone.png", "d0/sub.png")
	got := map[string]storage.Entry{}
	require.NoError(t, rfs.StatFiles(t.Context(), paths, func(i int, e storage.Entry) error {
		assert.Equal(t, paths[i], e.Path)
		got[e.Path] = e
		return nil
	}))
	assert.Len(t, got, 301, "300 files and the directory; the missing are skipped")
	for i, p := range want {
		assert.Equal(t, int64(i), got[p].Size, p)
		assert.True(t, got[p].ModTime.Equal(mtime), p)
		assert.True(t, got[p].Type.IsRegular(), p)
	}
	assert.True(t, got["d0/sub.png"].Type.IsDir(), "a directory is reported as one")

	for _, bad := range []string{"d0/..", "d0/.", ""} {
		err := rfs.StatFiles(t.Context(), []string{"d0/1.png", bad}, func(int, storage.Entry) error { return nil })
		assert.ErrorIs(t, err, storage.ErrUnsafePath, "%q", bad)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = rfs.StatFiles(ctx, paths, func(int, storage.Entry) error { return nil })
	assert.ErrorIs(t, err, context.Canceled)
}

// TestBasePathFsEscapes documents why mediaclean does not use
// afero.BasePathFs: the same attack gets out of it.
func TestBasePathFsEscapes(t *testing.T) {
	t.Parallel()
	base := escapeTree(t)
	bfs := afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(base, "media"))
	escaped := attack(bfs)
	assert.Contains(t, escaped, "stat link/secret.txt", "BasePathFs follows links out of its base")
	assert.Contains(t, escaped, "read abs/secret.txt")
	assert.Contains(t, escaped, "remove ../media-secret/x", "BasePathFs checks names as text: a sibling with the same prefix is reachable")
	_, err := os.Stat(filepath.Join(base, "media-secret", "x"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "BasePathFs removed the sibling's file")
}

func TestRootFsRemoveRefusesInnerSymlinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "real"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "real", "a.jpg"), []byte("a"), 0o644))
	require.NoError(t, os.Symlink("real", filepath.Join(dir, "alias")))
	require.NoError(t, os.Symlink("real/a.jpg", filepath.Join(dir, "file-link")))
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })

	err = rfs.Remove("alias/a.jpg")
	assert.ErrorIs(t, err, storage.ErrSymlink, "Remove through an in-root directory link")
	assert.ErrorIs(t, rfs.RemoveFiles(t.Context(), []storage.Target{{Path: "alias/a.jpg"}})[0], storage.ErrSymlink)
	// A link as the last segment is removed itself, never its target.
	require.NoError(t, rfs.Remove("file-link"))
	got, err := os.ReadFile(filepath.Join(dir, "real", "a.jpg"))
	require.NoError(t, err)
	assert.Equal(t, "a", string(got))
	// The root itself is never removed.
	assert.ErrorIs(t, rfs.Remove(""), storage.ErrUnsafePath)
	assert.ErrorIs(t, rfs.Remove("/"), storage.ErrUnsafePath)
	assert.ErrorIs(t, rfs.RemoveAll("/"), storage.ErrUnsafePath)
}

// TestRootFsSwapRace swaps a directory for a link out of the root while
// another goroutine lists and removes in it: nothing outside changes.
func TestRootFsSwapRace(t *testing.T) {
	t.Parallel()
	base := escapeTree(t)
	media := filepath.Join(base, "media")
	rfs, err := rootfs.New(media)
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	for i := range 200 {
		sub := filepath.Join(media, "swap")
		require.NoError(t, os.RemoveAll(sub))
		require.NoError(t, os.MkdirAll(sub, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "secret.txt"), []byte("x"), 0o644))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = os.Rename(sub, filepath.Join(media, "swapped-away"))
			_ = os.Symlink(filepath.Join(base, "outside"), sub)
		}()
		_ = rfs.ListFiles(context.Background(), storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
			if e.Type.IsRegular() && filepath.Base(e.Path) == "secret.txt" {
				rfs.RemoveFiles(context.Background(), []storage.Target{{Path: e.Path}})
			}
			return nil
		})
		_ = rfs.Remove("swap/secret.txt")
		wg.Wait()
		require.NoError(t, os.RemoveAll(filepath.Join(media, "swapped-away")))
		require.NoError(t, os.Remove(sub))
		if t.Failed() {
			t.Fatalf("iteration %d", i)
		}
		outsideIntact(t, base)
	}
}

func TestWalkFallbackSkipsLinksAndHonoursSkipDir(t *testing.T) {
	t.Parallel()
	base := escapeTree(t)
	require.NoError(t, os.MkdirAll(filepath.Join(base, "media", "skip"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "media", "skip", "x.jpg"), []byte("x"), 0o644))
	osfs := afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(base, "media"))
	var got []string
	err := storage.List(t.Context(), plain{osfs}, storage.ListOptions{}, func(e storage.Entry) error {
		got = append(got, e.Path)
		if e.Path == "skip" {
			return fs.SkipDir
		}
		return nil
	})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"ok.jpg", "link", "dir", "abs", "skip"}, got)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = storage.List(ctx, plain{osfs}, storage.ListOptions{}, func(storage.Entry) error { return nil })
	assert.True(t, errors.Is(err, context.Canceled))
}

// TestListTreeStopsCleanly: an error from fn, SkipDir and a cancelled
// context each stop the parallel listing without leaking workers or
// handles (goleak checks the goroutines in TestMain).
func TestListTreeStopsCleanly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 40 {
		sub := filepath.Join(dir, "d"+strconv.Itoa(i), "e")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		for j := range 30 {
			require.NoError(t, os.WriteFile(filepath.Join(sub, strconv.Itoa(j)+".png"), []byte("x"), 0o644))
		}
	}
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()

	stop := errors.New("stop")
	n := 0
	err = rfs.ListFiles(t.Context(), storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
		if n++; n == 100 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)

	var files int
	require.NoError(t, rfs.ListFiles(t.Context(), storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
		if e.Type.IsDir() && strings.HasSuffix(e.Path, "/e") && !strings.HasPrefix(e.Path, "d1/") {
			return fs.SkipDir
		}
		if e.Type.IsRegular() {
			files++
		}
		return nil
	}))
	assert.Equal(t, 30, files, "only d1/e was entered")

	ctx, cancel := context.WithCancel(t.Context())
	n = 0
	err = rfs.ListFiles(ctx, storage.ListOptions{Dir: ""}, func(storage.Entry) error {
		if n++; n == 50 {
			cancel()
		}
		return nil
	})
	assert.ErrorIs(t, err, context.Canceled)
}

// RemoveDir removes an empty directory and nothing else: not a file, a
// link or a non-empty directory, whatever the caller checked before.
func TestRootFsRemoveDirOnlyRemovesEmptyDirs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "full"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "full", "x.jpg"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file.jpg"), []byte("f"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "target"), 0o755))
	require.NoError(t, os.Symlink("target", filepath.Join(dir, "link")))
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()

	assert.Error(t, rfs.RemoveDir("file.jpg"), "a file is not removed")
	assert.Error(t, rfs.RemoveDir("full"), "a non-empty directory is not removed")
	assert.Error(t, rfs.RemoveDir("link"), "a link is not removed")
	assert.ErrorIs(t, rfs.RemoveDir("link/x"), storage.ErrSymlink, "no link is followed")
	assert.ErrorIs(t, rfs.RemoveDir(""), storage.ErrUnsafePath, "never the root")
	require.NoError(t, rfs.RemoveDir("empty"))
	for _, p := range []string{"file.jpg", "full/x.jpg", "link", "target"} {
		_, err := os.Lstat(filepath.Join(dir, p))
		assert.NoError(t, err, p)
	}
	_, err = os.Stat(filepath.Join(dir, "empty"))
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// TestListTreeSurvivesAPanickingCallback: a callback that panics (a bug in
// the caller, recovered by an HTTP server, say) strands no worker and
// leaks no directory handle, in ListTree, ListNames and StatFiles.
func TestListTreeSurvivesAPanickingCallback(t *testing.T) {
	dir := t.TempDir()
	for i := range 30 {
		sub := filepath.Join(dir, "d"+strconv.Itoa(i), "e")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(sub, "x.png"), []byte("x"), 0o644))
	}
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()
	openFDs := func() int { // -1 where there is no /proc (not Linux)
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return -1
		}
		return len(fds)
	}
	before, fds := goleak.IgnoreCurrent(), openFDs()
	listTree := func(ctx context.Context, dir string, fn func(storage.Entry) error) error {
		return rfs.ListFiles(ctx, storage.ListOptions{Dir: dir}, fn)
	}
	listNames := func(ctx context.Context, dir string, fn func(storage.Entry) error) error {
		return rfs.ListFiles(ctx, storage.ListOptions{Dir: dir, Measure: measureNone}, fn)
	}
	listSorted := func(ctx context.Context, dir string, fn func(storage.Entry) error) error {
		return rfs.ListFiles(ctx, storage.ListOptions{Dir: dir, Sorted: true}, fn)
	}
	for _, list := range []func(context.Context, string, func(storage.Entry) error) error{listTree, listNames, listSorted} {
		n := 0
		assert.PanicsWithValue(t, "caller bug", func() {
			_ = list(t.Context(), "", func(storage.Entry) error {
				if n++; n == 40 {
					panic("caller bug")
				}
				return nil
			})
		})
	}
	var paths []string
	for i := range 30 {
		paths = append(paths, "d"+strconv.Itoa(i)+"/e/x.png")
	}
	assert.PanicsWithValue(t, "caller bug", func() {
		_ = rfs.StatFiles(t.Context(), paths, func(int, storage.Entry) error { panic("caller bug") })
	})
	goleak.VerifyNone(t, before)
	assert.Equal(t, fds, openFDs(), "directory handles leaked")
}

// RemoveFiles checks a target with Check in the stat it makes just
// before the unlink (Features.ChecksOnRemove): a file whose size or time
// changed since the caller saw it is refused with storage.ErrChanged and
// stays; an unchanged one, to the second, goes.
func TestRootFsRemoveChecksSizeAndTime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()
	require.True(t, rfs.Features().ChecksOnRemove)
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"same", "bigger", "newer", "unchecked"} {
		p := filepath.Join(dir, name)
		body, mtime := "12345", seen.Add(400*time.Millisecond)
		switch name {
		case "bigger":
			body = "123456"
		case "newer":
			mtime = seen.Add(time.Second)
		case "unchecked":
			body = "1"
		}
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		require.NoError(t, os.Chtimes(p, mtime, mtime))
	}
	errs := rfs.RemoveFiles(t.Context(), []storage.Target{
		{Path: "same", Size: 5, ModTime: seen, Check: true},
		{Path: "bigger", Size: 5, ModTime: seen, Check: true},
		{Path: "newer", Size: 5, ModTime: seen, Check: true},
		{Path: "unchecked", Size: 5, ModTime: seen},
	})
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], storage.ErrChanged)
	assert.ErrorIs(t, errs[2], storage.ErrChanged)
	assert.NoError(t, errs[3], "no Check, no comparison")
	for name, want := range map[string]bool{"same": false, "bigger": true, "newer": true, "unchecked": false} {
		_, err := os.Stat(filepath.Join(dir, name))
		assert.Equal(t, want, err == nil, name)
	}
}
