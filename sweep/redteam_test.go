//go:build unix

package sweep_test

// Red-team tests: each asserts the safe, documented behaviour. Those that
// fail show bugs.

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// S4: "Only regular files are removed: never a symbolic link's target, a
// directory, ..., a FIFO, a socket or a device." Between the listing and
// the removal (here, while Options.Refs is asked, just before), the old
// QR code is replaced by a link to a live avatar, another by a FIFO. The
// sweep must remove neither entry (nor, of course, the avatar).
func TestRedteamSweepSwapToSpecialFileBeforeRemoval(t *testing.T) {
	t.Parallel()
	for _, b := range backends[:2] {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := b.New(t)
			old := time.Now().Add(-30 * 24 * time.Hour)
			for _, p := range []string{"qr_codes/1/a.png", "qr_codes/2/b.png", "profile_pics/live.jpg"} {
				require.NoError(t, fsys.MkdirAll(path.Dir(p), 0o755))
				require.NoError(t, afero.WriteFile(fsys, p, []byte("x"), 0o644))
				require.NoError(t, fsys.Chtimes(p, old, old))
			}
			refs := filefield.RefCheckerFunc(func(_ context.Context, p string) (bool, error) {
				full := filepath.Join(dir, filepath.FromSlash(p))
				require.NoError(t, os.Remove(full))
				if strings.HasSuffix(p, "a.png") {
					require.NoError(t, os.Symlink("../../profile_pics/live.jpg", full))
				} else {
					require.NoError(t, syscall.Mkfifo(full, 0o644))
				}
				return false, nil
			})
			rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 24 * time.Hour}}, Refs: refs}).Sweep(t.Context())
			require.NoError(t, err)
			for _, p := range []string{"qr_codes/1/a.png", "qr_codes/2/b.png"} {
				_, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
				assert.NoError(t, err, "%s is no longer a regular file and must stay: %+v", p, rep)
			}
			_, err = os.Stat(filepath.Join(dir, "profile_pics", "live.jpg"))
			assert.NoError(t, err)
		})
	}
}

// On an object store (Features.AtomicCreate) filefield never writes temp
// names, so an old ".mediaclean-tmp-<hex>" key is someone else's: a sweep,
// even with a rule matching everything, keeps it. It runs on the real S3
// backend and on a MemMapFs that says it is an object store; the other
// backends clean old temp names up (TestSweepRules).
func TestRedteamSweepTempNamesOnObjectStores(t *testing.T) {
	t.Parallel()
	objectStores := []storagetest.Backend{
		{Name: "MemMapFs-as-object-store", New: func(*testing.T) (afero.Fs, string) { return objectStoreLike{afero.NewMemMapFs()}, "" }},
		backends[3],
	}
	storagetest.ForEachBackend(t, objectStores, func(t *testing.T, fsys afero.Fs, _ string) {
		require.True(t, storage.FeaturesOf(fsys).AtomicCreate)
		old := time.Now().Add(-30 * 24 * time.Hour)
		for _, p := range []string{"up/" + storage.TempPrefix + strings.Repeat("ab", 16), storage.TempPrefix + strings.Repeat("cd", 16), "up/x.png"} {
			require.NoError(t, fsys.MkdirAll(path.Dir(p), 0o755))
			require.NoError(t, afero.WriteFile(fsys, p, []byte("x"), 0o644))
			require.NoError(t, fsys.Chtimes(p, old, old))
		}
		rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: time.Hour}}, TempMaxAge: time.Minute}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files, "%+v", rep)
		for _, p := range []string{"up/" + storage.TempPrefix + strings.Repeat("ab", 16), storage.TempPrefix + strings.Repeat("cd", 16)} {
			_, err := fsys.Stat(p)
			assert.NoError(t, err, p)
		}
	})
}

type objectStoreLike struct{ afero.Fs }

func (objectStoreLike) Features() storage.Features {
	return storage.Features{AtomicCreate: true}
}

// RemoveEmptyDirs never removes Options.Dir, the root, a quarantine
// area, or a directory beside Dir sharing its prefix. Not on S3: an
// object store has no directories, empty or not, to keep.
func TestRedteamSweepEmptyDirsNearRootAndQuarantine(t *testing.T) {
	t.Parallel()
	for _, b := range backends[:3] {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := b.New(t)
			old := time.Now().Add(-30 * 24 * time.Hour)
			for _, p := range []string{"qr/1/a.png", "qr2/b.png", "qr/.mediaclean-quarantine/r/manifest.json"} {
				require.NoError(t, fsys.MkdirAll(path.Dir(p), 0o755))
				require.NoError(t, afero.WriteFile(fsys, p, []byte("x"), 0o644))
				require.NoError(t, fsys.Chtimes(p, old, old))
			}
			require.NoError(t, fsys.MkdirAll("qr/.mediaclean-quarantine/empty-run", 0o755))
			require.NoError(t, fsys.Remove("qr/.mediaclean-quarantine/r/manifest.json"))
			_, err := sweep.New(fsys, sweep.Options{Dir: "qr", RemoveEmptyDirs: true, Rules: []sweep.Rule{{Glob: "**", MaxAge: time.Hour}}}).Sweep(t.Context())
			require.NoError(t, err)
			for _, d := range []string{"qr", "qr2", "qr/.mediaclean-quarantine/r", "qr/.mediaclean-quarantine/empty-run"} {
				fi, err := fsys.Stat(d)
				if assert.NoError(t, err, d) {
					assert.True(t, fi.IsDir(), d)
				}
			}
			_, err = fsys.Stat("qr2/b.png")
			assert.NoError(t, err)
		})
	}
}
