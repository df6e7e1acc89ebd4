package orphan_test

// Red-team tests: each asserts the safe, documented behaviour. Those that
// fail show bugs.

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

func orphanPaths(plan *orphan.Plan) []string {
	var out []string
	for _, o := range plan.Orphans {
		out = append(out, o.Path)
	}
	return out
}

// Two reference files concatenated (cat a.txt b.txt > refs.txt), the
// second saved with a byte-order mark: the mark now starts a line in the
// middle of the stream. U+FEFF is never part of a valid stored path
// (ValidPath refuses invisible formatting characters), so it can only be
// the mark, and the line still names pics/b.jpg. A BOM at the start of a
// value read from a database (a CSV import) is the same case. The file
// must be kept.
func TestRedteamRefsBOMInTheMiddleOfTheStream(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg", "pics/d.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		lines := "\ufeffpics/a.jpg\npics/c.jpg\n\ufeffpics/b.jpg\n"
		refs := orphan.Combine(
			orphan.Lines(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(lines)), nil }),
			orphan.Paths("\ufeffpics/d.jpg"), // a value with a BOM, from SQL
		)
		plan, err := orphan.New(fsys, refs, orphan.Options{Now: clock}).Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, orphanPaths(plan), "every file is referenced; InvalidReferences=%d", plan.InvalidReferences)
	})
}

// References read from a database column written on Windows or from a
// CSV import carry a trailing CR, LF or tab ("pics/a.jpg\r"). No valid
// stored path ends with a control character, so the reference can only
// mean pics/a.jpg; the finder already drops trailing spaces for the same
// reason (CHAR(n) padding). When in doubt the file must be kept.
func TestRedteamRefsTrailingLineEndings(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg", "pics/d.jpg", "pics/e.jpg", "pics/keep.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		refs := orphan.Paths("pics/a.jpg\r", "pics/b.jpg\n", "pics/c.jpg\r\n", "pics/d.jpg\t", "pics/e.jpg \r\n", "pics/keep.jpg")
		plan, err := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1}).Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, orphanPaths(plan), "InvalidReferences=%d", plan.InvalidReferences)
	})
}

// A reference padded with Unicode spaces (NBSP, U+3000, as some CHAR(n)
// columns and copy-pastes give) also names the unpadded path: the finder
// keeps both forms for ASCII spaces ("matching more paths can only keep
// more files"); it must for the other spaces too.
func TestRedteamRefsUnicodeSpacePadding(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg", "pics/keep.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		refs := orphan.Paths("pics/a.jpg\u00a0", "\u3000pics/b.jpg", "pics/c.jpg\u3000\u3000", "pics/keep.jpg")
		plan, err := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1}).Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, orphanPaths(plan))
	})
}

// A reference with a ".." segment that stays inside the root
// ("pics/2024/../a.jpg") names pics/a.jpg. Clean refuses it, so it keeps
// nothing and pics/a.jpg is deleted. Resolving it lexically for matching
// could only keep more files.
func TestRedteamRefsDotDotInsideRootKeeps(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/keep.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		plan, err := orphan.New(fsys, orphan.Paths("pics/2024/../a.jpg", "pics/keep.jpg"), orphan.Options{Now: clock, MaxFraction: -1}).Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, orphanPaths(plan))
	})
}

// Coverage guard, CoverageDepth 2: references point into pics/ and into
// pics/sub/, so pics/sub is covered and an old orphan there is not a
// reason to refuse. (A reference into pics/ must not hide one into
// pics/sub/.)
func TestRedteamCoverageDepthTwoSeesEveryReference(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/sub/b.jpg", "pics/sub/c.jpg", "pics/sub/d.jpg", "pics/sub/old.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/a.jpg", "pics/sub/b.jpg", "pics/sub/c.jpg", "pics/sub/d.jpg"), orphan.Options{Now: clock, CoverageDepth: 2})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{"pics/sub/old.jpg"}, orphanPaths(plan))
		assert.Empty(t, plan.Uncovered, "pics/sub has references into it")
		assert.NoError(t, f.Check(plan))
	})
}

// Coverage guard corner cases that must refuse: a reference into "pics2/"
// does not cover "pics/"; a reference into a directory does not cover
// files at the root; a reference outside Options.Dirs covers nothing
// inside; a reference to a file named like the directory does not cover
// it.
func TestRedteamCoverageCornersRefuse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		files []string
		refs  []string
		dirs  []string
		want  []string
	}{
		{"prefix of a directory name", []string{"pics/old.jpg", "pics2/a.jpg"}, []string{"pics2/a.jpg"}, nil, []string{"pics"}},
		{"files at the root", []string{"rootold.jpg", "pics/a.jpg"}, []string{"pics/a.jpg"}, nil, []string{"."}},
		{"reference outside Dirs", []string{"media/pics/x.jpg", "media/other/y.jpg"}, []string{"media/other/y.jpg", "pics/x.jpg"}, []string{"media/pics"}, []string{"media/pics"}},
		{"file named like the dir", []string{"media/pics/x.jpg", "media/pics3"}, []string{"media/pics3"}, []string{"media"}, []string{"media/pics"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
				for _, p := range tc.files {
					put(t, fsys, p, 10, 10*day)
				}
				f := orphan.New(fsys, orphan.Paths(tc.refs...), orphan.Options{Now: clock, MaxFraction: -1, Dirs: tc.dirs})
				plan, err := f.Find(t.Context())
				require.NoError(t, err)
				assert.Equal(t, tc.want, plan.Uncovered)
				rep, err := f.Apply(t.Context(), plan)
				assert.ErrorIs(t, err, orphan.ErrUncovered)
				assert.Zero(t, rep.Deleted.Files)
			})
		})
	}
}

// A plan tampered with on disk: hostile paths (quarantine area, "..",
// absolute, NUL, control characters, NFD, dot-files) refuse it whole
// (ErrInvalidPlan); without them, a directory, a symlink, duplicates,
// wrong sizes, zero and future times: Apply deletes none of them; only
// the one real orphan goes.
func TestRedteamTamperedPlan(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, dir string) {
		for _, p := range []string{"pics/ok.jpg", "pics/ref1.jpg", "pics/ref2.jpg", "pics/ref3.jpg", "pics/big.jpg", "pics/zero.jpg", "pics/future.jpg",
			"trash/.mediaclean-quarantine/r/pics/q.jpg", "pics/.hidden", "pics/e\u0301.jpg", "pics/dir/inner.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		if dir != "" {
			require.NoError(t, os.Symlink("ref1.jpg", filepath.Join(dir, "pics", "link.jpg")))
		}
		old := now.Add(-10 * day)
		plan := orphan.Plan{Orphans: []orphan.Orphan{
			{Path: "pics/ok.jpg", Size: 10, ModTime: old},
			{Path: "pics/ok.jpg", Size: 10, ModTime: old},
			{Path: "trash/.mediaclean-quarantine/r/pics/q.jpg", Size: 10, ModTime: old},
			{Path: "../pics/ref1.jpg", Size: 10, ModTime: old},
			{Path: "/pics/ref1.jpg", Size: 10, ModTime: old},
			{Path: "pics/ref1.jpg\x00", Size: 10, ModTime: old},
			{Path: "pics/ref1.jpg\n", Size: 10, ModTime: old},
			{Path: "./pics/ref2.jpg", Size: 10, ModTime: old},
			{Path: "pics//ref3.jpg", Size: 10, ModTime: old},
			{Path: "pics/e\u0301.jpg", Size: 10, ModTime: old},
			{Path: "pics/.hidden", Size: 10, ModTime: old},
			{Path: "pics/dir", Size: 0, ModTime: old},
			{Path: "pics/link.jpg", Size: 8, ModTime: old},
			{Path: "pics/big.jpg", Size: 1 << 62, ModTime: old},
			{Path: "pics/zero.jpg", Size: 10},
			{Path: "pics/future.jpg", Size: 10, ModTime: now.Add(1000 * day)},
		}}
		b, err := json.Marshal(plan)
		require.NoError(t, err)
		var loaded orphan.Plan
		require.NoError(t, json.Unmarshal(b, &loaded))
		f := orphan.New(fsys, orphan.Paths("pics/ref1.jpg", "pics/ref2.jpg", "pics/ref3.jpg"), orphan.Options{Now: clock, Force: true})
		// Entries that are no stored path (no Find makes them) refuse the
		// whole plan.
		rep, err := f.Apply(t.Context(), &loaded)
		require.ErrorIs(t, err, orphan.ErrInvalidPlan)
		assert.Zero(t, rep.Deleted.Files)
		loaded.Orphans = slices.DeleteFunc(loaded.Orphans, func(o orphan.Orphan) bool { return storage.ValidPath(o.Path) != nil })
		require.Len(t, loaded.Orphans, 7, "the valid entries")
		rep, err = f.Apply(t.Context(), &loaded)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files, "%+v", rep)
		_, err = fsys.Stat("pics/ok.jpg")
		assert.ErrorIs(t, err, os.ErrNotExist)
		for _, p := range []string{"pics/ref1.jpg", "pics/ref2.jpg", "pics/ref3.jpg", "pics/big.jpg", "pics/zero.jpg", "pics/future.jpg",
			"trash/.mediaclean-quarantine/r/pics/q.jpg", "pics/.hidden", "pics/e\u0301.jpg", "pics/dir/inner.jpg"} {
			_, err := fsys.Stat(p)
			assert.NoError(t, err, p)
		}
		if dir != "" {
			_, err := os.Lstat(filepath.Join(dir, "pics", "link.jpg"))
			assert.NoError(t, err, "the link stays")
		}
	})
}

// The quarantine directory is a symbolic link out of the root (on a
// backend that follows links): Apply must not write a manifest, or make
// directories, outside the root, and every orphan stays where it is.
func TestRedteamQuarantineDirIsALinkOut(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, dir string) {
		outside := t.TempDir()
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "trash")))
		put(t, fsys, "pics/ref.jpg", 10, 10*day)
		put(t, fsys, "pics/orphan.jpg", 10, 10*day)
		f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash"})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 1)
		_, _ = f.Apply(t.Context(), plan)
		ents, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Empty(t, ents, "nothing may be written outside the root")
		_, err = fsys.Stat("pics/orphan.jpg")
		assert.NoError(t, err, "the orphan stays: it could not be quarantined")
	})
}

// A tampered manifest (and quarantine folder) asks Restore to move things
// out of the root, over links, into a directory that is a link out, and
// to restore a quarantined link. Nothing outside the root changes, no
// live file is replaced, and no link is restored.
func TestRedteamRestoreTamperedManifest(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, dir string) {
		outside := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644))
		run := "20260101T000000Z-deadbeef"
		area := "trash/.mediaclean-quarantine/" + run
		put(t, fsys, area+"/pics/ok.jpg", 10, 10*day)
		put(t, fsys, area+"/out/x.jpg", 10, 10*day)
		put(t, fsys, area+"/pics/live.jpg", 3, 10*day)
		put(t, fsys, "pics/live.jpg", 4, 10*day)
		require.NoError(t, os.Symlink(outside, filepath.Join(dir, "out")))
		require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, filepath.FromSlash(area), "pics", "secretlink.jpg")))
		m := orphan.Manifest{Run: run, Created: now, Files: []orphan.Orphan{
			{Path: "pics/ok.jpg", Size: 10},
			{Path: "out/x.jpg", Size: 10},
			{Path: "pics/live.jpg", Size: 3},
			{Path: "pics/secretlink.jpg", Size: 6},
			{Path: "../../x.jpg", Size: 1},
			{Path: "/etc/x.jpg", Size: 1},
			{Path: "pics/\x00.jpg", Size: 1},
			{Path: ".mediaclean-quarantine/other/pics/y.jpg", Size: 1},
			{Path: "pics/ok.jpg", Size: 10},
		}}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		require.NoError(t, afero.WriteFile(fsys, area+"/manifest.json", b, 0o644))
		q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: clock})
		rep, err := q.Restore(t.Context(), run)
		assert.ErrorIs(t, err, orphan.ErrDeleteFailed)
		assert.Equal(t, 1, rep.Restored.Files, "only pics/ok.jpg: %+v", rep)
		ents, err := os.ReadDir(outside)
		require.NoError(t, err)
		assert.Len(t, ents, 1, "nothing new outside the root")
		got, err := afero.ReadFile(fsys, "pics/live.jpg")
		require.NoError(t, err)
		assert.Len(t, got, 4, "the live file is not replaced")
		fi, err := os.Lstat(filepath.Join(dir, "pics", "secretlink.jpg"))
		if err == nil {
			assert.Zero(t, fi.Mode()&os.ModeSymlink, "a link is not restored")
		}
		for _, r := range []string{"../x", "a/b", ".", ""} {
			_, err := q.Restore(t.Context(), r)
			assert.Error(t, err, r)
		}
	})
}

// Purge of a run whose manifest lists live paths, and whose run folder
// holds a link to the live directory: no live file is deleted.
func TestRedteamPurgeNeverReachesLiveFiles(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, dir string) {
		run := "20200101T000000Z-deadbeef"
		area := "trash/.mediaclean-quarantine/" + run
		put(t, fsys, "pics/live.jpg", 10, 10*day)
		put(t, fsys, "docs/live.pdf", 10, 10*day)
		require.NoError(t, fsys.MkdirAll(area, 0o755))
		require.NoError(t, os.Symlink("../../../pics", filepath.Join(dir, filepath.FromSlash(area), "pics")))
		// A second "run" that is a link to a live directory, with a
		// manifest there.
		require.NoError(t, os.Symlink("../../docs", filepath.Join(dir, "trash", ".mediaclean-quarantine", "20200101T000000Z-00000000")))
		m2 := orphan.Manifest{Run: "20200101T000000Z-00000000", Created: time.Time{}, Files: []orphan.Orphan{{Path: "live.pdf"}}}
		b2, _ := json.Marshal(m2)
		require.NoError(t, afero.WriteFile(fsys, "docs/manifest.json", b2, 0o644))
		m := orphan.Manifest{Run: run, Created: time.Time{}, Files: []orphan.Orphan{{Path: "pics/live.jpg", Size: 10}, {Path: "../../../pics/live.jpg"}}}
		b, _ := json.Marshal(m)
		require.NoError(t, afero.WriteFile(fsys, area+"/manifest.json", b, 0o644))
		q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: clock})
		_, _ = q.Purge(t.Context(), day)
		for _, p := range []string{"pics/live.jpg", "docs/live.pdf"} {
			_, err := fsys.Stat(p)
			assert.NoError(t, err, p)
		}
	})
}

// Between Find and Apply a file is swapped for a link to a live file and a
// directory for a link to a live directory: Apply deletes neither the
// links' targets nor the links.
func TestRedteamSwapBetweenFindAndApply(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, dir string) {
		for _, p := range []string{"live/a.jpg", "live/b.jpg", "pics/a.jpg", "old/b.jpg", "keep/1.jpg", "keep/2.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("live/a.jpg", "live/b.jpg", "keep/1.jpg", "keep/2.jpg", "pics/x.jpg", "old/x.jpg"), orphan.Options{Now: clock})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"old/b.jpg", "pics/a.jpg"}, orphanPaths(plan))
		require.NoError(t, os.Remove(filepath.Join(dir, "pics", "a.jpg")))
		require.NoError(t, os.Symlink("../live/a.jpg", filepath.Join(dir, "pics", "a.jpg")))
		require.NoError(t, os.RemoveAll(filepath.Join(dir, "old")))
		require.NoError(t, os.Symlink("live", filepath.Join(dir, "old")))
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Zero(t, rep.Deleted.Files, "%+v", rep)
		for _, p := range []string{"live/a.jpg", "live/b.jpg"} {
			_, err := os.Stat(filepath.Join(dir, p))
			assert.NoError(t, err, p)
		}
		_, err = os.Lstat(filepath.Join(dir, "pics", "a.jpg"))
		assert.NoError(t, err)
	})
}

// Apply documents that it "trusts nothing the plan says beyond which files
// to consider". A plan its own Find made, whose Scanned was then edited
// (or merged with another), must still be held to the fraction limit of
// what storage holds.
func TestRedteamApplyDoesNotTrustEditedScanned(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg", "pics/d.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/a.jpg"), orphan.Options{Now: clock})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		require.ErrorIs(t, f.Check(plan), orphan.ErrFractionLimit)
		plan.Scanned.Files = 1000
		rep, err := f.Apply(t.Context(), plan)
		assert.ErrorIs(t, err, orphan.ErrFractionLimit)
		assert.Zero(t, rep.Deleted.Files)
		assert.Len(t, files(t, fsys), 4)
	})
}

// Scanning the quarantine's parent (Dirs equal to Options.Quarantine) or
// a quarantine nested inside a scanned directory never plans a
// quarantined file, and a later run without Quarantine leaves it alone.
func TestRedteamQuarantineInsideScannedDirs(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/ref.jpg", "pics/ref2.jpg", "pics/o.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/ref.jpg", "pics/ref2.jpg"), orphan.Options{Now: clock, Quarantine: "pics", Dirs: []string{"pics"}})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		require.Equal(t, 1, rep.Quarantined.Files)
		for _, opts := range []orphan.Options{{Now: clock, MaxFraction: -1, Force: true}, {Now: clock, MaxFraction: -1, Force: true, Dirs: []string{"pics"}}} {
			g := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), opts)
			plan, err := g.Find(t.Context())
			require.NoError(t, err)
			assert.Equal(t, []string{"pics/ref2.jpg"}, orphanPaths(plan))
			assert.False(t, slices.ContainsFunc(plan.Unrecognised, func(p string) bool { return strings.Contains(p, ".mediaclean-quarantine") }))
		}
		assert.Len(t, files(t, fsys), 4, "two live files, the quarantined one and its manifest")
	})
}

// URL schemes and host names are case-insensitive: a reference stored as
// "HTTPS://CDN.Example.com/media/pics/a.jpg" names the same file as the
// configured prefix "https://cdn.example.com/media/". Today it matches no
// prefix, is not a stored path (it has a colon), keeps nothing, and the
// file is deleted.
func TestRedteamRefsURLSchemeAndHostCase(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/keep.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		refs := orphan.Paths("HTTPS://cdn.example.com/media/pics/a.jpg", "https://CDN.Example.COM/media/pics/b.jpg", "https://cdn.example.com/media/pics/keep.jpg")
		plan, err := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1, StripPrefixes: []string{"https://cdn.example.com/media/"}}).Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, orphanPaths(plan), "InvalidReferences=%d", plan.InvalidReferences)
	})
}
