package storage_test

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// localBackends are the backends on a real directory (where links exist)
// and in memory; the S3 backend runs the same checks in package s3fs.
func localBackends(t *testing.T) map[string]func(t *testing.T) (afero.Fs, string) {
	return map[string]func(t *testing.T) (afero.Fs, string){
		"RootFs": func(t *testing.T) (afero.Fs, string) {
			dir := t.TempDir()
			rfs, err := rootfs.New(dir)
			require.NoError(t, err)
			t.Cleanup(func() { rfs.Close() })
			return rfs, dir
		},
		"OsFs": func(t *testing.T) (afero.Fs, string) {
			dir := t.TempDir()
			return afero.NewBasePathFs(afero.NewOsFs(), dir), dir
		},
		"MemMapFs": func(t *testing.T) (afero.Fs, string) { return afero.NewMemMapFs(), "" },
		// RootFs checks a target's size and time as it removes it; hidden,
		// Delete re-checks first. The outcomes must be the same.
		"RootFs re-checked": func(t *testing.T) (afero.Fs, string) {
			dir := t.TempDir()
			rfs, err := rootfs.New(dir)
			require.NoError(t, err)
			t.Cleanup(func() { rfs.Close() })
			return recheckedFs{rfs}, dir
		},
	}
}

// recheckedFs is a RootFs that does not say it checks on removal.
type recheckedFs struct{ *rootfs.Fs }

func (r recheckedFs) Features() storage.Features {
	f := r.Fs.Features()
	f.ChecksOnRemove = false
	return f
}

func writeAt(t *testing.T, fsys afero.Fs, p, content string, mtime time.Time) {
	t.Helper()
	require.NoError(t, fsys.MkdirAll(path.Dir(p), 0o755))
	require.NoError(t, afero.WriteFile(fsys, p, []byte(content), 0o644))
	if !mtime.IsZero() {
		require.NoError(t, fsys.Chtimes(p, mtime, mtime))
	}
}

// deleteAll runs Delete and returns the outcomes by path (a move's by its
// source), failing if a target gets none or more than one.
func deleteAll(t *testing.T, fsys afero.Fs, targets []storage.Target, opts storage.DeleteOptions) map[string]storage.Outcome {
	t.Helper()
	got := map[string]storage.Outcome{}
	opts.OnOutcome = func(o storage.Outcome) {
		_, dup := got[o.Path]
		require.Falsef(t, dup, "two outcomes for %s", o.Path)
		got[o.Path] = o
	}
	_ = storage.Delete(t.Context(), fsys, targets, opts)
	require.Len(t, got, len(targets), "one outcome per target")
	return got
}

func TestDeleteRefusesWhatItMayNotTouch(t *testing.T) {
	t.Parallel()
	for name, newFs := range localBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := newFs(t)
			temp := storage.TempPrefix + strings.Repeat("ab", 16)
			for _, p := range []string{"a/ok.jpg", "a/keep.jpg", "a/" + temp, "a/.mediaclean-tmp-short", "a/.hidden",
				"t/.mediaclean-quarantine/r1/a/x.jpg", "a/x.jpg"} {
				writeAt(t, fsys, p, p, time.Time{})
			}
			targets := []storage.Target{
				{Path: "a/ok.jpg"},
				{Path: "a/keep.jpg"},                          // protected
				{Path: "a/" + temp},                           // a temp file, not allowed by default
				{Path: "a/.mediaclean-tmp-short"},             // not a name filefield makes
				{Path: "a/.hidden"},                           // not a stored path
				{Path: "../x.jpg"},                            // out of the root
				{Path: "t/.mediaclean-quarantine/r1/a/x.jpg"}, // quarantined, not allowed by default
				{Path: "a/x.jpg", MoveTo: "t/.mediaclean-quarantine/r1/b/x.jpg"}, // not its own quarantine path
				{Path: "a/x.jpg", MoveTo: "elsewhere/x.jpg"},                     // a move that is not a quarantine's
				{Path: ".", Dir: true},                                           // the root
				{Path: "", Dir: true},                                            // the root again
			}
			got := map[string][]storage.Outcome{}
			err := storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{
				Protected: []string{"a/keep.*"},
				OnOutcome: func(o storage.Outcome) { got[o.Path] = append(got[o.Path], o) },
			})
			require.NoError(t, err)
			n := 0
			for _, os := range got {
				n += len(os)
			}
			assert.Equal(t, len(targets), n, "one outcome per target")
			assert.Equal(t, storage.ActionDelete, got["a/ok.jpg"][0].Action)
			assert.Equal(t, storage.KeptProtected, got["a/keep.jpg"][0].Reason)
			for _, p := range []string{"a/" + temp, "a/.mediaclean-tmp-short", "a/.hidden", "../x.jpg", "t/.mediaclean-quarantine/r1/a/x.jpg", ".", ""} {
				require.NotEmpty(t, got[p], p)
				assert.Equal(t, storage.ActionKeep, got[p][0].Action, p)
				assert.Equal(t, storage.KeptUnsafe, got[p][0].Reason, p)
			}
			for _, o := range got["a/x.jpg"] {
				assert.Equal(t, storage.KeptUnsafe, o.Reason)
			}
			for _, p := range []string{"a/keep.jpg", "a/" + temp, "a/.mediaclean-tmp-short", "a/.hidden", "t/.mediaclean-quarantine/r1/a/x.jpg", "a/x.jpg"} {
				_, err := fsys.Stat(p)
				assert.NoError(t, err, "%s must still be there", p)
			}

			// With the right permission, temp files and quarantined files go.
			out := deleteAll(t, fsys, []storage.Target{{Path: "a/" + temp}, {Path: "t/.mediaclean-quarantine/r1/a/x.jpg"}},
				storage.DeleteOptions{AllowTemp: true, AllowQuarantine: true})
			for p, o := range out {
				assert.Equal(t, storage.ActionDelete, o.Action, p)
			}
		})
	}
}

// features wraps a backend to report other features.
type features struct {
	afero.Fs
	f storage.Features
}

func (f features) Features() storage.Features { return f.f }

// On an object store filefield never writes temp names, so such a name is
// someone else's file: Delete refuses it even when temp files are allowed.
func TestDeleteTempNamesOnlyWhereFilefieldWritesThem(t *testing.T) {
	t.Parallel()
	temp := "q/" + storage.TempPrefix + strings.Repeat("0f", 16)
	fsys := features{afero.NewMemMapFs(), storage.Features{AtomicCreate: true}}
	writeAt(t, fsys, temp, "theirs", time.Time{})
	out := deleteAll(t, fsys, []storage.Target{{Path: temp}}, storage.DeleteOptions{AllowTemp: true})
	assert.Equal(t, storage.KeptUnsafe, out[temp].Reason)
	_, err := fsys.Stat(temp)
	assert.NoError(t, err)
}

func TestDeleteThroughLinksIsRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"RootFs", "OsFs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := localBackends(t)[name](t)
			writeAt(t, fsys, "real/x.jpg", "live", time.Time{})
			writeAt(t, fsys, "real/y.jpg", "live", time.Time{})
			require.NoError(t, os.Symlink("real", filepath.Join(dir, "link")))
			require.NoError(t, os.Symlink("real/y.jpg", filepath.Join(dir, "ylink.jpg")))
			out := deleteAll(t, fsys, []storage.Target{
				{Path: "link/x.jpg"},
				{Path: "link/y.jpg", MoveTo: "t/.mediaclean-quarantine/r/link/y.jpg"},
				{Path: "ylink.jpg", MoveTo: "t/.mediaclean-quarantine/r/ylink.jpg"},
			}, storage.DeleteOptions{})
			assert.Equal(t, storage.KeptUnsafe, out["link/x.jpg"].Reason)
			assert.Equal(t, storage.KeptUnsafe, out["link/y.jpg"].Reason)
			assert.Equal(t, storage.KeptNotRegular, out["ylink.jpg"].Reason, "a link itself is not moved either")
			assert.Equal(t, []string{"real/x.jpg", "real/y.jpg"}, regular(t, dir))
		})
	}
}

// regular lists the regular files under dir on disk, following nothing.
func regular(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return err
	}))
	slices.Sort(out)
	return out
}

func TestDeleteChecksWhatTheCallerSaw(t *testing.T) {
	t.Parallel()
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, newFs := range localBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := newFs(t)
			writeAt(t, fsys, "a/same.jpg", "12345", old)
			writeAt(t, fsys, "a/bigger.jpg", "123456", old)
			writeAt(t, fsys, "a/newer.jpg", "12345", old.Add(time.Hour))
			writeAt(t, fsys, "a/unchecked.jpg", "123456789", old.Add(time.Hour))
			out := deleteAll(t, fsys, []storage.Target{
				{Path: "a/same.jpg", Size: 5, ModTime: old.Add(300 * time.Millisecond), Check: true},
				{Path: "a/bigger.jpg", Size: 5, ModTime: old, Check: true},
				{Path: "a/newer.jpg", Size: 5, ModTime: old, Check: true},
				{Path: "a/gone.jpg", Size: 5, ModTime: old, Check: true},
				{Path: "a/unchecked.jpg", Size: 5, ModTime: old},
				{Path: "a/gone-unchecked.jpg"},
			}, storage.DeleteOptions{})
			assert.Equal(t, storage.ActionDelete, out["a/same.jpg"].Action, "the same to the second")
			assert.Equal(t, storage.KeptChanged, out["a/bigger.jpg"].Reason)
			assert.Equal(t, storage.KeptChanged, out["a/newer.jpg"].Reason)
			assert.Equal(t, storage.KeptGone, out["a/gone.jpg"].Reason)
			assert.Equal(t, storage.ActionDelete, out["a/unchecked.jpg"].Action, "no Check, no comparison")
			assert.Equal(t, storage.KeptGone, out["a/gone-unchecked.jpg"].Reason)
			assert.Equal(t, int64(5), out["a/unchecked.jpg"].Size, "outcomes carry the target's figures")
		})
	}
}

func TestMovesNeverReplace(t *testing.T) {
	t.Parallel()
	for name, newFs := range localBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := newFs(t)
			q := "t/.mediaclean-quarantine/r"
			writeAt(t, fsys, "a/x.jpg", "orphan", time.Time{})
			writeAt(t, fsys, "a/y.jpg", "orphan y", time.Time{})
			writeAt(t, fsys, q+"/a/y.jpg", "earlier run's y", time.Time{})
			out := deleteAll(t, fsys, []storage.Target{
				{Path: "a/x.jpg", MoveTo: q + "/a/x.jpg"},
				{Path: "a/y.jpg", MoveTo: q + "/a/y.jpg"},
			}, storage.DeleteOptions{})
			assert.Equal(t, storage.ActionMove, out["a/x.jpg"].Action)
			assert.Equal(t, storage.KeptTaken, out["a/y.jpg"].Reason)
			assert.Equal(t, "earlier run's y", string(must(afero.ReadFile(fsys, q+"/a/y.jpg"))))
			assert.Equal(t, "orphan y", string(must(afero.ReadFile(fsys, "a/y.jpg"))))

			// Restoring over a dangling link replaces nothing either.
			if dir != "" {
				require.NoError(t, os.Symlink("nowhere", filepath.Join(dir, "a", "x.jpg")))
				out = deleteAll(t, fsys, []storage.Target{{Path: q + "/a/x.jpg", MoveTo: "a/x.jpg"}}, storage.DeleteOptions{AllowQuarantine: true})
				assert.Equal(t, storage.KeptTaken, out[q+"/a/x.jpg"].Reason)
				target, err := os.Readlink(filepath.Join(dir, "a", "x.jpg"))
				require.NoError(t, err)
				assert.Equal(t, "nowhere", target, "the link is still there")
				require.NoError(t, os.Remove(filepath.Join(dir, "a", "x.jpg")))
			}
			out = deleteAll(t, fsys, []storage.Target{{Path: q + "/a/x.jpg", MoveTo: "a/x.jpg"}}, storage.DeleteOptions{AllowQuarantine: true})
			assert.Equal(t, storage.ActionMove, out[q+"/a/x.jpg"].Action)
			assert.Equal(t, "orphan", string(must(afero.ReadFile(fsys, "a/x.jpg"))))
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestDeleteDryRunChecksButDoesNotAct(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	writeAt(t, fsys, "a/x.jpg", "x", time.Time{})
	var got []storage.Outcome
	require.NoError(t, storage.Delete(t.Context(), fsys, []storage.Target{
		{Path: "a/x.jpg"},
		{Path: "a/x.jpg", MoveTo: "q/.mediaclean-quarantine/r/a/x.jpg"},
		{Path: "../x"},
	}, storage.DeleteOptions{DryRun: true, OnOutcome: func(o storage.Outcome) { got = append(got, o) }}))
	require.Len(t, got, 3)
	assert.Equal(t, storage.ActionWouldDelete, got[0].Action)
	assert.Equal(t, storage.ActionWouldMove, got[1].Action)
	assert.Equal(t, storage.KeptUnsafe, got[2].Reason, "refused, as in a real run")
	_, err := fsys.Stat("a/x.jpg")
	assert.NoError(t, err)
}

func TestDeleteStopsAtCancelAndReportsTheRest(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	var targets []storage.Target
	for i := range 2500 {
		p := "a/" + strings.Repeat("x", 1+i%7) + string(rune('a'+i%26)) + ".jpg"
		targets = append(targets, storage.Target{Path: p})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n, cancelled := 0, 0
	err := storage.Delete(ctx, fsys, targets, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) {
		n++
		if o.Reason == storage.KeptCancelled {
			cancelled++
		}
	}})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, len(targets), n)
	assert.Equal(t, len(targets), cancelled)
}

// A callback that panics panics in the caller, not in a worker, and
// strands no worker (TestMain checks for leaks).
func TestDeleteCallbackPanicReachesTheCaller(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	var targets []storage.Target
	for i := range 3000 {
		p := "a/f" + strings.Repeat("0", i%5) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)) + ".jpg"
		writeAt(t, fsys, p, "x", time.Time{})
		targets = append(targets, storage.Target{Path: p})
	}
	assert.PanicsWithValue(t, "boom", func() {
		_ = storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{Concurrency: 4, OnOutcome: func(storage.Outcome) { panic("boom") }})
	})
}

func TestRemoveEmptyDirs(t *testing.T) {
	t.Parallel()
	for name, newFs := range localBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := newFs(t)
			require.NoError(t, fsys.MkdirAll("a/b/c", 0o755))
			require.NoError(t, fsys.MkdirAll("a/full", 0o755))
			writeAt(t, fsys, "a/full/x.jpg", "x", time.Time{})
			require.NoError(t, fsys.MkdirAll("keep/d", 0o755))
			if dir != "" {
				require.NoError(t, fsys.MkdirAll("real", 0o755))
				require.NoError(t, os.Symlink("real", filepath.Join(dir, "keep", "link")))
			}
			n := storage.RemoveEmptyDirs(t.Context(), fsys, []string{"a/b/c", "a/full"}, "", storage.DeleteOptions{})
			assert.Equal(t, 2, n, "a/b/c and a/b; a holds full")
			n = storage.RemoveEmptyDirs(t.Context(), fsys, []string{"keep/d", "keep/link", "a/full"}, "keep", storage.DeleteOptions{})
			assert.Equal(t, 1, n, "keep/d; keep is the stop, a/full is not below it")
			for _, p := range []string{"a", "a/full/x.jpg", "keep"} {
				_, err := fsys.Stat(p)
				assert.NoError(t, err, p)
			}
			for _, p := range []string{"a/b", "keep/d"} {
				_, err := fsys.Stat(p)
				assert.Error(t, err, p)
			}
			if dir != "" {
				_, err := os.Lstat(filepath.Join(dir, "keep", "link"))
				assert.NoError(t, err, "a link is never removed as a directory")
			}
			// The root is never removed, even when empty and asked for.
			empty, _ := newFs(t)
			out := deleteAll(t, empty, []storage.Target{{Path: ".", Dir: true}}, storage.DeleteOptions{})
			assert.Equal(t, storage.KeptUnsafe, out["."].Reason)
		})
	}
}

// Listings never show a quarantine area, on any backend and through every
// entry point.
func TestListingsSkipQuarantine(t *testing.T) {
	t.Parallel()
	for name, newFs := range localBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := newFs(t)
			writeAt(t, fsys, "a/x.jpg", "x", time.Time{})
			writeAt(t, fsys, "trash/.mediaclean-quarantine/r/a/y.jpg", "y", time.Time{})
			writeAt(t, fsys, ".mediaclean-quarantine/r/z.jpg", "z", time.Time{})
			want := []string{"a/x.jpg"}
			collect := func(list func(fn func(storage.Entry) error) error) []string {
				var got []string
				require.NoError(t, list(func(e storage.Entry) error {
					if !e.Type.IsDir() {
						got = append(got, e.Path)
					}
					return nil
				}))
				slices.Sort(got)
				return got
			}
			ctx := t.Context()
			assert.Equal(t, want, collect(func(fn func(storage.Entry) error) error {
				return storage.List(ctx, fsys, storage.ListOptions{}, fn)
			}))
			plain := struct{ afero.Fs }{fsys} // no fast paths: the portable walk
			assert.Equal(t, want, collect(func(fn func(storage.Entry) error) error {
				return storage.List(ctx, plain, storage.ListOptions{}, fn)
			}))
			assert.Equal(t, want, collect(func(fn func(storage.Entry) error) error {
				return storage.List(ctx, fsys, storage.ListOptions{Measure: func(string) bool { return false }}, fn)
			}))
			assert.Equal(t, want, collect(func(fn func(storage.Entry) error) error {
				return storage.List(ctx, fsys, storage.ListOptions{From: "", To: "\xff"}, fn)
			}))
		})
	}
}

// etagFs is MemMapFs with entity tags, as an object store has them: its
// Stater reports each file's tag from tags, and its Remover records the
// targets it is given and refuses, with ErrChanged, one whose ETag is not
// the file's tag, as a conditional delete would.
type etagFs struct {
	afero.Fs
	tags map[string]string
	got  []storage.Target
}

func (f *etagFs) StatFiles(ctx context.Context, paths []string, fn func(int, storage.Entry) error) error {
	return storage.Restat(ctx, f.Fs, paths, func(i int, e storage.Entry) error {
		e.ETag = f.tags[e.Path]
		return fn(i, e)
	})
}

func (f *etagFs) RemoveFiles(ctx context.Context, targets []storage.Target) []error {
	f.got = append(f.got, targets...)
	errs := make([]error, len(targets))
	var pass []storage.Target
	var idx []int
	for i, t := range targets {
		if t.ETag != "" && strings.Trim(t.ETag, `"`) != strings.Trim(f.tags[t.Path], `"`) {
			errs[i] = &storage.PathError{Op: "remove", Path: t.Path, Err: storage.ErrChanged}
			continue
		}
		pass, idx = append(pass, t), append(idx, i)
	}
	for j, err := range storage.RemoveFiles(ctx, f.Fs, pass) {
		errs[idx[j]] = err
	}
	return errs
}

func (f *etagFs) RemoveDir(name string) error { return f.Fs.Remove(name) }

func (f *etagFs) Features() storage.Features { return storage.Features{ConditionalDeletes: "batch"} }

// A target's ETag is compared by the re-check (quoted or not), and the
// removal is asked to be conditional on the caller's ETag, or on the one
// the re-check saw when the caller had none; a refusal is KeptChanged.
func TestDeleteChecksETags(t *testing.T) {
	t.Parallel()
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fsys := &etagFs{Fs: afero.NewMemMapFs(), tags: map[string]string{
		"a/same.jpg": `"e1"`, "a/rewritten.jpg": `"e3"`, "a/untagged.jpg": `"e4"`, "a/raced.jpg": `"e6"`,
	}}
	for p := range fsys.tags {
		writeAt(t, fsys, p, "12345", old)
	}
	out := deleteAll(t, fsys, []storage.Target{
		{Path: "a/same.jpg", Size: 5, ModTime: old, Check: true, ETag: "e1"},
		{Path: "a/rewritten.jpg", Size: 5, ModTime: old, Check: true, ETag: `"e2"`},
		{Path: "a/untagged.jpg", Size: 5, ModTime: old, Check: true},
		{Path: "a/raced.jpg", Size: 5, ModTime: old, ETag: `"e5"`}, // no re-check: only the removal can tell
	}, storage.DeleteOptions{})
	assert.Equal(t, storage.ActionDelete, out["a/same.jpg"].Action, "quotes do not matter")
	assert.Equal(t, storage.KeptChanged, out["a/rewritten.jpg"].Reason, "same size and time, another ETag")
	assert.Equal(t, storage.ActionDelete, out["a/untagged.jpg"].Action)
	assert.Equal(t, storage.KeptChanged, out["a/raced.jpg"].Reason, "the backend's refusal keeps the file")
	_, err := fsys.Stat("a/rewritten.jpg")
	assert.NoError(t, err)
	_, err = fsys.Stat("a/raced.jpg")
	assert.NoError(t, err)
	sent := map[string]string{}
	for _, tg := range fsys.got {
		sent[tg.Path] = tg.ETag
	}
	assert.Equal(t, map[string]string{"a/same.jpg": "e1", "a/untagged.jpg": `"e4"`, "a/raced.jpg": `"e5"`}, sent,
		"the caller's ETag, or the re-check's when it had none")
}
