package filefield_test

// Red-team tests: each asserts the safe, documented behaviour. Those that
// fail show bugs.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func rtThumb(p string) string { return "thumbs/" + p[strings.LastIndexByte(p, '/')+1:] }

// HashNames: a shared file is checked again just before its deletion, "so
// a reuse in between keeps it". A reuse that lands while Commit asks Refs
// (the database query) does keep the main file, KeptChanged, but its
// companion (thumbnail) is deleted anyway: the reusing row then shows an
// image whose thumbnail is gone.
func TestRedteamHashNamesReuseKeepsCompanions(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		var field *filefield.Field
		var reused *filefield.Change
		var once sync.Once
		refs := filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
			// While this query runs, another request uploads the same
			// bytes; its row is not committed yet.
			once.Do(func() {
				var err error
				reused, err = field.Save(ctx, upload("same"))
				require.NoError(t, err)
			})
			return false, nil
		})
		field = filefield.New("pics", fsys, filefield.Options{
			Dir: "pics", HashNames: true, Refs: refs,
			Companions: func(p string) []string { return []string{rtThumb(p)} },
		})
		first, err := field.Save(t.Context(), upload("same"))
		require.NoError(t, err)
		first.Commit(t.Context())
		require.NoError(t, fsys.MkdirAll("thumbs", 0o755))
		require.NoError(t, afero.WriteFile(fsys, rtThumb(first.New), []byte("thumb"), 0o644))
		old := time.Now().Add(-48 * time.Hour)
		require.NoError(t, fsys.Chtimes(first.New, old, old))

		del, err := field.Delete(t.Context(), first.New)
		require.NoError(t, err)
		res := del.Commit(t.Context())
		require.NotNil(t, reused)
		reused.Commit(t.Context())
		_, err = fsys.Stat(reused.New)
		assert.NoError(t, err, "the reusing upload's file is there: %+v", res)
		if reused.New == first.New {
			_, err = fsys.Stat(rtThumb(first.New))
			assert.NoError(t, err, "its thumbnail must stay too: %+v", res)
		}
	})
}

// The same, with the reuse made by another process: this one sees only
// the file's new time. The file is kept as changed, and so is its
// thumbnail.
func TestRedteamHashNamesOtherProcessReuseKeepsCompanions(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		var path string
		var once sync.Once
		refs := filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
			once.Do(func() {
				now := time.Now()
				require.NoError(t, fsys.Chtimes(path, now, now)) // another process reused it
			})
			return false, nil
		})
		field := filefield.New("pics", fsys, filefield.Options{
			Dir: "pics", HashNames: true, Refs: refs,
			Companions: func(p string) []string { return []string{rtThumb(p)} },
		})
		first, err := field.Save(t.Context(), upload("same"))
		require.NoError(t, err)
		first.Commit(t.Context())
		path = first.New
		require.NoError(t, fsys.MkdirAll("thumbs", 0o755))
		require.NoError(t, afero.WriteFile(fsys, rtThumb(first.New), []byte("thumb"), 0o644))
		old := time.Now().Add(-48 * time.Hour)
		require.NoError(t, fsys.Chtimes(first.New, old, old))
		del, err := field.Delete(t.Context(), first.New)
		require.NoError(t, err)
		res := del.Commit(t.Context())
		assert.Empty(t, res.Deleted)
		for _, p := range []string{first.New, rtThumb(first.New)} {
			_, err = fsys.Stat(p)
			assert.NoError(t, err, "%s stays: %+v", p, res)
		}
	})
}

// racyFs runs hook once, just before the first Remove of a path it
// names, as another request would at the worst moment.
type racyFs struct {
	afero.Fs
	mu   sync.Mutex
	hook func()
	on   string
}

func (r *racyFs) Remove(name string) error {
	r.mu.Lock()
	h := r.hook
	if strings.TrimPrefix(name, "/") == r.on {
		r.hook = nil
	} else {
		h = nil
	}
	r.mu.Unlock()
	if h != nil {
		h()
	}
	return r.Fs.Remove(name)
}

// HashNames: a reuse that succeeds (the upload returns the shared file's
// path, created=false, no error) must leave that file in place. Here the
// reuse lands between the deletion's re-check and the removal: the
// upload reports success, its row commits, and the file is gone.
func TestRedteamHashNamesReuseRacesDeletion(t *testing.T) {
	t.Parallel()
	fsys := &racyFs{Fs: afero.NewMemMapFs()}
	field := filefield.New("pics", fsys, filefield.Options{
		Dir: "pics", HashNames: true,
		Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, nil }),
	})
	first, err := field.Save(t.Context(), upload("same"))
	require.NoError(t, err)
	first.Commit(t.Context())
	old := time.Now().Add(-48 * time.Hour)
	require.NoError(t, fsys.Chtimes(first.New, old, old))

	var reused *filefield.Change
	fsys.on = first.New
	fsys.hook = func() {
		var err error
		reused, err = field.Save(context.Background(), upload("same"))
		require.NoError(t, err)
	}
	del, err := field.Delete(t.Context(), first.New)
	require.NoError(t, err)
	del.Commit(t.Context())
	require.NotNil(t, reused)
	if reused.New == first.New {
		reused.Commit(t.Context())
		_, err = fsys.Stat(reused.New)
		assert.NoError(t, err, "a successful reuse must find its file in place")
	}
}

// filefield's Commit of a stale path that is now a symbolic link (an
// operator deduplicated files with links) or a FIFO: the storage layer
// promises only regular files are deleted, so the link stays, on RootFs
// and on a plain OsFs alike.
func TestRedteamCommitKeepsNonRegularOld(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, dir string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "pics"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "pics", "shared.png"), png("x"), 0o644))
		require.NoError(t, os.Symlink("shared.png", filepath.Join(dir, "pics", "old.png")))
		field := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		ch, err := field.Replace(t.Context(), "pics/old.png", upload("new"))
		require.NoError(t, err)
		res := ch.Commit(t.Context())
		_, err = os.Lstat(filepath.Join(dir, "pics", "old.png"))
		assert.NoError(t, err, "a link is not a regular file: %+v", res)
	})
}

// Hostile stored paths read back from rows are refused before anything
// is stored or deleted (F7), whatever their disguise.
func TestRedteamHostileOldPaths(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		storagetest.WriteFile(t, fsys, "secret/x.png", []byte("s"), time.Time{})
		storagetest.WriteFile(t, fsys, "pics/.mediaclean-quarantine/r/pics/a.png", []byte("q"), time.Time{})
		field := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		for _, old := range []string{
			"pics/../secret/x.png", "/secret/x.png", "pics\\..\\secret\\x.png", "pics/x.png\x00", "pics/./../secret/x.png",
			"pics/.mediaclean-quarantine/r/pics/a.png", "pics2/../secret/x.png", "picsx/a.png", "pics", "pics/",
			"pics/\u202ex.png", "pics/\uff0e\uff0e/secret/x.png",
		} {
			_, err := field.Replace(t.Context(), old, upload("n"))
			assert.ErrorIs(t, err, filefield.ErrUnsafePath, "%q", old)
			_, err = field.Delete(t.Context(), old)
			assert.ErrorIs(t, err, filefield.ErrUnsafePath, "%q", old)
		}
		assert.Equal(t, []string{"pics/.mediaclean-quarantine/r/pics/a.png", "secret/x.png"}, files(t, fsys))
	})
}

// HashNames on RootFs and S3, whose renames or creates can refuse to
// replace (TestIdenticalUploadsRaceOneCreates): identical concurrent
// uploads create the file once (the others reuse it), and rolling every
// one of them back while one row may still commit deletes nothing inside
// ReuseGrace.
func TestRedteamHashNamesConcurrentIdenticalUploads(t *testing.T) {
	t.Parallel()
	atomic := []storagetest.Backend{backends[0], backends[3]}
	storagetest.ForEachBackend(t, atomic, func(t *testing.T, fsys afero.Fs, _ string) {
		field := filefield.New("pics", fsys, filefield.Options{
			Dir: "pics", HashNames: true,
			Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, nil }),
		})
		const n = 8
		changes := make([]*filefield.Change, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ch, err := field.Save(context.Background(), upload("same"))
				if err == nil {
					changes[i] = ch
				}
			})
		}
		wg.Wait()
		created := 0
		for _, ch := range changes {
			require.NotNil(t, ch)
			assert.Equal(t, changes[0].New, ch.New)
			for _, k := range ch.Rollback(t.Context()).Kept {
				if k.Reason == filefield.KeptRecentlyStored {
					created++
				}
			}
		}
		assert.Equal(t, 1, created, "one upload created the file")
		assert.Equal(t, []string{changes[0].New}, files(t, fsys))
	})
}
