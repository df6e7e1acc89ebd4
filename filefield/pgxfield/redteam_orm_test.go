package pgxfield_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Found by a red-team pass (it failed before the fix). Fn commits the transaction itself and returns nil.
// pgx's second Commit says pgx.ErrTxClosed, which commitError treats as a
// definite failure: the scope rolls back and deletes the new file of the
// row that committed. filefield.WithTx and entfield.WithTx treat the
// database/sql equivalent (ErrTxDone) as ErrCommitUnknown.
func TestTransactionCommittedByFnKeepsFiles(t *testing.T) {
	a := newApp(t)
	res, err := a.replace(t.Context(), a.pool, "new", func(ctx context.Context, tx pgx.Tx) error {
		return tx.Commit(ctx)
	})
	t.Logf("err: %v (ErrCommitUnknown: %v) result: %+v", err, errors.Is(err, filefield.ErrCommitUnknown), res)
	p := a.picture(t)
	require.NotEmpty(t, p, "the row committed")
	files := storagetest.Files(t, a.fsys)
	assert.Contains(t, files, p, "committed row points at a deleted file; files: %v", files)
}
