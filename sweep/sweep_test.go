package sweep_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

// backends: RootFs, OsFs and MemMapFs, then a real S3 server.
var backends = append(storagetest.LocalBackends(), s3test.Backend(""))

// put writes a file aged age (negative: in the future).
func put(t *testing.T, fsys afero.Fs, p string, size int, age time.Duration) {
	storagetest.WriteFile(t, fsys, p, make([]byte, size), now.Add(-age))
}

func files(t *testing.T, fsys afero.Fs) []string { return storagetest.Files(t, fsys) }

const day = 24 * time.Hour

// Temp names as a careful write (storage.PendingFile) makes them.
var (
	crashed  = storage.TempPrefix + "c0ffee00c0ffee00c0ffee00c0ffee00"
	inflight = storage.TempPrefix + "0123456789abcdef0123456789abcdef"
)

func TestSweepRules(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr_codes/1/old.png", 10, 8*day)
		put(t, fsys, "qr_codes/1/young.png", 20, 6*day)
		put(t, fsys, "qr_codes/1/future.png", 30, -3*day)
		put(t, fsys, "qr_codes/2/keep.png", 40, 30*day)
		put(t, fsys, "qr_codes/2/sub/old.png", 50, 10*day)
		put(t, fsys, "qr_codes/.hidden", 1, 30*day)
		put(t, fsys, "profile_pics/old.jpg", 60, 400*day)
		put(t, fsys, "receipts/2020/a.pdf", 70, 400*day)
		put(t, fsys, "receipts/2020/b.pdf", 80, 2*day)
		put(t, fsys, "qr_codes/1/"+crashed, 5, 2*day)
		put(t, fsys, "qr_codes/1/"+inflight, 5, time.Hour)
		objectStore := storage.FeaturesOf(fsys).AtomicCreate

		var events []sweep.Event
		s := sweep.New(fsys, sweep.Options{
			Rules: []sweep.Rule{
				{Glob: "qr_codes/**", MaxAge: 7 * day, Exclude: []string{"qr_codes/2/keep.png"}},
				{Glob: "receipts/**", MaxAge: 365 * day},
			},
			Now:     clock,
			OnEvent: func(e sweep.Event) { events = append(events, e) },
		})
		rep, err := s.Sweep(t.Context())
		require.NoError(t, err)
		left := []string{
			"profile_pics/old.jpg",
			"qr_codes/.hidden",
			"qr_codes/1/" + inflight,
			"qr_codes/1/future.png",
			"qr_codes/1/young.png",
			"qr_codes/2/keep.png",
			"receipts/2020/b.pdf",
		}
		if objectStore {
			// filefield writes no temp names on object stores: such keys
			// are someone else's, matched by the rule and refused as
			// unsafe names.
			left = append(left[:3], append([]string{"qr_codes/1/" + crashed}, left[3:]...)...)
		}
		assert.Equal(t, left, files(t, fsys))
		if objectStore {
			assert.Equal(t, storage.Count{Files: 3, Bytes: 11}, rep.Kept[sweep.KeptUnsafe])
			assert.Zero(t, rep.Kept[sweep.KeptInFlight])
			assert.Equal(t, storage.Count{Files: 3, Bytes: 130}, rep.Deleted)
			return
		}
		if storage.FeaturesOf(fsys).CheapNames {
			// No rule matches profile_pics/old.jpg: listed by name only.
			assert.Equal(t, storage.Count{Files: 11, Bytes: 311}, rep.Scanned)
			assert.Equal(t, 1, rep.Unmeasured)
		} else {
			assert.Equal(t, storage.Count{Files: 11, Bytes: 371}, rep.Scanned)
			assert.Zero(t, rep.Unmeasured)
		}
		assert.Equal(t, storage.Count{Files: 8, Bytes: 301}, rep.Matched)
		assert.Equal(t, storage.Count{Files: 4, Bytes: 135}, rep.Deleted)
		assert.Equal(t, storage.Count{Files: 3, Bytes: 130}, rep.Kept[sweep.KeptYoung]) // young, future, b.pdf
		assert.Equal(t, storage.Count{Files: 1, Bytes: 40}, rep.Kept[sweep.KeptExcluded])
		assert.Equal(t, storage.Count{Files: 1, Bytes: 1}, rep.Kept[sweep.KeptUnsafe])
		assert.Equal(t, storage.Count{Files: 1, Bytes: 5}, rep.Kept[sweep.KeptInFlight])
		assert.Zero(t, rep.Failed.Files)
		assert.Equal(t, "qr_codes/2/sub", rep.TopDirs[1].Dir)
		assert.Equal(t, "receipts/2020", rep.TopDirs[0].Dir)
		var deleted []string
		for _, e := range events {
			if e.Action == "delete" {
				deleted = append(deleted, e.Path)
			}
		}
		assert.Len(t, deleted, 4)
	})
}

// KeepLatest 1 per owner: the seed's one QR code per user.
func TestKeepLatestPerOwner(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr_codes/1/a.png", 1, 3*day)
		put(t, fsys, "qr_codes/1/b.png", 1, 2*day)
		put(t, fsys, "qr_codes/1/c.png", 1, 1*day)
		put(t, fsys, "qr_codes/2/a.png", 1, 9*day)
		s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr_codes/*/*.png", KeepLatest: 1}}, Now: clock})
		rep, err := s.Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{"qr_codes/1/c.png", "qr_codes/2/a.png"}, files(t, fsys))
		assert.Equal(t, 2, rep.Deleted.Files)
		assert.Equal(t, 2, rep.Kept[sweep.KeptLatest].Files)
	})
}

func TestDryRunAndRealRunSamePlan(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for i := range 50 {
			put(t, fsys, fmt.Sprintf("qr_codes/%d/%02d.png", i%5, i), i, time.Duration(i)*day/5)
		}
		before := files(t, fsys)
		collect := func(dry bool) ([]string, *sweep.Report) {
			var got []string
			s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}, Now: clock, DryRun: dry, Budget: sweep.Budget{Files: 5},
				OnEvent: func(e sweep.Event) {
					if e.Action == "delete" || e.Action == "would_delete" {
						got = append(got, e.Path)
					}
				}})
			rep, err := s.Sweep(t.Context())
			require.NoError(t, err)
			return got, rep
		}
		dry, drep := collect(true)
		assert.Equal(t, before, files(t, fsys), "dry run changed nothing")
		real, rrep := collect(false)
		assert.Equal(t, dry, real)
		assert.Len(t, real, 5)
		assert.Equal(t, drep.Deleted, rrep.Deleted)
		assert.Equal(t, sweep.StoppedFiles, rrep.Stopped)
		assert.True(t, drep.DryRun)
		assert.Equal(t, len(before)-5, len(files(t, fsys)))
		assert.Positive(t, rrep.Kept[sweep.KeptBudget].Files)
	})
}

func TestBudgets(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for i := range 10 {
			put(t, fsys, "q/"+string(rune('a'+i))+".png", 100, 10*day)
		}
		s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "q/**", MaxAge: day}}, Now: clock, Budget: sweep.Budget{Bytes: 350}})
		rep, err := s.Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, sweep.StoppedBytes, rep.Stopped)
		assert.Equal(t, 3, rep.Deleted.Files)
		assert.Len(t, files(t, fsys), 7)

		s = sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "q/**", MaxAge: day}}, Now: clock, Budget: sweep.Budget{Time: time.Nanosecond}})
		rep, err = s.Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, sweep.StoppedTime, rep.Stopped)
		assert.Zero(t, rep.Deleted.Files)
		assert.Len(t, files(t, fsys), 7)
	})
}

func TestEmptyDirsRemovedNeverRoot(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr_codes/1/2026/a.png", 1, 10*day)
		put(t, fsys, "qr_codes/2/a.png", 1, 10*day)
		put(t, fsys, "qr_codes/2/b.png", 1, day)
		s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: 7 * day}}, Now: clock, RemoveEmptyDirs: true, Dir: "qr_codes"})
		rep, err := s.Sweep(t.Context())
		require.NoError(t, err)
		if storage.FeaturesOf(fsys).AtomicCreate {
			// Object stores have no directories: they vanish with their
			// last key, and there is nothing to remove.
			assert.Zero(t, rep.DirsRemoved)
		} else {
			assert.Equal(t, 2, rep.DirsRemoved)
		}
		_, err = fsys.Stat("qr_codes/1")
		assert.ErrorIs(t, err, os.ErrNotExist)
		fi, err := fsys.Stat("qr_codes")
		require.NoError(t, err, "the sweep's Dir stays")
		assert.True(t, fi.IsDir())
		assert.Equal(t, []string{"qr_codes/2/b.png"}, files(t, fsys))
	})
}

// P3: links out of the root, with old files behind them, change nothing.
func TestSymlinkEscapes(t *testing.T) {
	t.Parallel()
	for _, b := range backends[:2] {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, media := b.New(t)
			outside := t.TempDir()
			secret := filepath.Join(outside, "old.png")
			require.NoError(t, os.WriteFile(secret, []byte("secret"), 0o644))
			require.NoError(t, os.Chtimes(secret, now.Add(-100*day), now.Add(-100*day)))
			require.NoError(t, os.Symlink(outside, filepath.Join(media, "link")))
			require.NoError(t, os.Symlink("/", filepath.Join(media, "dir")))
			require.NoError(t, os.Symlink(secret, filepath.Join(media, "file-link.png")))
			s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: time.Nanosecond}}, Now: clock, RemoveEmptyDirs: true})
			rep, err := s.Sweep(t.Context())
			require.NoError(t, err)
			assert.Zero(t, rep.Deleted.Files)
			assert.Equal(t, 3, rep.Kept[sweep.KeptNotRegular].Files, "the three links are kept as not regular")
			got, err := os.ReadFile(secret)
			require.NoError(t, err)
			assert.Equal(t, "secret", string(got))
			for _, l := range []string{"link", "dir", "file-link.png"} {
				_, err := os.Lstat(filepath.Join(media, l))
				assert.NoError(t, err, "%s kept", l)
			}
		})
	}
}

// A 10,000-deep directory chain neither crashes nor hangs.
func TestDeepChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	cur := root
	for range 10_000 {
		require.NoError(t, cur.Mkdir("d", 0o755))
		next, err := cur.OpenRoot("d")
		require.NoError(t, err)
		if cur != root {
			cur.Close()
		}
		cur = next
	}
	require.NoError(t, cur.WriteFile("deep.png", []byte("x"), 0o644))
	cur.Close()
	root.Close()
	put := filepath.Join(dir, "top.png")
	require.NoError(t, os.WriteFile(put, []byte("x"), 0o644))
	require.NoError(t, os.Chtimes(put, now.Add(-100*day), now.Add(-100*day)))

	rfs, err := rootfs.New(dir)
	require.NoError(t, err)
	defer rfs.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rep, err := sweep.New(rfs, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock}).Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Deleted.Files)
}

func TestFailedDeletesAreReported(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, mem afero.Fs, _ string) {
		for i := range 5 {
			put(t, mem, "q/"+string(rune('a'+i))+".png", 10, 10*day)
		}
		ffs := storagetest.NewFaultFs(mem, storagetest.Fault{Kind: storagetest.OpRemove, N: 2, Sticky: true})
		rep, err := sweep.New(ffs, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock, Concurrency: 1}).Sweep(t.Context())
		require.ErrorIs(t, err, sweep.ErrDeleteFailed)
		assert.Equal(t, 1, rep.Deleted.Files)
		assert.Equal(t, 4, rep.Failed.Files)
		assert.Len(t, rep.Failures, 4)
		assert.Len(t, files(t, mem), 4)
	})
}

func TestListingErrorDeletesNothing(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, mem afero.Fs, _ string) {
		put(t, mem, "q/a.png", 10, 10*day)
		ffs := storagetest.NewFaultFs(mem, storagetest.Fault{Kind: storagetest.OpList, N: 1})
		_, err := sweep.New(ffs, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock}).Sweep(t.Context())
		require.ErrorIs(t, err, syscall.ENOSPC)
		assert.Equal(t, []string{"q/a.png"}, files(t, mem))

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = sweep.New(mem, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: day}}, Now: clock}).Sweep(ctx)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, []string{"q/a.png"}, files(t, mem))
	})
}

func TestNewRefusesRuleThatDeletesEverything(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { sweep.New(afero.NewMemMapFs(), sweep.Options{Rules: []sweep.Rule{{Glob: "**"}}}) })
	assert.Panics(t, func() { sweep.New(afero.NewMemMapFs(), sweep.Options{}) })
	assert.Panics(t, func() { sweep.New(afero.NewMemMapFs(), sweep.Options{Rules: []sweep.Rule{{Glob: "[", MaxAge: 1}}}) })
}

// TestNarrowRulesStatOnlyWhatTheyMatch: on a local disk, a sweep whose
// rules all start with a literal folder measures, in its one listing, only
// the files its rules match (and temp files, which it cleans anywhere);
// the decisions are those of a sweep that measures everything. A rule that can
// match anything ("**") lists with sizes in one pass instead.
func TestNarrowRulesStatOnlyWhatTheyMatch(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	mem := afero.NewMemMapFs()
	for _, fsys := range []afero.Fs{rfs, mem} {
		for i := range 20 {
			put(t, fsys, fmt.Sprintf("profile_pics/%02d.jpg", i), 10, 400*day)
		}
		put(t, fsys, "qr_codes/1/old.png", 10, 8*day)
		put(t, fsys, "qr_codes/1/young.png", 10, 1*day)
		put(t, fsys, "profile_pics/"+crashed, 5, 2*day)
	}
	rules := []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}
	spy := storagetest.NewSpyFs(rfs)
	rep, err := sweep.New(spy, sweep.Options{Rules: rules, Now: clock, DryRun: true}).Sweep(t.Context())
	require.NoError(t, err)
	// The listing measured the three files it needed itself: no stat after.
	for _, op := range spy.Ops() {
		assert.NotEqual(t, storagetest.OpStat, op.Kind, op.Path)
	}
	assert.Equal(t, 20, rep.Unmeasured, "the profile pictures were not measured")

	want, err := sweep.New(mem, sweep.Options{Rules: rules, Now: clock, DryRun: true}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, want.Deleted, rep.Deleted, "qr_codes/1/old.png and the crashed temp file")
	assert.Equal(t, want.Kept, rep.Kept)
	assert.Equal(t, want.Matched, rep.Matched)
	assert.Equal(t, want.Scanned.Files, rep.Scanned.Files)

	// A backend that lists names but ignores what to measure: the sweep
	// stats the files it needs afterwards, with the same decisions.
	spy = storagetest.NewSpyFs(namesOnly{rfs})
	rep, err = sweep.New(spy, sweep.Options{Rules: rules, Now: clock, DryRun: true}).Sweep(t.Context())
	require.NoError(t, err)
	var stats []string
	for _, op := range spy.Ops() {
		if op.Kind == storagetest.OpStat {
			stats = append(stats, op.Path)
		}
	}
	assert.ElementsMatch(t, []string{"qr_codes/1/old.png", "qr_codes/1/young.png", "profile_pics/" + crashed}, stats)
	assert.Equal(t, want.Deleted, rep.Deleted)
	assert.Equal(t, want.Kept, rep.Kept)

	// "**/*.png" measures the PNGs (and the temp file) only; a rule
	// matching everything ("**") measures everything in one listing.
	for glob, unmeasured := range map[string]int{"**/*.png": 20, "**": 0} {
		spy = storagetest.NewSpyFs(rfs)
		rep, err = sweep.New(spy, sweep.Options{Rules: []sweep.Rule{{Glob: glob, MaxAge: 7 * day}}, Now: clock, DryRun: true}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, unmeasured, rep.Unmeasured, glob)
		for _, op := range spy.Ops() {
			assert.NotEqual(t, storagetest.OpStat, op.Kind, "%s: a stat after the listing", glob)
		}
	}
}

// namesOnly is a RootFs whose listing measures nothing, whatever the
// caller wants.
type namesOnly struct{ *rootfs.Fs }

func (n namesOnly) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	opts.Measure = func(string) bool { return false }
	return n.Fs.ListFiles(ctx, opts, fn)
}

// TestTimeBudgetWhileListingNames: a sweep that lists names first still
// checks its time budget while it lists, not only once the matched files
// are stat'ed: it stops within the first 1024 files and deletes nothing.
func TestTimeBudgetWhileListingNames(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	for i := range 2000 {
		put(t, rfs, fmt.Sprintf("pics/%d/%04d.jpg", i%4, i), 1, 400*day)
	}
	put(t, rfs, "q/old.png", 1, 30*day)
	rep, err := sweep.New(rfs, sweep.Options{Rules: []sweep.Rule{{Glob: "q/**", MaxAge: day}}, Now: clock, Budget: sweep.Budget{Time: time.Nanosecond}}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, sweep.StoppedTime, rep.Stopped)
	assert.LessOrEqual(t, rep.Unmeasured, 1024, "the listing went on past the budget")
	assert.Zero(t, rep.Deleted.Files)
	_, err = rfs.Stat("q/old.png")
	assert.NoError(t, err)
}

// TestDirOutsideTheRootIsRefused: a Dir of "../media-secret" would make a
// backend that checks names as text (afero.BasePathFs) list, and delete
// the stale temp files of, a sibling of the root. New refuses it; "/qr/"
// is cleaned to "qr".
func TestDirOutsideTheRootIsRefused(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "media", "qr"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(base, "media-secret"), 0o755))
	stale := filepath.Join(base, "media-secret", crashed)
	require.NoError(t, os.WriteFile(stale, []byte("x"), 0o644))
	require.NoError(t, os.Chtimes(stale, now.Add(-30*day), now.Add(-30*day)))
	bfs := afero.NewBasePathFs(afero.NewOsFs(), filepath.Join(base, "media"))
	rules := []sweep.Rule{{Glob: "**", MaxAge: day}}
	for _, dir := range []string{"../media-secret", "qr/../../media-secret", "C:\\x"} {
		assert.Panics(t, func() { sweep.New(bfs, sweep.Options{Rules: rules, Now: clock, Dir: dir}) }, dir)
	}
	_, err := os.Stat(stale)
	require.NoError(t, err, "the sibling's file is gone")

	put(t, bfs, "qr/old.png", 1, 30*day)
	rep, err := sweep.New(bfs, sweep.Options{Rules: rules, Now: clock, Dir: "/qr/"}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Deleted.Files)
}

// S2: on object stores, where mtimes cannot be set, a rule takes the time
// from the key. Every file here is new by mtime; only the names are old.
func TestTimeFromName(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"qr/20261101T000000Z-a.png", "qr/20261124T000000Z-b.png", "qr/no-date.png"} {
			storagetest.WriteFile(t, fsys, p, []byte("x"), time.Time{})
		}
		fromName := func(p string) (time.Time, bool) {
			base := p[strings.LastIndexByte(p, '/')+1:]
			ts, _, ok := strings.Cut(base, "-")
			if !ok {
				return time.Time{}, false
			}
			tm, err := time.Parse("20060102T150405Z", ts)
			return tm, err == nil
		}
		rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: 7 * day, TimeFromName: fromName}}, Now: clock}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{"qr/20261124T000000Z-b.png", "qr/no-date.png"}, files(t, fsys))
		assert.Equal(t, 1, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[sweep.KeptNoTime].Files, "a name with no time is kept")
	})
}

// TestSweepUnderFaults fails the Nth filesystem operation of a sweep, for
// every N: young and protected files are never touched, old files are
// gone or intact, and a failure is reported rather than hidden.
func TestSweepUnderFaults(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				base, _ := b.New(t)
				put(t, base, "qr/1/old.png", 3, 10*day)
				put(t, base, "qr/2/old.png", 4, 10*day)
				put(t, base, "qr/1/young.png", 5, day)
				put(t, base, "qr/keep/old.png", 6, 10*day)
				ffs := storagetest.NewFaultFs(base, storagetest.Fault{N: n})
				rep, err := sweep.New(ffs, sweep.Options{
					Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: 7 * day}}, Protected: []string{"qr/keep/**"},
					Now: clock, RemoveEmptyDirs: true, Concurrency: 1,
				}).Sweep(t.Context())
				fired := ffs.Fired() > 0
				left := files(t, base)
				for _, p := range []string{"qr/1/young.png", "qr/keep/old.png"} {
					assert.Contains(t, left, p, "op %d", n)
				}
				if fired && err == nil {
					// A failed stat of an emptied directory may only keep it.
					assert.Equal(t, 2, rep.Deleted.Files, "op %d: a fault was hidden", n)
				}
				if !fired {
					require.NoError(t, err)
					assert.Equal(t, []string{"qr/1/young.png", "qr/keep/old.png"}, left)
					assert.Greater(t, n, 2)
					return
				}
			}
		})
	}
}

// On S3 a sweep deletes an object only if it still has the ETag the
// listing saw: one rewritten after the listing, just before its delete
// request (from a hook, not a sleep), is kept by the server's conditional
// delete and reported as changed, even though it is still old enough.
func TestS3RewriteBeforeDeleteIsKept(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "")
	for i := range 20 {
		put(t, fsys, fmt.Sprintf("qr_codes/%02d.png", i), 10, 8*day)
	}
	fsys.BeforeDelete = func([]storage.Target) {
		_, err := srv.Client(nil).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("qr_codes/07.png"), Body: bytes.NewReader([]byte("a new code"))})
		require.NoError(t, err)
		require.NoError(t, fsys.Chtimes("qr_codes/07.png", now.Add(-8*day), now.Add(-8*day)))
	}
	s := sweep.New(fsys, sweep.Options{Now: clock, Rules: []sweep.Rule{{Glob: "qr_codes/*.png", MaxAge: 7 * day}}})
	rep, err := s.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 19, rep.Deleted.Files)
	assert.Equal(t, storage.Count{Files: 1, Bytes: 10}, rep.Kept[sweep.KeptChanged])
	assert.Equal(t, "single", rep.ConditionalDeletes)
	assert.Equal(t, []string{"qr_codes/07.png"}, files(t, fsys))
}
