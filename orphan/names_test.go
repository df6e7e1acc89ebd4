package orphan_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// Every character a stored path may hold goes through quarantine,
// restore and purge as itself: each file holds its own name, and after
// each step every file holds what it should. On S3, a copy source that a
// server decodes "+" as a space in once moved the live "x y" into the
// trash in place of the orphan "x+y", and deleted the orphan.
func TestQuarantineMovesExactlyTheFileNamed(t *testing.T) {
	t.Parallel()
	// The names with a character that some encoding treats specially
	// (all but letters, digits, ".", "-", "_" and "/").
	var names []string
	for _, n := range storagetest.KeyNames() {
		if strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_/") != "" {
			names = append(names, n)
		}
	}
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		var refs []string
		for _, n := range names {
			put := func(p string) { storagetest.WriteFile(t, fsys, p, []byte(p), now.Add(-10*day)) }
			put("orphans/" + n)
			put("live/" + n)
			refs = append(refs, "live/"+n)
		}
		refs = append(refs, "orphans/none.jpg") // a reference into orphans/: the coverage guard is content
		holds := func(p, want string) {
			t.Helper()
			got, err := afero.ReadFile(fsys, p)
			if assert.NoError(t, err, p) {
				assert.Equal(t, want, string(got), "%q holds another file's bytes", p)
			}
		}
		f := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{Now: clock, Quarantine: "trash", MaxFraction: -1})
		plan, err := f.Find(ctx)
		require.NoError(t, err)
		require.Len(t, plan.Orphans, len(names))
		rep, err := f.Apply(ctx, plan)
		require.NoError(t, err)
		require.Equal(t, len(names), rep.Quarantined.Files)
		area := "trash/.mediaclean-quarantine/" + rep.QuarantineRun + "/"
		for _, n := range names {
			holds("live/"+n, "live/"+n)
			holds(area+"orphans/"+n, "orphans/"+n)
		}

		q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: clock})
		restored, err := q.Restore(ctx, rep.QuarantineRun)
		require.NoError(t, err)
		assert.Equal(t, len(names), restored.Restored.Files)
		for _, n := range names {
			holds("orphans/"+n, "orphans/"+n)
			holds("live/"+n, "live/"+n)
		}

		// Quarantined again, then purged: the orphans go, the live files stay.
		for _, n := range names {
			require.NoError(t, fsys.Chtimes("orphans/"+n, now.Add(-10*day), now.Add(-10*day)))
		}
		plan, err = f.Find(ctx)
		require.NoError(t, err)
		rep, err = f.Apply(ctx, plan)
		require.NoError(t, err)
		later := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{Now: func() time.Time { return now.Add(60 * day) }})
		purged, err := later.Purge(ctx, 30*day)
		require.NoError(t, err)
		assert.Contains(t, purged.Runs, rep.QuarantineRun)
		left := files(t, fsys)
		for _, n := range names {
			assert.True(t, slices.Contains(left, "live/"+n), "live/%s was purged", n)
			holds("live/"+n, "live/"+n)
			assert.False(t, slices.Contains(left, "orphans/"+n), "orphans/%s is back", n)
		}
	})
}
