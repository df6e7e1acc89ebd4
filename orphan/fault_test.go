package orphan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// TestApplyUnderFaults fails the Nth filesystem operation of Apply, for
// every N, deleting and quarantining. Afterwards the referenced and young
// files are untouched, every orphan is either gone (delete) or recoverable
// (quarantine: Restore brings each back byte for byte), and nothing else
// appeared.
func TestApplyUnderFaults(t *testing.T) {
	t.Parallel()
	keep := map[string]string{"pics/ref.jpg": "referenced", "pics/young.jpg": "young"}
	orphans := map[string]string{"pics/o1.jpg": "one", "pics/o2.jpg": "two", "other/o3.jpg": "three"}
	for _, quarantine := range []bool{false, true} {
		mode := map[bool]string{false: "delete", true: "quarantine"}[quarantine]
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for _, b := range backends {
				t.Run(b.Name, func(t *testing.T) {
					t.Parallel()
					for n := 1; ; n++ {
						base, _ := b.New(t)
						for p, body := range orphans {
							storagetest.WriteFile(t, base, p, []byte(body), now.Add(-10*day))
						}
						storagetest.WriteFile(t, base, "pics/ref.jpg", []byte(keep["pics/ref.jpg"]), now.Add(-10*day))
						storagetest.WriteFile(t, base, "pics/young.jpg", []byte(keep["pics/young.jpg"]), now.Add(-time.Hour))
						ffs := storagetest.NewFaultFs(base, storagetest.Fault{})
						opts := orphan.Options{Now: clock, MaxFraction: -1}
						if quarantine {
							opts.Quarantine = "trash"
						}
						f := orphan.New(ffs, orphan.Paths("pics/ref.jpg", "other/ref.jpg"), opts)
						plan, err := f.Find(t.Context())
						require.NoError(t, err)
						require.Len(t, plan.Orphans, 3)

						ffs.Reset(storagetest.Fault{N: n})
						rep, _ := f.Apply(t.Context(), plan)
						fired := ffs.Fired() > 0
						ffs.Reset(storagetest.Fault{})

						for p, body := range keep {
							got, err := afero.ReadFile(base, p)
							require.NoError(t, err, "op %d: %s is gone", n, p)
							assert.Equal(t, body, string(got), "op %d: %s changed", n, p)
						}
						for _, p := range storagetest.Files(t, base) {
							_, isKeep := keep[p]
							_, isOrphan := orphans[p]
							assert.True(t, isKeep || isOrphan || strings.HasPrefix(p, "trash/"), "op %d: unexpected file %s", n, p)
						}
						if quarantine {
							if rep != nil && rep.QuarantineRun != "" {
								// A file the manifest lists but that never moved is
								// still at its path: not moved, not a failure.
								restored, err := orphan.NewQuarantine(base, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), rep.QuarantineRun)
								require.NoError(t, err, "op %d", n)
								assert.Empty(t, restored.Failures, "op %d", n)
							}
							for p, body := range orphans {
								got, err := afero.ReadFile(base, p)
								require.NoError(t, err, "op %d: quarantined %s could not be restored", n, p)
								assert.Equal(t, body, string(got), "op %d", n)
							}
						} else {
							for p, body := range orphans {
								if got, err := afero.ReadFile(base, p); err == nil {
									assert.Equal(t, body, string(got), "op %d: a surviving orphan changed", n)
								} else {
									assert.ErrorIs(t, err, os.ErrNotExist)
								}
							}
						}
						if !fired {
							assert.Greater(t, n, 3, "Apply made too few operations to fail")
							return
						}
					}
				})
			}
		})
	}
}

// TestPurgeUnderFaults fails the Nth operation of Purge, for every N:
// nothing outside the quarantine run is touched, a stray file inside it is
// never deleted, and a run whose purge failed can be purged again.
func TestPurgeUnderFaults(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for n := 1; ; n++ {
				base, _ := b.New(t)
				storagetest.WriteFile(t, base, "pics/ref.jpg", []byte("ref"), now.Add(-10*day))
				for _, p := range []string{"pics/o1.jpg", "pics/o2.jpg", "other/o3.jpg"} {
					storagetest.WriteFile(t, base, p, []byte(p), now.Add(-10*day))
				}
				f := orphan.New(base, orphan.Paths("pics/ref.jpg", "other/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash"})
				plan, err := f.Find(t.Context())
				require.NoError(t, err)
				rep, err := f.Apply(t.Context(), plan)
				require.NoError(t, err)
				stray := "trash/.mediaclean-quarantine/" + rep.QuarantineRun + "/pics/stray.jpg"
				storagetest.WriteFile(t, base, stray, []byte("not ours"), time.Time{})

				ffs := storagetest.NewFaultFs(base, storagetest.Fault{N: n})
				later := func(fsys afero.Fs) *orphan.Quarantine {
					return orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: func() time.Time { return now.Add(40 * day) }})
				}
				prep, _ := later(ffs).Purge(t.Context(), 30*day)
				purged := prep.Runs
				fired := ffs.Fired() > 0

				left := storagetest.Files(t, base)
				assert.Contains(t, left, "pics/ref.jpg", "op %d", n)
				assert.Contains(t, left, stray, "op %d: a file the manifest does not list was purged", n)
				if fired && len(purged) == 0 {
					// The run stays purgeable: a second purge without faults finishes it.
					again, err := later(base).Purge(t.Context(), 30*day)
					require.NoError(t, err, "op %d", n)
					assert.Empty(t, again.Failures, "op %d", n)
					assert.Equal(t, []string{rep.QuarantineRun}, again.Runs, "op %d", n)
				}
				if !fired {
					assert.Equal(t, []string{rep.QuarantineRun}, purged)
					assert.Equal(t, []string{"pics/ref.jpg", stray}, storagetest.Files(t, base))
					return
				}
			}
		})
	}
}

// TestFindMeasuresWhatChangedSinceListing: on RootFs, Find lists names and
// stats the unreferenced files only after the references are in. A provider
// that changes storage while it streams (deterministically, between the
// listing and the stats) shows that what the stats see wins: a file that
// went is not planned, a file rewritten is young, a file turned into a
// directory or a link is not regular. A failing stat gives no plan.
func TestFindMeasuresWhatChangedSinceListing(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	for _, p := range []string{"a/gone.jpg", "a/rewritten.jpg", "a/now-dir.jpg", "a/now-link.jpg", "a/orphan.jpg", "a/ref.jpg"} {
		put(t, rfs, p, 10, 10*day)
	}
	var listed bool
	refs := orphan.ProviderFunc(func(_ context.Context, fn func(string) error) error {
		listed = true
		require.NoError(t, rfs.Remove("a/gone.jpg"))
		put(t, rfs, "a/rewritten.jpg", 20, time.Minute)
		require.NoError(t, rfs.Remove("a/now-dir.jpg"))
		require.NoError(t, rfs.Mkdir("a/now-dir.jpg", 0o755))
		require.NoError(t, rfs.Remove("a/now-link.jpg"))
		require.NoError(t, os.Symlink("/etc/hostname", filepath.Join(rfs.Root().Name(), "a", "now-link.jpg")))
		return fn("a/ref.jpg")
	})
	spy := storagetest.NewSpyFs(rfs)
	plan, err := orphan.New(spy, refs, orphan.Options{Now: clock, MaxFraction: -1}).Find(t.Context())
	require.NoError(t, err)
	require.True(t, listed)
	assert.Equal(t, []orphan.Orphan{{Path: "a/orphan.jpg", Size: 10, ModTime: now.Add(-10 * day)}}, normalise(plan.Orphans))
	assert.Equal(t, storage.Count{Files: 1}, plan.Kept[orphan.KeptChanged], "gone since listed")
	assert.Equal(t, storage.Count{Files: 1, Bytes: 20}, plan.Kept[orphan.KeptYoung], "rewritten since listed")
	assert.Equal(t, storage.Count{Files: 2}, plan.Kept[orphan.KeptNotRegular], "a directory and a link since listed")
	assert.Equal(t, storage.Count{Files: 1}, plan.Kept[orphan.KeptReferenced])
	assert.Equal(t, 4, plan.Unmeasured, "the referenced file was never stat'ed; the gone and the irregular have no size")
	var stats []string
	for _, op := range spy.Ops() {
		if op.Kind == storagetest.OpStat {
			stats = append(stats, op.Path)
		}
	}
	assert.NotContains(t, stats, "a/ref.jpg", "a referenced file was stat'ed")
	assert.Len(t, stats, 5)

	// A stat that fails (EIO, say) leaves no plan: fail closed.
	put(t, rfs, "a/gone.jpg", 10, 10*day)
	ffs := storagetest.NewFaultFs(rfs, storagetest.Fault{N: 1, Kind: storagetest.OpStat})
	plan, err = orphan.New(ffs, orphan.Paths("a/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1}).Find(t.Context())
	assert.ErrorIs(t, err, syscall.ENOSPC)
	assert.Nil(t, plan)
	assert.Equal(t, 1, ffs.Fired())
}

// TestApplyRechecksEachBatchJustBeforeIt: on a local disk, Apply checks
// each file just before acting on it (RootFs, in the stat before the
// unlink), with no listing of the tree. A file rewritten while an earlier batch is being
// deleted is kept: the OnEvent hook rewrites the last file when the first
// one goes, which is 1,000 files (one batch) earlier.
func TestApplyRechecksEachBatchJustBeforeIt(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	const n = 1001
	for i := range n {
		put(t, rfs, fmt.Sprintf("pics/%d/%04d.jpg", i%10, i), 10, 10*day)
	}
	for i := range 50 {
		put(t, rfs, fmt.Sprintf("kept/%02d.jpg", i), 10, 10*day)
	}
	refs := []string{"pics/0/referenced.jpg"}
	for i := range 50 {
		refs = append(refs, fmt.Sprintf("kept/%02d.jpg", i))
	}
	spy := storagetest.NewSpyFs(rfs)
	var last string
	rewritten := false
	f := orphan.New(spy, orphan.Paths(refs...), orphan.Options{Now: clock, MaxFraction: -1, OnEvent: func(e orphan.Event) {
		if e.Action == "delete" && !rewritten {
			rewritten = true
			put(t, rfs, last, 11, 10*day) // another size
		}
	}})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, n)
	last = plan.Orphans[n-1].Path
	spy.Reset(storagetest.Fault{})
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	assert.Equal(t, n-1, rep.Deleted.Files)
	assert.Equal(t, 1, rep.Kept[orphan.KeptChanged].Files, "the file rewritten during the first batch")
	_, err = rfs.Stat(last)
	assert.NoError(t, err)
	stats := 0
	for _, op := range spy.Ops() {
		assert.NotEqual(t, storagetest.OpList, op.Kind, "Apply listed the tree")
		if op.Kind == storagetest.OpStat {
			stats++
			assert.True(t, strings.HasPrefix(op.Path, "pics/"), "stat of %s, not in the plan", op.Path)
		}
	}
	// RootFs checks each file's size and time in the stat it makes just
	// before unlinking it (Features.ChecksOnRemove): no stat beforehand.
	require.True(t, rfs.Features().ChecksOnRemove)
	assert.Equal(t, 0, stats)
}

// TestApplyRechecksEachBatchOnS3: on S3 each batch is re-checked against a
// listing of its key range taken just before it, so an object rewritten
// while the first batch is deleted is kept, at one listing request per
// batch.
func TestApplyRechecksEachBatchOnS3(t *testing.T) {
	t.Parallel()
	fsys := s3test.Shared(t).Fs(t, "")
	const n = 1001
	for i := range n {
		put(t, fsys, fmt.Sprintf("pics/%04d.jpg", i), 10, 10*day)
	}
	var last string
	rewritten := false
	f := orphan.New(fsys, orphan.Paths("pics/none.jpg"), orphan.Options{Now: clock, MinAge: -1, MaxFraction: -1, OnEvent: func(e orphan.Event) {
		if e.Action == "delete" && !rewritten {
			rewritten = true
			put(t, fsys, last, 11, 0) // another size, a new LastModified
		}
	}})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, n)
	last = plan.Orphans[n-1].Path
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	assert.Equal(t, n-1, rep.Deleted.Files)
	assert.Equal(t, 1, rep.Kept[orphan.KeptChanged].Files, "the object rewritten during the first batch")
	_, err = fsys.Stat(last)
	assert.NoError(t, err)
}
