package filefield_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Found by a red-team pass (it failed before the fix). The write counter is global and stamps a change at every write
// registration, in any scope: a write of a shared change's path in
// another, still open, transaction (a concurrent scope that claims the
// change: Field.Claim leaves a held change claimable) reorders the change
// inside the first scope, whose own writes did not change.
//
// In S: the row takes X (E, an upload), then A (C replaces X), then X
// again (a stale copy: E claimed again, so C's replace must not delete
// X; before 26d2b21 the re-registration moved E after C in S). Another
// transaction T, still open, writes A into another row: it claims C,
// which takes a newer number than E's. S commits with the row holding X:
// byWrite puts C after E, and C's replace deletes X.
func TestRTLastWriteInAnotherOpenScopeDoesNotReorderThisScope(t *testing.T) {
	for _, tEnds := range []string{"T still open", "T commits after S"} {
		t.Run(tEnds, func(t *testing.T) {
			fsys := afero.NewMemMapFs()
			pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
			ctx, s := filefield.NewScope(t.Context())
			e, err := pics.Save(ctx, upload("x")) // row = X
			require.NoError(t, err)
			c, err := pics.Replace(ctx, e.New, upload("a")) // row = A
			require.NoError(t, err)
			// row = X again (a stale copy saved): E claimed into S again
			got := pics.Claim(e.New)
			require.Same(t, e, got)
			_, err = s.Add(got, nil)
			require.NoError(t, err)

			// another transaction writes A into another row, and stays open
			tctx, tscope := filefield.NewScope(context.Background())
			got = pics.Claim(c.New)
			require.Same(t, c, got)
			_, err = tscope.Add(got, nil)
			require.NoError(t, err)

			res := s.Commit(ctx) // S's row holds X
			assert.Contains(t, files(t, fsys), e.New, "S's committed row holds X; S's result %+v", res)
			if tEnds == "T commits after S" {
				tscope.Commit(tctx)
				assert.Contains(t, files(t, fsys), e.New)
				assert.Contains(t, files(t, fsys), c.New, "T's row holds A")
			}
		})
	}
}

// CheckRefs: the old file goes only if every checker added says no row
// holds it; an error keeps it too.
func TestCheckRefsKeepsWhatARowHolds(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	no := filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, nil })
	yes := filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return true, nil })
	broken := filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, errors.New("db down") })
	for _, tc := range []struct {
		checks []filefield.RefChecker
		kept   string
	}{
		{nil, ""},
		{[]filefield.RefChecker{no}, ""},
		{[]filefield.RefChecker{no, yes}, filefield.KeptReferenced},
		{[]filefield.RefChecker{yes, no}, filefield.KeptReferenced},
		{[]filefield.RefChecker{no, broken}, filefield.KeptCheckFailed},
	} {
		old, err := pics.Save(t.Context(), upload("old"))
		require.NoError(t, err)
		old.Commit(t.Context())
		ch, err := pics.Replace(t.Context(), old.New, upload("new"))
		require.NoError(t, err)
		for _, c := range tc.checks {
			ch.CheckRefs(c)
		}
		res := ch.Commit(t.Context())
		if tc.kept == "" {
			assert.Equal(t, []string{old.New}, res.Deleted)
			continue
		}
		require.Len(t, res.Kept, 1)
		assert.Equal(t, tc.kept, res.Kept[0].Reason)
		ok, _ := afero.Exists(fsys, old.New)
		assert.True(t, ok)
	}
}
