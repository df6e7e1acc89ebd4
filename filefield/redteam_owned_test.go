package filefield_test

import (
	"context"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// From a review of e259b6a, which found the docs still naming "Claim,
// then Add" for integrations. An integration's Claim + AddClaimed gives
// the handler's upload back when the transaction rolls back, so a retry
// keeps it; so does an application's own Add of an upload made in no
// scope (until session 13 the scope owned it and deleted it, and a
// retried transaction wrote a row with a deleted file).
func TestClaimThenAddClaimedGivesBackAndSoDoesAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	ch, err := f.Save(ctx, upload("new")) // the handler's upload, no scope
	require.NoError(t, err)

	// Attempt 1: an integration sees a statement write ch.New and takes
	// it in; the transaction rolls back (a unique index broke).
	_, s1 := filefield.NewScope(ctx)
	c := f.Claim(ch.New)
	require.Same(t, ch, c)
	require.NoError(t, s1.AddClaimed(c))
	r := s1.Rollback(ctx)
	assert.Equal(t, []filefield.Kept{{Path: ch.New, Reason: filefield.KeptGivenBack}}, r.Kept)

	// Attempt 2, the retry, writes the same path and commits.
	_, s2 := filefield.NewScope(ctx)
	require.NoError(t, s2.AddClaimed(f.Claim(ch.New)))
	s2.Commit(ctx)
	assert.Contains(t, files(t, fsys), ch.New, "the retry's committed row points at a deleted file")

	// The application's own Add of an upload made in no scope: the same
	// rule (a retried transaction adds it again), and the maker's
	// Rollback removes it when it gives up.
	own, err := f.Save(ctx, upload("own"))
	require.NoError(t, err)
	_, s3 := filefield.NewScope(ctx)
	_, err = s3.Add(own, nil)
	require.NoError(t, err)
	assert.Equal(t, []filefield.Kept{{Path: own.New, Reason: filefield.KeptGivenBack}}, s3.Rollback(ctx).Kept)
	assert.Equal(t, []string{own.New}, own.Rollback(ctx).Deleted)
}
