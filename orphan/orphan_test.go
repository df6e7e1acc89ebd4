package orphan_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

const day = 24 * time.Hour

func put(t *testing.T, fsys afero.Fs, p string, size int, age time.Duration) {
	storagetest.WriteFile(t, fsys, p, make([]byte, size), now.Add(-age))
}

func files(t *testing.T, fsys afero.Fs) []string { return storagetest.Files(t, fsys) }

// backends: RootFs, OsFs and MemMapFs, then a real S3 server.
var backends = append(storagetest.LocalBackends(), s3test.Backend(""))

// TestMain stops the S3 server the S3 backend starts on first use, then
// checks that no goroutine is left (the reference workers, the parallel
// listing and stats).
func TestMain(m *testing.M) { s3test.Main(m) }

// seedTree: 6 files, 2 referenced, 1 young, 1 excluded by shape.
func seedTree(t *testing.T, fsys afero.Fs) {
	put(t, fsys, "profile_pics/a.jpg", 100, 10*day) // referenced
	put(t, fsys, "profile_pics/b.jpg", 200, 10*day) // orphan
	put(t, fsys, "profile_pics/c.jpg", 300, time.Hour)
	put(t, fsys, "forum_images/d.png", 400, 30*day) // referenced as /media/forum_images/d.png
	put(t, fsys, "forum_images/e.png", 500, 30*day) // orphan
	put(t, fsys, "forum_images/notes.txt", 600, 30*day)
}

func TestFindApplyOnSQLite(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		seedTree(t, fsys)
		db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec(`CREATE TABLE users (picture TEXT); CREATE TABLE forum (image TEXT);
			INSERT INTO users VALUES ('profile_pics/a.jpg'), (NULL), ('profile_pics/gone.jpg'), ('../../etc/passwd');
			INSERT INTO forum VALUES ('/media/forum_images/d.png');`)
		require.NoError(t, err)
		refs := sqlrefs.New(db, "SELECT picture FROM users", "SELECT image FROM forum")
		opts := orphan.Options{Now: clock, StripPrefixes: []string{"/media/"}, Shapes: []string{"profile_pics/*.jpg", "forum_images/*.png"}}
		check := func(plan *orphan.Plan) {
			t.Helper()
			assert.Equal(t, []orphan.Orphan{
				{Path: "forum_images/e.png", Size: 500, ModTime: now.Add(-30 * day)},
				{Path: "profile_pics/b.jpg", Size: 200, ModTime: now.Add(-10 * day)},
			}, normalise(plan.Orphans))
			assert.Equal(t, storage.Count{Files: 2, Bytes: 700}, plan.Total)
			assert.Equal(t, storage.Count{Files: 1, Bytes: 300}, plan.Kept[orphan.KeptYoung])
			assert.Equal(t, []string{"forum_images/notes.txt"}, plan.Unrecognised)
			assert.Equal(t, []string{"profile_pics/gone.jpg"}, plan.Missing)
			assert.Equal(t, 4, plan.References)
			assert.Equal(t, 1, plan.InvalidReferences)
			assert.Equal(t, "forum_images", plan.Dirs[0].Dir)
			assert.Positive(t, plan.Duration)
		}

		// MeasureAll: every byte on disk is in the plan.
		opts.MeasureAll = true
		plan, err := orphan.New(fsys, refs, opts).Find(t.Context())
		require.NoError(t, err)
		check(plan)
		assert.Equal(t, storage.Count{Files: 6, Bytes: 2100}, plan.Scanned)
		assert.Equal(t, storage.Count{Files: 2, Bytes: 500}, plan.Kept[orphan.KeptReferenced])
		assert.Equal(t, storage.Count{Files: 1, Bytes: 600}, plan.Kept[orphan.KeptUnrecognised])
		assert.Zero(t, plan.Unmeasured)

		// By default, a local disk is listed by name and only the files
		// that can be orphans are measured: the same plan, except the
		// bytes of the referenced and unrecognised files, which it says.
		opts.MeasureAll = false
		f := orphan.New(fsys, refs, opts)
		plan, err = f.Find(t.Context())
		require.NoError(t, err)
		check(plan)
		if storage.FeaturesOf(fsys).CheapNames {
			assert.Equal(t, 3, plan.Unmeasured)
			assert.Equal(t, storage.Count{Files: 6, Bytes: 1000}, plan.Scanned)
			assert.Equal(t, storage.Count{Files: 2}, plan.Kept[orphan.KeptReferenced])
		} else {
			assert.Zero(t, plan.Unmeasured)
			assert.Equal(t, storage.Count{Files: 6, Bytes: 2100}, plan.Scanned)
		}

		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, storage.Count{Files: 2, Bytes: 700}, rep.Deleted)
		assert.Equal(t, []string{"forum_images/d.png", "forum_images/notes.txt", "profile_pics/a.jpg", "profile_pics/c.jpg"}, files(t, fsys))
	})
}

// normalise makes orphans comparable across backends: times in UTC, and
// no ETags (only object stores have them; TestS3RewritesAreKept checks
// them).
func normalise(os []orphan.Orphan) []orphan.Orphan {
	for i := range os {
		os[i].ModTime = os[i].ModTime.UTC()
		os[i].ETag = ""
	}
	return os
}

var errDB = errors.New("connection reset")

func TestGuardsDeleteNothing(t *testing.T) {
	t.Parallel()
	failing := orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		if err := fn("profile_pics/a.jpg"); err != nil {
			return err
		}
		return errDB // midway
	})
	tests := []struct {
		name string
		refs orphan.Provider
		opts orphan.Options
		want error
	}{
		{"provider fails midway", failing, orphan.Options{}, orphan.ErrProvider},
		{"provider returns nothing", orphan.Paths(), orphan.Options{}, orphan.ErrNoReferences},
		{"only invalid references", orphan.Paths("../x", "\x00", "C:\\x.jpg", "/"), orphan.Options{}, orphan.ErrNoReferences},
		// A reference into each directory (to files that are not there)
		// satisfies the coverage guard; the limits are what refuse.
		{"over fraction", orphan.Paths("profile_pics/x.jpg", "forum_images/x.png"), orphan.Options{MaxFraction: 0.2}, orphan.ErrFractionLimit},
		{"over count", orphan.Paths("profile_pics/a.jpg", "forum_images/x.png"), orphan.Options{MaxDeletes: 1}, orphan.ErrDeleteLimit},
		{"over bytes", orphan.Paths("profile_pics/a.jpg", "forum_images/x.png"), orphan.Options{MaxBytes: 600, MaxFraction: -1}, orphan.ErrBytesLimit},
		{"a directory no reference points into", orphan.Paths("profile_pics/a.jpg"), orphan.Options{MaxFraction: -1}, orphan.ErrUncovered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
				seedTree(t, fsys)
				before := files(t, fsys)
				opts := tt.opts // each backend's own copy
				opts.Now = clock
				f := orphan.New(fsys, tt.refs, opts)
				plan, err := f.Find(t.Context())
				if err == nil {
					_, err = f.Apply(t.Context(), plan)
				}
				require.ErrorIs(t, err, tt.want)
				assert.Equal(t, before, files(t, fsys), "nothing deleted")

				// Forcing (or allowing empty) is the only way past a limit.
				if errors.Is(tt.want, orphan.ErrFractionLimit) || errors.Is(tt.want, orphan.ErrDeleteLimit) || errors.Is(tt.want, orphan.ErrUncovered) {
					opts.Force = true
					f = orphan.New(fsys, tt.refs, opts)
					plan, err := f.Find(t.Context())
					require.NoError(t, err)
					rep, err := f.Apply(t.Context(), plan)
					require.NoError(t, err)
					assert.Positive(t, rep.Deleted.Files)
				}
			})
		})
	}
}

// P6: an upload whose row has not committed survives (grace period), and a
// file that gains a reference between Find and Apply survives (re-check).
func TestInFlightAndNewlyReferencedSurvive(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "pics/old-orphan.jpg", 1, 10*day)
		put(t, fsys, "pics/will-be-referenced.jpg", 1, 10*day)
		// The upload: bytes written, row not yet committed.
		put(t, fsys, "pics/uploading.jpg", 1, 0)
		refs := []string{"pics/other.jpg"}
		provider := orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
			for _, r := range refs {
				if err := fn(r); err != nil {
					return err
				}
			}
			return nil
		})
		f := orphan.New(fsys, provider, orphan.Options{Now: clock, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 2)
		// Between Find and Apply: a row comes to reference a planned file.
		refs = append(refs, "pics/will-be-referenced.jpg")
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptReferenced].Files)
		assert.Equal(t, []string{"pics/uploading.jpg", "pics/will-be-referenced.jpg"}, files(t, fsys))
	})
}

func TestChangedFileIsKept(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "pics/a.jpg", 1, 10*day)
		put(t, fsys, "pics/b.jpg", 1, 10*day)
		f := orphan.New(fsys, orphan.Paths("pics/c.jpg"), orphan.Options{Now: clock, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		put(t, fsys, "pics/a.jpg", 2, 10*day) // rewritten with another size
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Kept[orphan.KeptChanged].Files)
		assert.Equal(t, []string{"pics/a.jpg"}, files(t, fsys))
	})
}

// Links out of the root (a directory link, a link to "/") and references
// that leave it find nothing to delete, and a plan tampered with to name a
// file through a link, or out of the root, deletes nothing. On disk only:
// the links are the point.
func TestSymlinksAndHostileReferences(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, media string) {
		outside := t.TempDir()
		secret := filepath.Join(outside, "passwd")
		require.NoError(t, os.WriteFile(secret, []byte("root"), 0o644))
		require.NoError(t, os.Chtimes(secret, now.Add(-100*day), now.Add(-100*day)))
		require.NoError(t, os.Symlink(outside, filepath.Join(media, "link")))
		require.NoError(t, os.Symlink("/", filepath.Join(media, "dir")))
		require.NoError(t, os.MkdirAll(filepath.Join(media, "pics"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(media, "pics", "a.jpg"), []byte("a"), 0o644))
		f := orphan.New(fsys, orphan.Paths("../../etc/passwd", "../outside/passwd", "/etc/passwd", "pics/a.jpg"), orphan.Options{Now: clock, MinAge: -1, MaxFraction: -1, Unreferenced: []string{"**"}})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, plan.Orphans)
		assert.Equal(t, 2, plan.InvalidReferences)
		// A plan tampered with on disk cannot reach out either: a path
		// out of the root refuses the plan, and one through a link is kept.
		plan.Orphans = []orphan.Orphan{{Path: "link/passwd", Size: 4, ModTime: now.Add(-100 * day)}, {Path: "../outside/passwd", Size: 4, ModTime: now.Add(-100 * day)}}
		rep, err := f.Apply(t.Context(), plan)
		require.ErrorIs(t, err, orphan.ErrInvalidPlan)
		assert.Zero(t, rep.Deleted.Files)
		plan.Orphans = plan.Orphans[:1]
		rep, err = f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Zero(t, rep.Deleted.Files)
		got, err := os.ReadFile(secret)
		require.NoError(t, err)
		assert.Equal(t, "root", string(got))
	})
}

func TestQuarantineRestorePurge(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		require.NoError(t, afero.WriteFile(fsys, "pics/b.jpg", []byte("precious bytes"), 0o644))
		mt := now.Add(-10 * day)
		require.NoError(t, fsys.Chtimes("pics/b.jpg", mt, mt))
		f := orphan.New(fsys, orphan.Paths("pics/a.jpg"), orphan.Options{Now: clock, Quarantine: "trash", MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Quarantined.Files)
		assert.Zero(t, rep.Deleted.Files)
		_, err = fsys.Stat("pics/b.jpg")
		assert.ErrorIs(t, err, os.ErrNotExist)

		// The trash is never scanned.
		plan2, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, plan2.Orphans)

		q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: clock})
		restored, err := q.Restore(t.Context(), rep.QuarantineRun)
		require.NoError(t, err)
		assert.Equal(t, 1, restored.Restored.Files)
		assert.Empty(t, restored.Failures)
		got, err := afero.ReadFile(fsys, "pics/b.jpg")
		require.NoError(t, err)
		assert.Equal(t, "precious bytes", string(got))

		// Purge: a young run is kept; an old run goes, but only what its
		// manifest lists. A restore on S3 is a copy, which makes the
		// object new again: back-date it and plan afresh.
		require.NoError(t, fsys.Chtimes("pics/b.jpg", mt, mt))
		plan, err = f.Find(t.Context())
		require.NoError(t, err)
		rep2, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		require.Equal(t, 1, rep2.Quarantined.Files)
		stray := "trash/.mediaclean-quarantine/" + rep2.QuarantineRun + "/pics/stray.jpg"
		require.NoError(t, afero.WriteFile(fsys, stray, []byte("not ours"), 0o644))
		purged, err := q.Purge(t.Context(), 30*day)
		require.NoError(t, err)
		assert.Empty(t, purged.Runs, "a run younger than the retention stays")
		assert.Empty(t, purged.Failures)
		later := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: func() time.Time { return now.Add(31 * day) }})
		purged, err = later.Purge(t.Context(), 30*day)
		require.NoError(t, err)
		assert.Empty(t, purged.Failures)
		// The restored run still has its manifest; purging it deletes
		// only that, since its files went back.
		assert.ElementsMatch(t, []string{rep.QuarantineRun, rep2.QuarantineRun}, purged.Runs)
		// Only the copy still in quarantine counts, on every backend
		// (S3's DeleteObjects would report the restored run's key, gone
		// already, as deleted: Purge stats each file first).
		assert.Equal(t, 1, purged.Deleted.Files)
		assert.Equal(t, []string{"pics/a.jpg", stray}, files(t, fsys), "only the manifest's files were purged")
		_, err = fsys.Stat("trash/.mediaclean-quarantine/" + rep.QuarantineRun)
		assert.ErrorIs(t, err, os.ErrNotExist, "the restored run's folder, empty once purged, is gone")
	})
}

func TestLinesProviderFailsOnReadError(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "refs.txt")
	require.NoError(t, os.WriteFile(p, []byte("a.jpg\r\n\n  b.jpg  \n"), 0o644))
	var got []string
	require.NoError(t, orphan.File(p).References(t.Context(), func(s string) error { got = append(got, s); return nil }))
	assert.Equal(t, []string{"a.jpg", "  b.jpg  "}, got, "only line endings go: a stored path may start with a space")
	err := orphan.File(filepath.Join(dir, "missing.txt")).References(t.Context(), func(string) error { return nil })
	assert.ErrorIs(t, err, os.ErrNotExist)
	got = nil
	require.NoError(t, orphan.Combine(orphan.Paths("x"), orphan.File(p)).References(t.Context(), func(s string) error { got = append(got, s); return nil }))
	assert.Equal(t, []string{"x", "a.jpg", "  b.jpg  "}, got)

	// A byte-order mark, as spreadsheet exports and Windows tools write,
	// is not part of the first path: read as one, that file would look
	// unreferenced.
	require.NoError(t, os.WriteFile(p, []byte("\ufeffa.jpg\nb.jpg\n"), 0o644))
	got = nil
	require.NoError(t, orphan.File(p).References(t.Context(), func(s string) error { got = append(got, s); return nil }))
	assert.Equal(t, []string{"a.jpg", "b.jpg"}, got)
}

// Large plans are re-checked against a fresh listing instead of a stat per
// file: a file rewritten or removed after Find is still kept.
func TestRecheckByRelisting(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for i := range 150 {
			put(t, fsys, fmt.Sprintf("pics/%03d.jpg", i), 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/none.jpg"), orphan.Options{Now: clock, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 150)
		put(t, fsys, "pics/007.jpg", 11, 10*day) // rewritten: another size
		require.NoError(t, fsys.Remove("pics/008.jpg"))
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 148, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptChanged].Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptGone].Files)
		assert.Equal(t, []string{"pics/007.jpg"}, files(t, fsys))
	})
}

// O7: a plan saved as JSON and loaded later applies the same way, and a
// file that changed meanwhile is still caught by the re-check.
func TestPlanJSONRoundTrip(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		seedTree(t, fsys)
		f := orphan.New(fsys, orphan.Paths("profile_pics/a.jpg", "forum_images/d.png"), orphan.Options{Now: clock, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		saved, err := json.Marshal(plan)
		require.NoError(t, err)

		var loaded orphan.Plan
		require.NoError(t, json.Unmarshal(saved, &loaded))
		assert.Equal(t, plan.Total, loaded.Total)
		require.Len(t, loaded.Orphans, len(plan.Orphans))
		put(t, fsys, "forum_images/e.png", 501, 30*day) // changed after the plan was saved
		rep, err := f.Apply(t.Context(), &loaded)
		require.NoError(t, err)
		// b.jpg and notes.txt go; e.png changed after the plan and stays.
		assert.Equal(t, []string{"forum_images/d.png", "forum_images/e.png", "profile_pics/a.jpg", "profile_pics/c.jpg"}, files(t, fsys))
		assert.Equal(t, 2, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptChanged].Files)
	})
}

// A plan is only a list: Apply re-applies this finder's own exclusions, so
// a plan that was edited, is stale, or came from a finder with other
// options deletes nothing this one would not have planned.
func TestApplyRefusesWhatFindWouldNotPlan(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		old := 10 * day
		paths := map[string]time.Duration{
			"pics/ok.jpg":                      old,       // a real orphan
			"trash/run/pics/x.jpg":             old,       // the quarantine area
			"pics/keep/x.jpg":                  old,       // excluded
			"pics/young.jpg":                   time.Hour, // in its grace period
			"elsewhere/x.jpg":                  old,       // outside Dirs
			"pics/notes.txt":                   old,       // matches no shape
			"pics/" + storage.TempPrefix + "x": old,       // a filefield temp file
		}
		var plan orphan.Plan
		for p, age := range paths {
			put(t, fsys, p, 5, age)
			plan.Orphans = append(plan.Orphans, orphan.Orphan{Path: p, Size: 5, ModTime: now.Add(-age)})
		}
		f := orphan.New(fsys, orphan.Paths("pics/other.jpg"), orphan.Options{
			Now: clock, Dirs: []string{"pics", "trash"}, Quarantine: "trash", Protected: []string{"pics/keep/**"},
			Shapes: []string{"pics/**/*.jpg"}, MaxFraction: -1, Force: true,
		})
		// A temp file's name is no stored path: the plan was edited, and
		// is refused whole.
		_, err := f.Apply(t.Context(), &plan)
		require.ErrorIs(t, err, orphan.ErrInvalidPlan)
		plan.Orphans = slices.DeleteFunc(plan.Orphans, func(o orphan.Orphan) bool { return storage.ValidPath(o.Path) != nil })
		rep, err := f.Apply(t.Context(), &plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Quarantined.Files, "only pics/ok.jpg goes (into the quarantine)")
		_, err = fsys.Stat("pics/ok.jpg")
		assert.ErrorIs(t, err, os.ErrNotExist)
		for p := range paths {
			if p != "pics/ok.jpg" {
				_, err := fsys.Stat(p)
				assert.NoError(t, err, "%s must stay", p)
			}
		}
	})
}

// TestOverlappingDirsScanOnce: directories to scan that repeat or nest
// ("a", "/a/", "a/b") are scanned once, so no file is counted, planned or
// deleted twice; a sibling that shares a prefix ("a-b") is its own
// directory; "" or "/" means the whole root. A directory to scan that is
// not a valid stored path is a programming error.
func TestOverlappingDirsScanOnce(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"a/b/x.jpg", "a/y.jpg", "a-b/z.jpg", "c/w.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		find := func(dirs ...string) *orphan.Plan {
			t.Helper()
			plan, err := orphan.New(fsys, orphan.Paths("none.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Dirs: dirs}).Find(t.Context())
			require.NoError(t, err)
			return plan
		}
		paths := func(plan *orphan.Plan) (out []string) {
			for _, o := range plan.Orphans {
				out = append(out, o.Path)
			}
			return out
		}
		plan := find("a/b", "a", "/a/", "a-b")
		assert.Equal(t, []string{"a-b/z.jpg", "a/b/x.jpg", "a/y.jpg"}, paths(plan))
		assert.Equal(t, storage.Count{Files: 3, Bytes: 30}, plan.Scanned)
		plan = find("a", "/")
		assert.Len(t, plan.Orphans, 4, "\"/\" is the whole root")
	})
	assert.Panics(t, func() { orphan.New(afero.NewMemMapFs(), orphan.Paths(), orphan.Options{Dirs: []string{"../x"}}) })
}

// TestURLReferencesKeepTheirFiles: references stored as URLs, with a CDN
// prefix, a cache-busting query, a fragment or %-escapes, keep the file
// they name; a file literally named with "%20" is kept by its literal
// reference too. A reference counts as missing only if no form of it
// exists.
func TestURLReferencesKeepTheirFiles(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"pics/a.jpg", "pics/my photo.jpg", "pics/b.png", "pics/c%20d.png", "pics/orphan.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		refs := orphan.Paths(
			"https://cdn.example.com/media/pics/a.jpg?v=3",
			"https://cdn.example.com/media/pics/my%20photo.jpg",
			"/media/pics/b.png#top",
			"pics/c%20d.png",
			"pics/gone.jpg?v=1",
		)
		plan, err := orphan.New(fsys, refs, orphan.Options{
			Now: clock, MaxFraction: -1, StripPrefixes: []string{"https://cdn.example.com/media/", "/media/"},
		}).Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 1)
		assert.Equal(t, "pics/orphan.jpg", plan.Orphans[0].Path)
		assert.Equal(t, 1, plan.MissingCount)
		assert.Equal(t, []string{"pics/gone.jpg?v=1"}, plan.Missing)
		assert.Zero(t, plan.InvalidReferences)
	})
}

// TestFindReportsEveryDecision (R3): with OnEvent set, Find reports each
// scanned file once, as an orphan or kept with its reason, on every
// backend, whether the listing measured it or not.
func TestFindReportsEveryDecision(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		seedTree(t, fsys)
		got := map[string]string{}
		f := orphan.New(fsys, orphan.Paths("profile_pics/a.jpg", "forum_images/d.png"), orphan.Options{
			Now: clock, Shapes: []string{"profile_pics/*.jpg", "forum_images/*.png"},
			OnEvent: func(e orphan.Event) {
				_, dup := got[e.Path]
				assert.False(t, dup, "%s reported twice", e.Path)
				got[e.Path] = string(e.Action) + " " + e.Reason
			},
		})
		_, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, map[string]string{
			"profile_pics/a.jpg":     "keep referenced",
			"profile_pics/b.jpg":     "orphan ",
			"profile_pics/c.jpg":     "keep young",
			"forum_images/d.png":     "keep referenced",
			"forum_images/e.png":     "orphan ",
			"forum_images/notes.txt": "keep unrecognised",
		}, got)
	})
}

// TestProviderPanicLeavesNoWorkers: a provider that panics (a bug in a
// custom one, recovered by an HTTP server) must not strand the reference
// workers, nor the listing's (parallel on RootFs and S3); goleak in
// TestMain would report them, and this checks at once. The backends run
// one after another, not as parallel subtests: goleak sees every
// goroutine of the process.
func TestProviderPanicLeavesNoWorkers(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			fsys, _ := b.New(t)
			put(t, fsys, "pics/a.jpg", 10, 10*day)
			panicky := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
				for i := range 5000 {
					if err := fn(fmt.Sprintf("pics/%d.jpg", i)); err != nil {
						return err
					}
				}
				panic("provider bug")
			})
			before := goleak.IgnoreCurrent()
			assert.PanicsWithValue(t, "provider bug", func() {
				orphan.New(fsys, panicky, orphan.Options{Now: clock}).Find(t.Context())
			})
			// An S3 request leaves its connection idle in the client's
			// pool, with its reader and writer goroutines: not a worker.
			// A connection a stranded worker still uses is not idle.
			http.DefaultClient.CloseIdleConnections()
			goleak.VerifyNone(t, before)
		})
	}
}
