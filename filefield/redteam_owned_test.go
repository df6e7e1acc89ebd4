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
// then Add" for integrations while Add now makes a scope own the change.
// The docs now name Scope.AddClaimed; this test holds both contracts: an
// integration's Claim + AddClaimed gives the handler's upload back when
// the transaction rolls back, so a retry keeps it; an application's own
// Add makes the scope own it, and its rollback removes it.
func TestClaimThenAddClaimedGivesBackAndAddOwns(t *testing.T) {
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

	// The application's own Add: the scope owns the upload.
	own, err := f.Save(ctx, upload("own"))
	require.NoError(t, err)
	_, s3 := filefield.NewScope(ctx)
	_, err = s3.Add(own, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{own.New}, s3.Rollback(ctx).Deleted)
}
