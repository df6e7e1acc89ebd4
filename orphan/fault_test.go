package orphan_test

import (
	"os"
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
		for name, newFs := range map[string]func(t *testing.T) afero.Fs{
			"MemMapFs": func(*testing.T) afero.Fs { return afero.NewMemMapFs() },
			"RootFs": func(t *testing.T) afero.Fs {
				rfs, err := storage.NewRootFs(t.TempDir())
				require.NoError(t, err)
				t.Cleanup(func() { rfs.Close() })
				return rfs
			},
		} {
			mode := map[bool]string{false: "delete", true: "quarantine"}[quarantine]
			t.Run(mode+"/"+name, func(t *testing.T) {
				t.Parallel()
				for n := 1; ; n++ {
					base := newFs(t)
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
					f := orphan.New(ffs, orphan.Paths("pics/ref.jpg"), opts)
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
							_, fails, err := f.Restore(t.Context(), rep.QuarantineRun)
							require.NoError(t, err, "op %d", n)
							for _, fl := range fails {
								// A file the manifest lists but that never moved is
								// still at its path.
								assert.Equal(t, "path is taken", fl.Error, "op %d: %+v", n, fl)
							}
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
	}
}

// TestPurgeUnderFaults fails the Nth operation of Purge, for every N:
// nothing outside the quarantine run is touched, a stray file inside it is
// never deleted, and a run whose purge failed can be purged again.
func TestPurgeUnderFaults(t *testing.T) {
	t.Parallel()
	for n := 1; ; n++ {
		base := afero.NewMemMapFs()
		storagetest.WriteFile(t, base, "pics/ref.jpg", []byte("ref"), now.Add(-10*day))
		for _, p := range []string{"pics/o1.jpg", "pics/o2.jpg", "other/o3.jpg"} {
			storagetest.WriteFile(t, base, p, []byte(p), now.Add(-10*day))
		}
		f := orphan.New(base, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash"})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		stray := "trash/" + rep.QuarantineRun + "/pics/stray.jpg"
		storagetest.WriteFile(t, base, stray, []byte("not ours"), time.Time{})

		ffs := storagetest.NewFaultFs(base, storagetest.Fault{N: n})
		later := orphan.New(ffs, orphan.Paths("x"), orphan.Options{Quarantine: "trash", Now: func() time.Time { return now.Add(40 * day) }})
		purged, _, _ := later.Purge(t.Context(), 30*day)
		fired := ffs.Fired() > 0

		left := storagetest.Files(t, base)
		assert.Contains(t, left, "pics/ref.jpg", "op %d", n)
		assert.Contains(t, left, stray, "op %d: a file the manifest does not list was purged", n)
		if fired && len(purged) == 0 {
			// The run stays purgeable: a second purge without faults finishes it.
			purged, fails, err := orphan.New(base, orphan.Paths("x"), orphan.Options{Quarantine: "trash", Now: func() time.Time { return now.Add(40 * day) }}).Purge(t.Context(), 30*day)
			require.NoError(t, err, "op %d", n)
			assert.Empty(t, fails, "op %d", n)
			assert.Equal(t, []string{rep.QuarantineRun}, purged, "op %d", n)
		}
		if !fired {
			assert.Equal(t, []string{rep.QuarantineRun}, purged)
			assert.Equal(t, []string{"pics/ref.jpg", stray}, storagetest.Files(t, base))
			return
		}
	}
}
