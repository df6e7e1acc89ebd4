package orphan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// liveEntries lists fsys as it is now.
func liveEntries(t *testing.T, fsys afero.Fs) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error { out = append(out, e); return nil }))
	return out
}

// writeReport writes an inventory report of fsys's bucket as it is now,
// made at created, into a temporary folder, and opens it for target.
func writeReport(t *testing.T, fsys *s3test.BackdatingFs, target *s3fs.Fs, created time.Time, schema string) *inventory.Report {
	t.Helper()
	return writeReportAs(t, fsys, target, created, schema, false)
}

// writeReportAs is writeReport in CSV or in Parquet.
func writeReportAs(t *testing.T, fsys *s3test.BackdatingFs, target *s3fs.Fs, created time.Time, schema string, parquet bool) *inventory.Report {
	t.Helper()
	objs := inventorytest.Objects(fsys.Prefix(), liveEntries(t, fsys))
	// Another prefix of the same bucket is in the report too.
	objs = append(objs, inventorytest.Object{Key: "elsewhere/x.jpg", Size: 1, ModTime: now.Add(-30 * day)})
	m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{SourceBucket: fsys.Bucket, Created: created, Schema: schema, DataFiles: 3, Objects: objs, Parquet: parquet})
	require.NoError(t, err)
	rep, err := inventory.Open(t.Context(), m, target, inventory.Options{TempDir: t.TempDir()})
	require.NoError(t, err)
	return rep
}

// comparable is what two plans of the same storage made at different
// moments have in common: all but their time, duration and source.
func comparable(p *orphan.Plan) map[string]any {
	return map[string]any{
		"orphans": p.Orphans, "scanned": p.Scanned, "total": p.Total, "dirs": p.Dirs, "kept": p.Kept,
		"references": p.References, "invalid": p.InvalidReferences, "uncovered": p.Uncovered,
		"unrecognised": p.Unrecognised, "missing": p.Missing, "missing_count": p.MissingCount,
		"unmeasured": p.Unmeasured, "range": p.Range,
	}
}

// On the S3 server: a plan from an inventory report equals the plan from a
// live listing (the same orphans with the same sizes, times and ETags, the
// same figures), and Find sends no request to the bucket: the report is
// read from disk. Applying it re-checks with a live listing of the key
// range and deletes what the live plan would.
func TestListingPlanEqualsLivePlan(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media")
	for i := range 240 {
		age := 10 * day
		if i%10 == 0 {
			age = time.Hour // young
		}
		put(t, fsys, fmt.Sprintf("pics/%03d.jpg", i), 10+i, age)
	}
	put(t, fsys, "docs/readme.txt", 5, 10*day)
	var refs []string
	for i := 0; i < 240; i += 3 {
		refs = append(refs, fmt.Sprintf("pics/%03d.jpg", i))
	}
	refs = append(refs, "docs/readme.txt", "pics/missing.jpg")
	opts := orphan.Options{Now: clock, MaxFraction: -1}

	live, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, live.Orphans)

	var count s3test.Counter
	counted := s3fs.New(srv.Client(&count), fsys.Bucket, s3fs.Options{Prefix: "media"})
	opts.Listing = writeReport(t, fsys, counted, now.Add(-2*time.Hour), "")
	f := orphan.New(counted, orphan.Paths(refs...), opts)
	listed, err := f.Find(t.Context())
	require.NoError(t, err)
	for _, kind := range []string{"list", "head", "get", "other"} {
		assert.Zero(t, count.Get(kind), "%s requests during Find from a listing", kind)
	}
	assert.Equal(t, comparable(live), comparable(listed))
	// Merge mode sorts the report, which is in no order, on disk first,
	// and makes the same plan, still without a request.
	merged := opts
	merged.Merge, merged.TempDir = true, t.TempDir()
	mergedPlan, err := orphan.New(counted, orphan.Paths(refs...), merged).Find(t.Context())
	require.NoError(t, err)
	assert.Equal(t, comparable(live), comparable(mergedPlan))
	for _, kind := range []string{"list", "head", "get", "other"} {
		assert.Zero(t, count.Get(kind), "%s requests during a merge-mode Find from a listing", kind)
	}
	// A Parquet report of the same bucket makes the same plans.
	pq := opts
	pq.Listing = writeReportAs(t, fsys, counted, now.Add(-2*time.Hour), "", true)
	for _, merge := range []bool{false, true} {
		pq.Merge, pq.TempDir = merge, t.TempDir()
		p, err := orphan.New(counted, orphan.Paths(refs...), pq).Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, comparable(live), comparable(p), "Parquet, merge %v", merge)
	}
	for _, kind := range []string{"list", "head", "get", "other"} {
		assert.Zero(t, count.Get(kind), "%s requests during a Find from a Parquet listing", kind)
	}
	require.NotNil(t, listed.Listed)
	assert.True(t, listed.Listed.Equal(now.Add(-2*time.Hour)))
	var js map[string]any
	b, _ := json.Marshal(listed)
	require.NoError(t, json.Unmarshal(b, &js))
	assert.Contains(t, js, "listed")

	rep, err := f.Apply(t.Context(), listed)
	require.NoError(t, err)
	assert.Equal(t, len(live.Orphans), rep.Deleted.Files)
	assert.NotZero(t, count.Get("list"), "Apply re-checks against a live listing")
}

// A report that lists a key twice, read without the report's own
// duplicate check (inventory.Options.NoDuplicateCheck, which holds a hash
// per key), is refused by merge mode, which sees the repeated key in its
// sorted listing; nothing is planned.
func TestMergeModeRefusesARepeatedKeyInAListing(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media")
	for i := range 30 {
		put(t, fsys, fmt.Sprintf("pics/%03d.jpg", i), 10, 10*day)
	}
	objs := inventorytest.Objects(fsys.Prefix(), liveEntries(t, fsys))
	objs = append(objs, objs[7]) // in another data file, most likely
	m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{SourceBucket: fsys.Bucket, Created: now.Add(-2 * time.Hour), DataFiles: 3, Objects: objs})
	require.NoError(t, err)
	for _, check := range []bool{true, false} {
		rep, err := inventory.Open(t.Context(), m, fsys.Fs, inventory.Options{NoDuplicateCheck: !check})
		require.NoError(t, err)
		opts := orphan.Options{Now: clock, MaxFraction: -1, Merge: true, TempDir: t.TempDir(), Listing: rep}
		_, err = orphan.New(fsys, orphan.Paths("pics/000.jpg"), opts).Find(t.Context())
		if check {
			require.ErrorIs(t, err, inventory.ErrInvalid)
		} else {
			require.ErrorIs(t, err, storage.ErrUnsorted)
		}
	}
}

// fixedListing is a listing with nothing in it, made at created.
type fixedListing time.Time

func (fixedListing) ListFiles(context.Context, storage.ListOptions, func(storage.Entry) error) error {
	return nil
}
func (l fixedListing) CreatedAt() time.Time { return time.Time(l) }

// A listing older than the grace period, one from the future, and any
// listing with the grace period off are refused with ErrStaleListing, and
// no plan is made.
func TestStaleListingRefused(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	put(t, fsys, "pics/a.jpg", 10, 10*day)
	cases := []struct {
		name    string
		created time.Time
		minAge  time.Duration
		ok      bool
	}{
		{"younger than the grace period", now.Add(-23 * time.Hour), 0, true},
		{"as old as the grace period", now.Add(-day), 0, false},
		{"older than the grace period", now.Add(-3 * day), 0, false},
		{"older than a longer grace period", now.Add(-3 * day), 2 * day, false},
		{"within a longer grace period", now.Add(-3 * day), 4 * day, true},
		{"grace period off", now.Add(-time.Minute), -1, false},
		{"from the future", now.Add(time.Hour), 0, false},
		{"a minute ahead (clock skew)", now.Add(time.Minute), 0, true},
	}
	for _, tc := range cases {
		f := orphan.New(fsys, orphan.Paths("pics/a.jpg"), orphan.Options{Now: clock, MinAge: tc.minAge, Listing: fixedListing(tc.created)})
		plan, err := f.Find(t.Context())
		if tc.ok {
			assert.NoError(t, err, tc.name)
			continue
		}
		assert.True(t, errors.Is(err, orphan.ErrStaleListing), "%s: %v", tc.name, err)
		assert.Nil(t, plan, tc.name)
	}
}

// An inventory report that turns out hostile while Find reads it (here a
// data file whose MD5 does not match) gives no plan.
func TestCorruptListingGivesNoPlan(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media")
	for i := range 20 {
		put(t, fsys, fmt.Sprintf("pics/%03d.jpg", i), 10, 10*day)
	}
	report, err := inventorytest.Build("", inventorytest.Report{SourceBucket: fsys.Bucket, Created: now.Add(-time.Hour), Objects: inventorytest.Objects("media/", liveEntries(t, fsys))})
	require.NoError(t, err)
	mem := afero.NewMemMapFs()
	for p, b := range report {
		if len(b) > 20 && p[len(p)-3:] == ".gz" {
			b[len(b)-5] ^= 1 // the CRC of the gzip trailer
		}
		require.NoError(t, afero.WriteFile(mem, "/"+p, b, 0o644))
	}
	rep, err := inventory.OpenFs(t.Context(), mem, "/"+report.ManifestPath(), fsys.Fs, inventory.Options{})
	require.NoError(t, err)
	plan, err := orphan.New(fsys, orphan.Paths(), orphan.Options{Now: clock, AllowEmpty: true, MaxFraction: -1, Listing: rep}).Find(t.Context())
	assert.ErrorIs(t, err, inventory.ErrInvalid)
	assert.Nil(t, plan)
	assert.Len(t, files(t, fsys), 20)
}

// countingListing is a listing of entries made at created, in the order
// given, that counts its calls; it honours ListOptions.Dir.
type countingListing struct {
	entries []storage.Entry
	created time.Time
	calls   int
}

func (l *countingListing) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	l.calls++
	for _, e := range l.entries {
		if opts.Dir != "" && !strings.HasPrefix(e.Path, opts.Dir+"/") {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (l *countingListing) CreatedAt() time.Time { return l.created }

// With several Options.Dirs, a listing (read whole on every call, as an
// inventory report is) is read once, not once per directory, and the plan
// is the live plan, in hash and in merge mode; merge mode sorts only the
// entries inside Dirs.
func TestListingReadOnceForAllDirs(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "docs/c.pdf", "docs/d.pdf", "other/e.jpg", "picsx/f.jpg"} {
		put(t, fsys, p, 10, 10*day)
	}
	entries := liveEntries(t, fsys)
	slices.Reverse(entries) // in no particular order
	// An entry outside Dirs that merge mode could not even encode for its
	// sort (a NUL): it must be dropped before the sort, as all entries
	// outside Dirs are, so that the sort holds only what is scanned.
	entries = append(entries, storage.Entry{Path: "other/bad\x00.jpg", Size: 1, ModTime: now.Add(-10 * day)})
	for _, merge := range []bool{false, true} {
		opts := orphan.Options{Now: clock, MaxFraction: -1, Dirs: []string{"pics", "docs"}, Merge: merge, TempDir: t.TempDir()}
		refs := orphan.Paths("pics/a.jpg", "docs/c.pdf")
		live, err := orphan.New(fsys, refs, opts).Find(t.Context())
		require.NoError(t, err)
		l := &countingListing{entries: entries, created: now.Add(-time.Hour)}
		opts.Listing = l
		listed, err := orphan.New(fsys, refs, opts).Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, l.calls, "merge %v", merge)
		live.Listed = listed.Listed
		assert.Equal(t, comparablePlan(t, live), comparablePlan(t, listed), "merge %v", merge)
		assert.Len(t, listed.Orphans, 2)
	}
}
