package sqlrefs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

// A query that returns no path while another returns some fails the run,
// naming the query, after the counts are recorded: rows of NULL or empty
// values count as none. AllowEmpty lets it through, and a run in which
// every query is empty is left to the Finder's empty-set guard.
func TestEmptyQueryBesideOthersFails(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	_, err := db.Exec(`CREATE TABLE receipts (scan TEXT); INSERT INTO receipts VALUES (NULL), ('')`)
	require.NoError(t, err)
	for _, q := range []string{"SELECT scan FROM receipts", "SELECT picture FROM users WHERE 0"} {
		p := sqlrefs.New(db, "SELECT picture FROM users", q, "SELECT signature FROM users")
		got, err := collect(t.Context(), p)
		require.ErrorIs(t, err, sqlrefs.ErrEmptyQuery, q)
		assert.Contains(t, err.Error(), q)
		assert.ElementsMatch(t, []string{"a.jpg", "b.jpg", "s.png"}, got, "every query was read")
		assert.Equal(t, []int{2, 0, 1}, p.Counts())

		p = sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, "SELECT picture FROM users", q)
		got, err = collect(t.Context(), p)
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"a.jpg", "b.jpg"}, got)
	}
	got, err := collect(t.Context(), sqlrefs.New(db, "SELECT scan FROM receipts", "SELECT picture FROM users WHERE 0"))
	require.NoError(t, err, "all empty: the Finder's guard decides")
	assert.Empty(t, got)
}

// The queries are copied: a caller's later change to its slice changes
// nothing.
func TestQueriesAreCopied(t *testing.T) {
	t.Parallel()
	qs := []string{"SELECT picture FROM users", "SELECT signature FROM users"}
	p := sqlrefs.New(openDB(t), qs...)
	qs[1] = "SELECT picture FROM users WHERE 0"
	_, err := collect(t.Context(), p)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 1}, p.Counts())
}

// End to end: a second query on the wrong column (every value NULL) would
// leave the signatures looking unreferenced. They share a directory with
// referenced files, so the coverage guard sees nothing, and they are
// under the fraction limit; the empty query alone refuses the run, on a
// disk and in memory, in hash and merge mode, and nothing is deleted.
func TestEmptyQueryDeletesNothing(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	_, err := db.Exec(`CREATE TABLE docs (signature TEXT, file TEXT)`)
	require.NoError(t, err)
	for i := range 10 {
		_, err := db.Exec(`INSERT INTO docs VALUES (NULL, ?)`, "media/f"+string(rune('a'+i))+".pdf")
		require.NoError(t, err)
	}
	old := time.Now().Add(-30 * 24 * time.Hour)
	root, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	for name, fsys := range map[string]afero.Fs{"disk": root, "mem": afero.NewMemMapFs()} {
		var files []string
		for i := range 10 {
			files = append(files, "media/f"+string(rune('a'+i))+".pdf")
		}
		files = append(files, "media/sig1.png", "media/sig2.png")
		require.NoError(t, fsys.MkdirAll("media", 0o755))
		for _, f := range files {
			require.NoError(t, afero.WriteFile(fsys, f, []byte("x"), 0o644))
			require.NoError(t, fsys.Chtimes(f, old, old))
		}
		for _, merge := range []bool{false, true} {
			refs := sqlrefs.New(db, "SELECT file FROM docs", "SELECT signature FROM docs")
			f := orphan.New(fsys, refs, orphan.Options{Merge: merge, TempDir: t.TempDir()})
			_, err := f.Find(t.Context())
			require.ErrorIs(t, err, orphan.ErrProvider, name)
			require.ErrorIs(t, err, sqlrefs.ErrEmptyQuery, name)
			_, err = f.Apply(t.Context(), &orphan.Plan{Orphans: []orphan.Orphan{{Path: "media/sig1.png", Size: 1, ModTime: old}}})
			require.True(t, errors.Is(err, orphan.ErrProvider) || errors.Is(err, orphan.ErrInvalidPlan), "%s: %v", name, err)
			for _, p := range files {
				ok, err := afero.Exists(fsys, p)
				require.NoError(t, err)
				assert.True(t, ok, "%s merge=%v: %s kept", name, merge, p)
			}
			// Allowed, the signatures are orphans, as the operator chose.
			refs = sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, "SELECT file FROM docs", "SELECT signature FROM docs")
			plan, err := orphan.New(fsys, refs, orphan.Options{Merge: merge, TempDir: t.TempDir()}).Find(t.Context())
			require.NoError(t, err)
			require.Len(t, plan.Orphans, 2, name)
		}
	}
}
