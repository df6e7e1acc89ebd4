package sweep_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// s13Backends: rootfs on a temporary directory and afero's MemMapFs.
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

// s13All lists every regular file and directory, quarantine areas included.
func s13All(t *testing.T, fsys afero.Fs) []string {
	var out []string
	require.NoError(t, afero.Walk(fsys, ".", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		p = filepath.ToSlash(p)
		if p == "." {
			return nil
		}
		if fi.IsDir() {
			p += "/"
		}
		out = append(out, p)
		return nil
	}))
	sort.Strings(out)
	return out
}

func s13Tree(t *testing.T, fsys afero.Fs) {
	put(t, fsys, "qr_codes/1/a.png", 10, 10*day)
	put(t, fsys, "qr_codes/1/b.png", 20, 9*day)
	put(t, fsys, "qr_codes/2/c.png", 30, 8*day)
	put(t, fsys, "qr_codes/2/d.png", 40, time.Hour)
	put(t, fsys, "qr_codes/3/sub/e.png", 50, 10*day)
	put(t, fsys, "qr_codes/Keep/f.png", 60, 10*day)
	put(t, fsys, "avatars/x.jpg", 70, 100*day)
}

// A dry run gives the same report as the real run, but for DirsRemoved.
func TestS13DryRunReportEqualsRealRun(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		s13Tree(t, fsys)
		opts := sweep.Options{
			Rules:           []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}},
			Protected:       []string{"qr_codes/keep"},
			RemoveEmptyDirs: true,
			Now:             clock,
		}
		dry := opts
		dry.DryRun = true
		var dryEvents, realEvents []string
		dry.OnEvent = func(e sweep.Event) { dryEvents = append(dryEvents, e.Path+":"+e.Reason) }
		opts.OnEvent = func(e sweep.Event) { realEvents = append(realEvents, e.Path+":"+e.Reason) }
		before := s13All(t, fsys)
		drep, err := sweep.New(fsys, dry).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, before, s13All(t, fsys), "a dry run changes nothing")
		rrep, err := sweep.New(fsys, opts).Sweep(t.Context())
		require.NoError(t, err)
		sort.Strings(dryEvents)
		sort.Strings(realEvents)
		assert.Equal(t, realEvents, dryEvents, "same decisions")
		assert.Equal(t, rrep.Deleted, drep.Deleted)
		assert.Equal(t, rrep.Kept, drep.Kept)
		assert.Equal(t, rrep.Matched, drep.Matched)
		assert.Equal(t, rrep.Scanned, drep.Scanned)
		assert.Equal(t, rrep.TopDirs, drep.TopDirs)
		assert.Equal(t, 4, rrep.Deleted.Files)
		// The one documented difference: a dry run does not count the
		// directories the real run finds empty (it said "the same report"
		// until session 13).
		assert.Equal(t, 3, rrep.DirsRemoved)
		assert.Zero(t, drep.DirsRemoved)
	})
}

// RemoveEmptyDirs: never the root, never Options.Dir.
func TestS13RemoveEmptyDirsKeepsRootAndDir(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "a/b/c.png", 1, 10*day)
		put(t, fsys, "top.png", 1, 10*day)
		_, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock, RemoveEmptyDirs: true, Dir: "a/b"}).Sweep(t.Context())
		require.NoError(t, err)
		fi, err := fsys.Stat("a/b")
		require.NoError(t, err, "Options.Dir stays")
		assert.True(t, fi.IsDir())
		_, err = sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock, RemoveEmptyDirs: true}).Sweep(t.Context())
		require.NoError(t, err)
		fi, err = fsys.Stat(".")
		require.NoError(t, err, "the root stays")
		assert.True(t, fi.IsDir())
		assert.Empty(t, files(t, fsys))
	})
}

// Temp files: zero TempMaxAge is one day; negative keeps them all; a
// protected one is kept; the quarantine area is never listed.
func TestS13TempFilesAndQuarantine(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "avatars/"+crashed, 5, 2*day)
		put(t, fsys, "avatars/"+inflight, 5, 23*time.Hour)
		put(t, fsys, "receipts/"+crashed, 5, 2*day)
		q := "trash/" + storage.QuarantineDirName + "/run/qr_codes/old.png"
		put(t, fsys, q, 5, 100*day)
		put(t, fsys, "qr_codes/x.png", 5, 100*day)
		rules := []sweep.Rule{{Glob: "**", MaxAge: day}}

		rep, err := sweep.New(fsys, sweep.Options{Rules: rules, Now: clock, TempMaxAge: -1, DryRun: true, Protected: []string{"receipts"}}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files, "negative TempMaxAge keeps every temp file: %+v", rep)

		rep, err = sweep.New(fsys, sweep.Options{Rules: rules, Now: clock, Protected: []string{"receipts"}, RemoveEmptyDirs: true}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 2, rep.Deleted.Files, "the crashed temp file and the old QR code: %+v", rep)
		all := s13All(t, fsys)
		assert.NotContains(t, all, "avatars/"+crashed, "older than one day: removed")
		assert.Contains(t, all, "avatars/"+inflight, "younger than one day: kept")
		assert.Contains(t, all, "receipts/"+crashed, "protected")
		assert.Contains(t, all, q, "the quarantine area is never swept")
		assert.NotContains(t, all, "qr_codes/x.png")
	})
}

// Protected and excluded globs match regardless of case; a glob naming a
// folder protects all it holds.
func TestS13ProtectedCaseAndFolder(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "Receipts/2020/a.pdf", 1, 100*day)
		put(t, fsys, "qr_codes/KEEP/b.png", 1, 100*day)
		put(t, fsys, "qr_codes/c.png", 1, 100*day)
		_, err := sweep.New(fsys, sweep.Options{
			Rules:     []sweep.Rule{{Glob: "qr_codes/**", MaxAge: day, Exclude: []string{"qr_codes/keep"}}, {Glob: "receipts/**", MaxAge: day}, {Glob: "Receipts/**", MaxAge: day}},
			Protected: []string{"RECEIPTS"},
			Now:       clock,
		}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{"Receipts/2020/a.pdf", "qr_codes/KEEP/b.png"}, files(t, fsys))
	})
}

// Budgets: the dry run and the real run stop at the same file; Stopped
// says which budget.
func TestS13BudgetDryRunSameCut(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"q/e.png", "q/a.png", "q/d.png", "q/b.png", "q/c.png"} {
			put(t, fsys, p, 10, 10*day)
		}
		var dryDel, realDel []string
		opts := sweep.Options{Rules: []sweep.Rule{{Glob: "q/**", MaxAge: day}}, Now: clock, Budget: sweep.Budget{Files: 2}}
		d := opts
		d.DryRun = true
		d.OnEvent = func(e sweep.Event) {
			if e.Action == sweep.ActionWouldDelete {
				dryDel = append(dryDel, e.Path)
			}
		}
		opts.OnEvent = func(e sweep.Event) {
			if e.Action == sweep.ActionDelete {
				realDel = append(realDel, e.Path)
			}
		}
		drep, err := sweep.New(fsys, d).Sweep(t.Context())
		require.NoError(t, err)
		rrep, err := sweep.New(fsys, opts).Sweep(t.Context())
		require.NoError(t, err)
		sort.Strings(dryDel)
		sort.Strings(realDel)
		assert.Equal(t, []string{"q/a.png", "q/b.png"}, realDel)
		assert.Equal(t, realDel, dryDel)
		assert.Equal(t, sweep.StoppedFiles, rrep.Stopped)
		assert.Equal(t, sweep.StoppedFiles, drep.Stopped)
		assert.Equal(t, 3, rrep.Kept[sweep.KeptBudget].Files)

		rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "q/**", MaxAge: day}}, Now: clock, Budget: sweep.Budget{Bytes: 15}}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, sweep.StoppedBytes, rep.Stopped)
		assert.Equal(t, 1, rep.Deleted.Files)
	})
}

// A listing error deletes nothing; deletion failures match ErrDeleteFailed.
func TestS13FailuresAndErrors(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"q/a.png", "q/b.png", "q/c/d.png"} {
			put(t, fsys, p, 10, 10*day)
		}
		rules := []sweep.Rule{{Glob: "q/**", MaxAge: day}}
		// Cancelled before the listing: nothing deleted.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := sweep.New(fsys, sweep.Options{Rules: rules, Now: clock}).Sweep(ctx)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Len(t, files(t, fsys), 3)
		// Refs that fail: every file kept as check_failed.
		failing := refFunc(func(context.Context, string) (bool, error) { return false, errors.New("db down") })
		rep, err := sweep.New(fsys, sweep.Options{Rules: rules, Now: clock, Refs: failing}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 3, rep.Kept[sweep.KeptCheckFailed].Files)
		assert.Len(t, files(t, fsys), 3)
		// A remove that fails.
		ff := storagetest.NewFaultFs(fsys, storagetest.Fault{N: 1, Kind: storagetest.OpRemove, Sticky: true})
		rep, err = sweep.New(ff, sweep.Options{Rules: rules, Now: clock}).Sweep(t.Context())
		if rep.Failed.Files > 0 {
			assert.ErrorIs(t, err, sweep.ErrDeleteFailed)
			assert.ErrorIs(t, err, storage.ErrDeleteFailed)
		} else {
			t.Logf("fault not hit (backend removes through its own fast path): %+v", rep)
		}
	})
}

type refFunc func(context.Context, string) (bool, error)

func (f refFunc) IsReferenced(ctx context.Context, p string) (bool, error) { return f(ctx, p) }

// "Future modification times count as young", also under a rule of any
// age (KeepLatest alone): a file dated a day ahead was deleted because one
// dated two days ahead was newer; and future files took the latest's
// place, so the newest real file went (both found in session 13).
func TestS13FutureFilesAndKeepLatest(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr/1/future1.png", 1, -day)
		put(t, fsys, "qr/1/future2.png", 1, -2*day)
		put(t, fsys, "qr/1/old.png", 1, 2*day)
		rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", KeepLatest: 1}}, Now: clock}).Sweep(t.Context())
		require.NoError(t, err)
		// Both future files are young, and take no place among the
		// latest: the newest real file is the one kept as latest.
		assert.Equal(t, []string{"qr/1/future1.png", "qr/1/future2.png", "qr/1/old.png"}, files(t, fsys))
		assert.Equal(t, 0, rep.Deleted.Files)
		assert.Equal(t, 2, rep.Kept[sweep.KeptYoung].Files, "%+v", rep.Kept)
		assert.Equal(t, 1, rep.Kept[sweep.KeptLatest].Files, "%+v", rep.Kept)
	})
}

// Symbolic links: never followed nor removed, also with a rule of "**".
func TestS13SymlinksOnRootFs(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "media")
	outside := filepath.Join(dir, "outside")
	require.NoError(t, os.MkdirAll(root, 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	old := now.Add(-100 * day)
	secret := filepath.Join(outside, "s.png")
	require.NoError(t, os.WriteFile(secret, []byte("x"), 0o644))
	require.NoError(t, os.Chtimes(secret, old, old))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "dirlink")))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "filelink.png")))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	for _, rules := range [][]sweep.Rule{{{Glob: "**", MaxAge: day}}, {{Glob: "*.png", MaxAge: day}, {Glob: "dirlink/**", MaxAge: day}}} {
		_, err = sweep.New(fsys, sweep.Options{Rules: rules, Now: clock, RemoveEmptyDirs: true}).Sweep(t.Context())
		require.NoError(t, err)
		_, err = os.Lstat(filepath.Join(root, "filelink.png"))
		assert.NoError(t, err, "link kept")
		_, err = os.Lstat(filepath.Join(root, "dirlink"))
		assert.NoError(t, err, "dir link kept")
		_, err = os.Stat(secret)
		assert.NoError(t, err, "target kept")
	}
	// Dir through a link.
	_, err = sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock, Dir: "dirlink"}).Sweep(t.Context())
	t.Logf("Dir through a link: %v", err)
	_, err = os.Stat(secret)
	assert.NoError(t, err, "target kept")
}

// Options.Dir "" or "/" for all; an invalid Dir is refused.
func TestS13DirOptions(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "a/x.png", 1, 10*day)
		for _, d := range []string{"", "/"} {
			require.NoError(t, sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Dir: d}))
			rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock, Dir: d, DryRun: true}).Sweep(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 1, rep.Deleted.Files, "Dir %q", d)
		}
		for _, d := range []string{"../x", "a/../../b", "/etc/.."} {
			assert.Error(t, sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Dir: d}), d)
		}
		assert.Error(t, sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: "**"}}}), "neither MaxAge nor KeepLatest")
		assert.Panics(t, func() {
			_ = sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}}).Run(t.Context(), 0)
		})
	})
}
