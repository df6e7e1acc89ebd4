package filefield_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// refsFromDB answers from the users table, as an application's checker
// would.
func refsFromDB(db *sql.DB) filefield.RefChecker {
	return filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE picture = ?`, p).Scan(&n)
		return n > 0, err
	})
}

// Request A stores bytes and keeps its transaction open; request B stores
// the same bytes, gets the same path and commits its row; A rolls back.
// The rollback must not delete the file B's committed row uses.
func TestHashNamesRollbackKeepsAFileACommittedRowUses(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		db := openDB(t)
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true, Refs: refsFromDB(db)})
		a, err := f.Save(ctx, upload("same"))
		require.NoError(t, err)
		b, err := setPicture(ctx, db, f, "same", func(*sql.Tx) error { return nil })
		require.NoError(t, err)
		require.Equal(t, a.New, b)
		res := a.Rollback(ctx)
		assert.Empty(t, res.Deleted)
		assert.Equal(t, []string{b}, files(t, fsys), "B's row points at a file that is there")
		assert.Equal(t, string(png("same")), read(t, fsys, b))
	})
}

// A new upload whose bytes equal an old unreferenced file reuses it; the
// file's age must start again, or the orphan finder's grace period (and
// any age rule) would delete it while the new row's transaction is open.
func TestHashNamesReuseRenewsTheFileAge(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		hashReuseRenewsAge(t, fsys, fsys)
	})
	t.Run("S3 without settable times", func(t *testing.T) {
		t.Parallel()
		back := s3test.Shared(t).Fs(t, "")
		// The raw s3fs.Fs cannot set times: reuse stores the bytes again.
		hashReuseRenewsAge(t, back, back.Fs)
	})
}

// hashReuseRenewsAge stores through fsys and back-dates through backdate
// (the same backend, or one that can set times on it). A file written
// less than half of ReuseGrace ago is reused and made young again; an
// older one is left as it is, and the upload gets a name of its own: a
// deletion, in this process or another, may be about to delete it, and
// on an object store a rewrite of the same bytes keeps the ETag that
// the deletion is conditional on.
func hashReuseRenewsAge(t *testing.T, backdate, fsys afero.Fs) {
	ctx := t.Context()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true})
	first, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	recent := time.Now().Add(-filefield.DefaultReuseGrace/2 + time.Hour)
	require.NoError(t, backdate.Chtimes(first.New, recent, recent))

	again, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	require.Equal(t, first.New, again.New)
	fi, err := fsys.Stat(again.New)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), fi.ModTime(), time.Minute, "a reused file is young again")

	// The orphan finder, run while the row that reuses it has not
	// committed, does not plan it.
	plan, err := orphan.New(fsys, orphan.Paths("pics/other.png"), orphan.Options{}).Find(ctx)
	require.NoError(t, err)
	assert.Empty(t, plan.Orphans)
	assert.Equal(t, string(png("same")), read(t, fsys, again.New))

	old := time.Now().Add(-filefield.DefaultReuseGrace/2 - time.Hour)
	require.NoError(t, backdate.Chtimes(first.New, old, old))
	third, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	require.NotEqual(t, first.New, third.New, "a file older than half of ReuseGrace is not reused")
	assert.Equal(t, string(png("same")), read(t, fsys, third.New))
	fi, err = fsys.Stat(first.New)
	require.NoError(t, err)
	assert.WithinDuration(t, old, fi.ModTime(), time.Second, "the old file is left as it is")
}

// Identical uploads racing: exactly one of them creates the file, on
// backends whose renames (RootFs) or creates (S3) can refuse to replace.
func TestIdenticalUploadsRaceOneCreates(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		if b.Name != "RootFs" && b.Name != "S3" {
			continue // no atomic create-only rename or write there
		}
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := b.New(t)
			for round := range 5 {
				var mu sync.Mutex
				stores := 0
				f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true, OnEvent: func(e filefield.Event) {
					if e.Action == filefield.ActionStore {
						mu.Lock()
						stores++
						mu.Unlock()
					}
				}})
				tag := "race" + string(rune('a'+round))
				var wg sync.WaitGroup
				paths := make([]string, 8)
				for i := range paths {
					wg.Go(func() {
						ch, err := f.Save(t.Context(), upload(tag))
						if assert.NoError(t, err) {
							paths[i] = ch.New
						}
					})
				}
				wg.Wait()
				assert.Equal(t, 1, stores, "exactly one upload created the file")
				for _, p := range paths {
					assert.Equal(t, paths[0], p)
				}
				// No loser removed the winner's file: every row would
				// point at it.
				assert.Equal(t, string(png(tag)), read(t, fsys, paths[0]))
			}
		})
	}
}

// With HashNames, a replace whose old file another row shares keeps it;
// one that no row uses goes once it is older than ReuseGrace, and a
// recently stored one stays for the orphan finder.
func TestHashNamesDeleteOnlyUnsharedOldFiles(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		db := openDB(t)
		_, err := db.Exec(`INSERT INTO users (id, picture) VALUES (2, '')`)
		require.NoError(t, err)
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true, Refs: refsFromDB(db)})
		shared, err := setPicture(ctx, db, f, "shared", func(*sql.Tx) error { return nil })
		require.NoError(t, err)
		_, err = db.Exec(`UPDATE users SET picture = ? WHERE id = 2`, shared)
		require.NoError(t, err)
		old := time.Now().Add(-48 * time.Hour)
		require.NoError(t, fsys.Chtimes(shared, old, old))

		// User 1 moves on; user 2 still uses the file.
		_, err = setPicture(ctx, db, f, "mine", func(*sql.Tx) error { return nil })
		require.NoError(t, err)
		assert.Contains(t, files(t, fsys), shared)

		// User 2 moves on too: nothing uses it, and it is old: it goes.
		_, err = db.Exec(`UPDATE users SET picture = '' WHERE id = 2`)
		require.NoError(t, err)
		ch, err := f.Delete(ctx, shared)
		require.NoError(t, err)
		assert.Equal(t, []string{shared}, ch.Commit(ctx).Deleted)

		// A file stored a moment ago is kept, whatever Refs says.
		recent, err := f.Save(ctx, upload("recent"))
		require.NoError(t, err)
		del, err := f.Delete(ctx, recent.New)
		require.NoError(t, err)
		res := del.Commit(ctx)
		require.Len(t, res.Kept, 1)
		assert.Equal(t, filefield.KeptRecentlyStored, res.Kept[0].Reason)

		// Without Refs a shared file is never deleted.
		noRefs := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true})
		require.NoError(t, fsys.Chtimes(recent.New, old, old))
		del, err = noRefs.Delete(ctx, recent.New)
		require.NoError(t, err)
		res = del.Commit(ctx)
		require.Len(t, res.Kept, 1)
		assert.Equal(t, filefield.KeptShared, res.Kept[0].Reason)
		_, err = fsys.Stat(recent.New)
		assert.NoError(t, err)
	})
}
