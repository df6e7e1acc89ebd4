package entfield_test

import (
	"context"
	"testing"

	"entgo.io/ent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/entfield"
)

// From a red-team pass over 84a81a3, which gave a failed statement's
// claimed upload back through stmtState.claimed and Field.Unclaim. Each
// test failed then; the fix keeps a claimed upload in the statement's
// scope, where it is held, and has a scope's rollback give a borrowed
// upload (one made in no scope) back to its maker instead.

// Red team of 84a81a3. Outside a transaction the update commits inside
// next.Mutate; a schema-style hook inside entfield's then writes an audit
// row that breaks the audits primary key and returns that error. run
// reads the rows after an error only when it is not a constraint error,
// so it takes the mutation for failed and leaves the upload to the
// handler, which gives up on it as the docs say (Change.Rollback): the
// file of the row that committed goes.
func TestRTUnclaimConstraintErrorAfterAutocommitKeepsFile(t *testing.T) {
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		_, err := a.db.ExecContext(ctx, `INSERT INTO audits (id, user_id) VALUES (1, $1)`, u.ID)
		require.NoError(t, err)
		a.client.User.Use(func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				v, err := next.Mutate(ctx, m)
				if err == nil && m.Op().Is(ent.OpUpdateOne) {
					// The audit row of this request, written twice.
					_, err = a.db.ExecContext(ctx, `INSERT INTO audits (id, user_id) VALUES (1, $1)`, u.ID)
				}
				return v, err
			})
		})
		ch, err := a.pics.Replace(ctx, u.Picture, upload("new"))
		require.NoError(t, err)
		err = a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx)
		require.Error(t, err, "the audit row exists")
		require.Equal(t, ch.New, a.user(t, u.ID).Picture, "the update committed")
		ch.Rollback(ctx) // the handler gives up, as documented
		assert.Contains(t, a.stored(t), ch.New, "committed row points at a deleted file; files: %v", a.stored(t))
	})
}
