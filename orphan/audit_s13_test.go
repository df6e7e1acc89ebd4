package orphan_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

// s13Backends: rootfs on a temporary directory and afero's MemMapFs.
func s13Backends(t *testing.T, fn func(t *testing.T, fsys afero.Fs)) {
	t.Run("RootFs", func(t *testing.T) {
		fsys, err := rootfs.New(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { fsys.Close() })
		fn(t, fsys)
	})
	t.Run("MemMapFs", func(t *testing.T) { fn(t, afero.NewMemMapFs()) })
}

// s13All lists every regular file, quarantine area included.
func s13All(t *testing.T, fsys afero.Fs) []string {
	var out []string
	require.NoError(t, afero.Walk(fsys, ".", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			out = append(out, filepath.ToSlash(p))
		}
		return nil
	}))
	sort.Strings(out)
	return out
}

// Options.Quarantine "/" (or "//") named no quarantine at all: CheckOptions
// accepted it, New trimmed it to "", and Apply deleted the orphans it was
// told to move (found in session 13). It is refused now, by CheckOptions
// and by New, and nothing is touched.
func TestS13QuarantineSlashIsRefused(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		put(t, fsys, "pics/c.jpg", 10, 10*day)
		for _, q := range []string{"/", "//"} {
			opts := orphan.Options{Now: clock, Quarantine: q}
			assert.Error(t, orphan.CheckOptions(opts), "%q accepted as a quarantine directory", q)
			assert.Panics(t, func() { orphan.New(fsys, orphan.Paths("pics/a.jpg"), opts) })
		}
		assert.Contains(t, s13All(t, fsys), "pics/c.jpg")
	})
}

// ErrInvalidPlan godoc: "a plan handed to Apply cannot be a plan this
// package made (a negative size, an unsafe path)".
func TestS13InvalidPlanUnsafePath(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		put(t, fsys, "pics/b.jpg", 10, 10*day)
		put(t, fsys, "pics/.htaccess", 10, 10*day)
		// Force: so that no guard answers before the plan's check.
		f := orphan.New(fsys, orphan.Paths("pics/a.jpg"), orphan.Options{Now: clock, Force: true})
		for _, p := range []string{"../x.jpg", "pics/.htaccess", "/etc/passwd"} {
			plan := &orphan.Plan{Orphans: []orphan.Orphan{{Path: p, Size: 10, ModTime: now.Add(-10 * day)}}}
			rep, err := f.Apply(t.Context(), plan)
			assert.ErrorIs(t, err, orphan.ErrInvalidPlan, "plan with unsafe path %q", p)
			if rep != nil {
				assert.Zero(t, rep.Deleted.Files)
			}
		}
		assert.Contains(t, s13All(t, fsys), "pics/.htaccess", "the unsafe file is never touched")
	})
}

// Defaults of zero-valued Options: MaxFraction 0 = half (more than half
// refused), negative = none; MinAge 0 = one day, negative = none but the
// future still young; MaxDeletes 0 = no limit.
func TestS13ZeroOptionDefaults(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/ref1.jpg", 10, 10*day)
		put(t, fsys, "pics/ref2.jpg", 10, 10*day)
		put(t, fsys, "pics/o1.jpg", 10, 10*day)
		put(t, fsys, "pics/o2.jpg", 10, 10*day)
		refs := orphan.Paths("pics/ref1.jpg", "pics/ref2.jpg")
		ctx := t.Context()

		// Exactly half: allowed by default.
		f := orphan.New(fsys, refs, orphan.Options{Now: clock})
		plan, err := f.Find(ctx)
		require.NoError(t, err)
		assert.Len(t, plan.Orphans, 2)
		assert.NoError(t, f.Check(plan), "2 of 4 is not more than half")

		// More than half: refused by default.
		put(t, fsys, "pics/o3.jpg", 10, 10*day)
		plan, err = f.Find(ctx)
		require.NoError(t, err)
		assert.ErrorIs(t, f.Check(plan), orphan.ErrFractionLimit)
		_, err = f.Apply(ctx, plan)
		assert.ErrorIs(t, err, orphan.ErrFractionLimit)
		assert.Len(t, files(t, fsys), 5, "nothing deleted")
		// Negative: no fraction limit; MaxDeletes zero: no count limit.
		fneg := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1})
		plan, err = fneg.Find(ctx)
		require.NoError(t, err)
		assert.NoError(t, fneg.Check(plan))
		// Force overrides the limits.
		ff := orphan.New(fsys, refs, orphan.Options{Now: clock, Force: true, MaxDeletes: 1})
		plan, err = ff.Find(ctx)
		require.NoError(t, err)
		assert.NoError(t, ff.Check(plan))
		// MaxDeletes over: ErrDeleteLimit; MaxBytes over: ErrBytesLimit.
		fd := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1, MaxDeletes: 2})
		plan, err = fd.Find(ctx)
		require.NoError(t, err)
		assert.ErrorIs(t, fd.Check(plan), orphan.ErrDeleteLimit)
		fb := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1, MaxBytes: 29})
		plan, err = fb.Find(ctx)
		require.NoError(t, err)
		assert.ErrorIs(t, fb.Check(plan), orphan.ErrBytesLimit)
	})
}

func TestS13GracePeriodDefaults(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/ref.jpg", 10, 10*day)
		put(t, fsys, "pics/h23.jpg", 10, 23*time.Hour)
		put(t, fsys, "pics/h24.jpg", 10, 24*time.Hour)
		put(t, fsys, "pics/h25.jpg", 10, 25*time.Hour)
		put(t, fsys, "pics/future.jpg", 10, -time.Hour)
		put(t, fsys, "pics/farfuture.jpg", 10, -100*365*day)
		refs := orphan.Paths("pics/ref.jpg")
		orphansOf := func(opts orphan.Options) []string {
			opts.Now, opts.MaxFraction = clock, -1
			plan, err := orphan.New(fsys, refs, opts).Find(t.Context())
			require.NoError(t, err)
			var out []string
			for _, o := range plan.Orphans {
				out = append(out, o.Path)
			}
			return out
		}
		assert.Equal(t, []string{"pics/h25.jpg"}, orphansOf(orphan.Options{}), "zero MinAge: one day; exactly a day old is not older")
		assert.Equal(t, []string{"pics/h23.jpg", "pics/h24.jpg", "pics/h25.jpg"}, orphansOf(orphan.Options{MinAge: -1}), "negative: none, future still young")
	})
}

// ErrProvider: "the provider failed, stopped midway, or ctx was cancelled".
func TestS13ProviderErrorsAreErrProvider(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		put(t, fsys, "pics/b.jpg", 10, 10*day)
		for _, merge := range []bool{false, true} {
			ctx, cancel := context.WithCancel(t.Context())
			cancelling := orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				if err := fn("pics/a.jpg"); err != nil {
					return err
				}
				cancel()
				return nil // a provider that misses the cancel
			})
			_, err := orphan.New(fsys, cancelling, orphan.Options{Now: clock, Merge: merge, TempDir: t.TempDir()}).Find(ctx)
			assert.ErrorIs(t, err, orphan.ErrProvider, "merge=%v", merge)
			assert.ErrorIs(t, err, context.Canceled, "merge=%v", merge)
			cancel()
			// Force does not override the provider guard.
			boom := errors.New("boom")
			bad := orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error { return boom })
			_, err = orphan.New(fsys, bad, orphan.Options{Now: clock, Merge: merge, Force: true, TempDir: t.TempDir()}).Find(t.Context())
			assert.ErrorIs(t, err, orphan.ErrProvider)
			assert.ErrorIs(t, err, boom)
		}
		assert.Len(t, files(t, fsys), 2)
	})
}

// ErrNoReferences: Force does not override it (README: Force overrides
// the last two rows only), AllowEmpty does; empty storage is no error.
func TestS13EmptyReferences(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		f := orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock})
		_, err := f.Find(t.Context())
		assert.NoError(t, err, "no files, no references: nothing to refuse")
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		_, err = orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock, Force: true}).Find(t.Context())
		assert.ErrorIs(t, err, orphan.ErrNoReferences)
		_, err = orphan.New(fsys, orphan.Paths("", "   ", "../a.jpg"), orphan.Options{Now: clock, Force: true}).Find(t.Context())
		assert.ErrorIs(t, err, orphan.ErrNoReferences, "only invalid references")
		// A saved plan applied with an empty reference set.
		plan := &orphan.Plan{Orphans: []orphan.Orphan{{Path: "pics/a.jpg", Size: 10, ModTime: now.Add(-10 * day)}}}
		_, err = orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock, Force: true}).Apply(t.Context(), plan)
		assert.ErrorIs(t, err, orphan.ErrNoReferences)
		assert.Equal(t, []string{"pics/a.jpg"}, files(t, fsys))
		// AllowEmpty: the coverage guard and the fraction limit still hold.
		_, err = orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock, AllowEmpty: true}).Apply(t.Context(), plan)
		assert.ErrorIs(t, err, orphan.ErrUncovered)
		_, err = orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock, AllowEmpty: true, Unreferenced: []string{"**"}}).Apply(t.Context(), plan)
		assert.ErrorIs(t, err, orphan.ErrFractionLimit)
		assert.Equal(t, []string{"pics/a.jpg"}, files(t, fsys))
	})
}

// Coverage: old orphans at the top of the root, or in a top directory no
// reference points into, are refused; Unreferenced exempts; Force
// overrides.
func TestS13Coverage(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		for i := range 10 {
			put(t, fsys, "pics/r"+string(rune('0'+i))+".jpg", 10, 10*day)
		}
		put(t, fsys, "pics/o.jpg", 10, 10*day)
		put(t, fsys, "top.jpg", 10, 10*day)
		put(t, fsys, "docs/x.pdf", 10, 10*day)
		var refs []string
		for i := range 10 {
			refs = append(refs, "pics/r"+string(rune('0'+i))+".jpg")
		}
		f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{".", "docs"}, plan.Uncovered)
		assert.ErrorIs(t, f.Check(plan), orphan.ErrUncovered)
		_, err = f.Apply(t.Context(), plan)
		assert.ErrorIs(t, err, orphan.ErrUncovered)
		assert.Len(t, files(t, fsys), 13)

		fu := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, Unreferenced: []string{"docs/**", "*.jpg"}})
		plan, err = fu.Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, plan.Uncovered)
		assert.NoError(t, fu.Check(plan))

		ff := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, Force: true})
		plan, err = ff.Find(t.Context())
		require.NoError(t, err)
		assert.NoError(t, ff.Check(plan))
	})
}

// Protected globs: case-insensitive, a folder protects all it holds, and
// an edited plan naming a protected, young, referenced or out-of-Dirs
// file deletes none of them.
func TestS13EditedPlanKeepsWhatFindWouldNot(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/ref.jpg", 10, 10*day)
		put(t, fsys, "pics/ref2.jpg", 10, 10*day)
		put(t, fsys, "pics/ref3.jpg", 10, 10*day)
		put(t, fsys, "pics/young.jpg", 10, time.Hour)
		put(t, fsys, "Receipts/2024/a.pdf", 10, 10*day)
		put(t, fsys, "other/x.jpg", 10, 10*day)
		put(t, fsys, "pics/o.jpg", 10, 10*day)
		refs := orphan.Paths("pics/ref.jpg", "pics/ref2.jpg", "pics/ref3.jpg", "Receipts/2024/b.pdf", "other/y.jpg")
		f := orphan.New(fsys, refs, orphan.Options{Now: clock, Dirs: []string{"pics", "Receipts"}, Protected: []string{"receipts"}, MaxFraction: -1})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		got := []string{}
		for _, o := range plan.Orphans {
			got = append(got, o.Path)
		}
		assert.Equal(t, []string{"pics/o.jpg"}, got)
		for _, p := range []string{"pics/ref.jpg", "pics/young.jpg", "Receipts/2024/a.pdf", "other/x.jpg"} {
			fi, err := fsys.Stat(p)
			require.NoError(t, err)
			plan.Orphans = append(plan.Orphans, orphan.Orphan{Path: p, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptProtected].Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptYoung].Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptReferenced].Files)
		assert.Equal(t, 1, rep.Kept[orphan.KeptExcluded].Files)
		assert.NotContains(t, files(t, fsys), "pics/o.jpg")
		assert.Len(t, files(t, fsys), 6)
	})
}

// A quarantine area is never listed, so no Find plans what it holds, and
// an edited plan naming it keeps it.
func TestS13QuarantineAreaUntouched(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/ref.jpg", 10, 10*day)
		q := "trash/" + storage.QuarantineDirName + "/run1/pics/x.jpg"
		put(t, fsys, q, 10, 100*day)
		f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, Force: true})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Empty(t, plan.Orphans)
		plan.Orphans = []orphan.Orphan{{Path: q, Size: 10, ModTime: now.Add(-100 * day)}}
		_, err = f.Apply(t.Context(), plan)
		_ = err
		assert.Contains(t, s13All(t, fsys), q)
	})
}

type s13Listing struct {
	created time.Time
	entries []storage.Entry
}

func (l s13Listing) CreatedAt() time.Time { return l.created }
func (l s13Listing) ListFiles(ctx context.Context, _ storage.ListOptions, fn func(storage.Entry) error) error {
	for _, e := range l.entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// ErrStaleListing: older than the grace period, the grace period off, or
// in the future.
func TestS13StaleListing(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		put(t, fsys, "pics/a.jpg", 10, 10*day)
		e := []storage.Entry{{Path: "pics/a.jpg", Size: 10, ModTime: now.Add(-10 * day)}}
		for _, c := range []struct {
			name    string
			created time.Time
			minAge  time.Duration
		}{
			{"older than the grace period", now.Add(-25 * time.Hour), 0},
			{"grace period off", now.Add(-time.Minute), -1},
			{"in the future", now.Add(time.Hour), 0},
		} {
			_, err := orphan.New(fsys, orphan.Paths("pics/b.jpg"), orphan.Options{Now: clock, MinAge: c.minAge, Listing: s13Listing{c.created, e}}).Find(t.Context())
			assert.ErrorIs(t, err, orphan.ErrStaleListing, c.name)
		}
	})
}

// Options.Range End before Start: CheckOptions matches ErrShardMap.
func TestS13RangeCheck(t *testing.T) {
	assert.ErrorIs(t, orphan.CheckOptions(orphan.Options{Range: orphan.KeyRange{Start: "b", End: "a"}}), orphan.ErrShardMap)
	_, err := (&orphan.ShardMap{Boundaries: []string{"b", "a"}}).Range(0)
	_ = err
	assert.ErrorIs(t, (&orphan.ShardMap{Boundaries: []string{"b", "a"}}).Check(), orphan.ErrShardMap)
	assert.ErrorIs(t, (&orphan.ShardMap{Boundaries: []string{"a", ""}}).Check(), orphan.ErrShardMap)
}

// Purge: only what a manifest lists; a dry run deletes nothing; a run
// without a readable manifest is kept. Restore never over anything.
func TestS13QuarantinePurgeRestore(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		for _, p := range []string{"pics/r1.jpg", "pics/r2.jpg", "pics/r3.jpg", "pics/o1.jpg", "pics/o2.jpg"} {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/r1.jpg", "pics/r2.jpg", "pics/r3.jpg"), orphan.Options{Now: clock, Quarantine: "trash"})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		require.Equal(t, 2, rep.Quarantined.Files)
		run := rep.QuarantineRun
		runDir := "trash/" + storage.QuarantineDirName + "/" + run
		// A stray file in the run folder, and a run without a manifest.
		put(t, fsys, runDir+"/stray.jpg", 1, 100*day)
		put(t, fsys, "trash/"+storage.QuarantineDirName+"/nomanifest/pics/z.jpg", 1, 100*day)
		// Restore refuses to overwrite: o1 re-uploaded meanwhile.
		put(t, fsys, "pics/o1.jpg", 3, time.Hour)
		rr, err := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), run)
		assert.ErrorIs(t, err, orphan.ErrDeleteFailed)
		assert.Equal(t, 1, rr.Restored.Files)
		assert.Equal(t, 1, rr.Failed.Files)
		fi, err := fsys.Stat("pics/o1.jpg")
		require.NoError(t, err)
		assert.EqualValues(t, 3, fi.Size(), "the new upload stays")

		later := func() time.Time { return now.Add(400 * day) }
		pr, err := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: later, DryRun: true}).Purge(t.Context(), day)
		require.NoError(t, err)
		assert.True(t, pr.DryRun)
		before := s13All(t, fsys)
		assert.Contains(t, before, runDir+"/pics/o1.jpg")
		pr, err = orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: later}).Purge(t.Context(), day)
		require.NoError(t, err)
		assert.Equal(t, 1, pr.Deleted.Files)
		all := s13All(t, fsys)
		assert.NotContains(t, all, runDir+"/pics/o1.jpg")
		assert.Contains(t, all, runDir+"/stray.jpg")
		assert.Contains(t, all, "trash/"+storage.QuarantineDirName+"/nomanifest/pics/z.jpg")
	})
}

// sqlrefs: a query with a second statement is refused before any query
// runs, matchable with errors.Is through Find; NULL and empty values are
// skipped; Counts says what each query gave.
func TestS13SQLRefs(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db"))
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE users (picture TEXT); INSERT INTO users VALUES ('pics/a.jpg'), (NULL), (''), ('pics/b.jpg');
		CREATE TABLE forum (image TEXT);`)
	require.NoError(t, err)
	fsys := afero.NewMemMapFs()
	put(t, fsys, "pics/a.jpg", 10, 10*day)
	put(t, fsys, "pics/b.jpg", 10, 10*day)
	put(t, fsys, "pics/c.jpg", 10, 10*day)
	multi := sqlrefs.New(db, "SELECT image FROM forum", "SELECT picture FROM users; SELECT image FROM forum")
	_, err = orphan.New(fsys, multi, orphan.Options{Now: clock}).Find(t.Context())
	assert.ErrorIs(t, err, orphan.ErrProvider)
	assert.ErrorIs(t, err, sqlrefs.ErrMultipleStatements)
	assert.Nil(t, multi.Counts())

	p := sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, "SELECT picture FROM users;", "SELECT image FROM forum")
	plan, err := orphan.New(fsys, p, orphan.Options{Now: clock}).Find(t.Context())
	require.NoError(t, err, "a semicolon at the end is accepted")
	assert.Equal(t, []int{2, 0}, p.Counts())
	assert.Equal(t, 2, plan.References)
	require.Len(t, plan.Orphans, 1)
	assert.Equal(t, "pics/c.jpg", plan.Orphans[0].Path)
}

// A references file exported as CSV quotes the values that need it
// (Python's csv, PostgreSQL's COPY ... CSV): "pics/holiday, beach.jpg",
// "pics/say ""cheese"".jpg". Such a line also names the value inside the
// quotes, in hash and merge mode; before session 13 both files were
// orphans (the plain lines covered pics/, so no guard spoke).
func TestS13QuotedCSVReferencesKeepTheirFiles(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs) {
		for _, p := range []string{"pics/holiday, beach.jpg", `pics/say "cheese".jpg`, "pics/plain.jpg", "pics/orphan.jpg", `pics/"quoted".jpg`} {
			put(t, fsys, p, 10, 10*day)
		}
		refs := orphan.Paths(`"pics/holiday, beach.jpg"`, `"pics/say ""cheese"".jpg"`, "pics/plain.jpg", `"pics/"quoted".jpg"`)
		for _, merge := range []bool{false, true} {
			plan, err := orphan.New(fsys, refs, orphan.Options{Now: clock, MaxFraction: -1, Merge: merge, TempDir: t.TempDir()}).Find(t.Context())
			require.NoError(t, err)
			var got []string
			for _, o := range plan.Orphans {
				got = append(got, o.Path)
			}
			assert.Equal(t, []string{"pics/orphan.jpg"}, got, "merge %v", merge)
		}
	})
}
