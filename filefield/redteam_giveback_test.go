package filefield_test

// Red team of 2257f5c (borrowed changes given back by a scope that rolls
// back). Each test fails on 2257f5c for the reason its comment gives.

import (
	"context"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Loss. A borrowed change is held by the scope that claimed it, but it is
// off the field's list (Claim removed it before borrowing it), so a
// second transaction that writes the same path cannot claim it: Claim
// returns nil, unlike for a change its maker's scope holds, which "stays
// claimable" (Options.PendingTimeout, Field.Claim). The second
// transaction commits a row holding the path and finishes nothing. The
// first one rolls back and gives the change back, pending; the maker then
// gives up on it as the README says ("The handler rolls it back if it
// gives up"), and the file of the committed row is deleted.
//
// In integration terms: the handler's upload (no scope), its update in
// gorm's default transaction (claimed, borrowed) whose after-hook fails;
// meanwhile another request (double submit, a copy of the path into
// another row) commits the path on another connection.
func TestRTGiveBackBorrowedUploadInvisibleToConcurrentWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	ch, err := f.Save(ctx, upload("new")) // the handler's upload, no scope
	require.NoError(t, err)

	// Transaction 1 writes ch.New into row 1; its integration claims it.
	_, s1 := filefield.NewScope(ctx)
	c := f.Claim(ch.New)
	require.Same(t, ch, c)
	err = s1.AddClaimed(c)
	require.NoError(t, err)

	// Transaction 2 writes ch.New into row 2 and commits; its integration
	// claims what it can.
	_, s2 := filefield.NewScope(ctx)
	c2 := f.Claim(ch.New)
	if c2 != nil {
		err = s2.AddClaimed(c2)
		require.NoError(t, err)
	}
	s2.Commit(ctx) // row 2 holds ch.New, committed

	s1.Rollback(ctx) // transaction 1 rolled back: the upload is given back
	ch.Rollback(ctx) // the handler gives up on it, as documented
	assert.Contains(t, files(t, fsys), ch.New,
		"a committed row (transaction 2) points at a deleted file; Claim in transaction 2 returned %v", c2)
}

// Loss. The maker commits its own row (plain SQL, no integration) and
// calls ch.Commit; another transaction's statement had written the same
// path and claimed (borrowed) the change, so the Commit is only recorded
// as a wish (asked == committed). That transaction rolls back: giveBack
// puts the change back pending and ignores the Commit wish (it only looks
// at asked == rolledBack). The maker's deferred Rollback then deletes the
// new file, although "a rollback after a commit does nothing" (README,
// Change doc: "the first one counts").
func TestRTGiveBackForgetsMakersCommitWish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	old := seedRow(t, f)
	ch, err := f.Replace(ctx, old, upload("new")) // the handler's upload, no scope
	require.NoError(t, err)

	// Another transaction writes ch.New into a row; its integration claims it.
	_, other := filefield.NewScope(ctx)
	err = other.AddClaimed(f.Claim(ch.New))
	require.NoError(t, err)

	// The handler's own transaction (no integration) commits its row with
	// ch.New; the handler commits the change.
	assert.Equal(t, filefield.Result{}, ch.Commit(ctx), "only a wish: the other scope holds it")

	other.Rollback(ctx) // the other transaction rolled back: given back
	ch.Rollback(ctx)    // the handler's deferred Rollback, after its Commit
	assert.Contains(t, files(t, fsys), ch.New, "the handler's committed row points at a deleted file")
}

// The handler stores its upload before the transaction (no scope) and
// registers it in the transaction's scope once the row is written
// (Scope.Add), after the integration had claimed it when the statement
// wrote the path. The transaction rolls back: the upload goes back to
// its maker, pending (a retry may write it again), and the maker's
// Rollback, when it gives up, deletes it; nothing stays on the list.
func TestRTGiveBackMakerAddedUploadGoesBackToItsMaker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	ch, err := f.Save(ctx, upload("new"))
	require.NoError(t, err)

	sctx, s := filefield.NewScope(ctx)
	err = s.AddClaimed(f.Claim(ch.New)) // the statement wrote ch.New
	require.NoError(t, err)
	_, err = s.Add(ch, nil) // the handler registers its upload in its scope
	require.NoError(t, err)
	r := s.Rollback(sctx)
	assert.Equal(t, []filefield.Kept{{Path: ch.New, Reason: filefield.KeptGivenBack}}, r.Kept, "%+v", r)
	assert.Contains(t, files(t, fsys), ch.New)
	assert.Same(t, ch, f.Claim(ch.New), "pending, its maker's")
	assert.Equal(t, []string{ch.New}, ch.Rollback(ctx).Deleted, "the maker gives up")
	assert.Nil(t, f.Claim(ch.New), "nothing stays on the list")
}
