package entfield_test

import (
	"context"
	"errors"

	"entgo.io/ent"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
)

// Found by a red-team pass (it failed before the fix). An autocommit create that fails inside the caller's
// scope claims the caller's change into its own scope and rolls it back.
func TestFailedAutocommitCreateKeepsCallerScopedUpload(t *testing.T) {
	a := newApp(t, databases[0], databases[0].open(t), entfield.Options{})
	u := a.newUser(t, "ada")
	ctx, s := filefield.NewScope(t.Context())
	ch, err := a.pics.Save(ctx, upload("new"))
	require.NoError(t, err)
	err = a.client.User.Create().SetName("ada").SetPicture(ch.New).Exec(ctx)
	require.Error(t, err, "the name is unique")
	require.NoError(t, a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx))
	s.Commit(ctx)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture)
	assert.Contains(t, a.stored(t), ch.New, "committed row points at a deleted file; files: %v", a.stored(t))
}

// Found by a red-team pass (it failed before the fix). A retried transaction. The upload is made once, in
// the handler's scope; the first WithTx attempt claims it into its own
// scope and fails (a serialization failure, say), deleting the file; the
// retry commits the row with the path.
func TestRetriedWithTxKeepsCallerScopedUpload(t *testing.T) {
	a := newApp(t, databases[0], databases[0].open(t), entfield.Options{})
	u := a.newUser(t, "ada")
	errRetry := errors.New("could not serialize access")
	_, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
		ch, err := a.pics.Save(ctx, upload("new"))
		if err != nil {
			return nil, err
		}
		for attempt := 0; ; attempt++ {
			_, err = entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
				if err := tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx); err != nil {
					return err
				}
				if attempt == 0 {
					return errRetry
				}
				return nil
			})
			if !errors.Is(err, errRetry) {
				break
			}
		}
		return func() error { return nil }, err
	})
	require.NoError(t, err)
	p := a.user(t, u.ID).Picture
	assert.Contains(t, a.stored(t), p, "committed row points at a deleted file; files: %v", a.stored(t))
}

// Found by a red-team pass (it failed before the fix). Outside a transaction the update commits inside
// next.Mutate; a hook inside entfield's then returns an error. entfield
// takes the error for the statement's and rolls its own scope back,
// deleting the new file of the row that committed.
func TestHookErrorAfterAutocommitKeepsFile(t *testing.T) {
	a := newApp(t, databases[0], databases[0].open(t), entfield.Options{})
	u := a.newUser(t, "ada")
	errAudit := errors.New("audit write failed")
	a.client.User.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if err == nil && m.Op().Is(ent.OpUpdateOne) {
				return v, errAudit
			}
			return v, err
		})
	})
	ch, err := a.pics.Replace(t.Context(), u.Picture, upload("new"))
	require.NoError(t, err)
	err = a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(t.Context())
	require.ErrorIs(t, err, errAudit)
	require.Equal(t, ch.New, a.user(t, u.ID).Picture, "the update committed")
	assert.Contains(t, a.stored(t), ch.New, "committed row points at a deleted file; files: %v", a.stored(t))
}

// Two rows hold one path (a copied record). The handler replaces the
// first row's picture inside a scope, with Replace(old), and the
// statement is claimed: the old file must stay, since the second row
// still holds it. The claimed change now asks the rows (CheckRefs).
func TestClaimedReplaceKeepsAPathAnotherRowHolds(t *testing.T) {
	a := newApp(t, databases[0], databases[0].open(t), entfield.Options{})
	u := a.newUser(t, "ada")
	v := a.newUser(t, "bob")
	shared := a.user(t, u.ID).Picture
	require.NoError(t, a.client.User.UpdateOneID(v.ID).SetPicture(shared).Exec(t.Context()))
	ctx, s := filefield.NewScope(t.Context())
	ch, err := a.pics.Replace(ctx, shared, upload("new"))
	require.NoError(t, err)
	require.NoError(t, a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx))
	s.Commit(ctx)
	require.Equal(t, shared, a.user(t, v.ID).Picture)
	assert.Contains(t, a.stored(t), shared, "bob's row points at a deleted file; files: %v", a.stored(t))
	assert.Contains(t, a.stored(t), ch.New)
}
