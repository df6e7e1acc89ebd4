package filefield_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// A savepoint sent as SQL inside WithTx is invisible to the scope: its
// rollback leaves the change with the transaction, whose commit would
// delete the old file the row holds again (the README lists it under what
// is not guaranteed). Options.Refs, asked before each deletion after the
// commit, keeps the file a row still names, as the README advises.
func TestRawSavepointRollbackIsKeptByRefs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t)
	refs := filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE picture = ?`, p).Scan(&n)
		return n > 0, err
	})
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Refs: refs})
	first, err := setPicture(ctx, db, f, "first", func(*sql.Tx) error { return nil })
	require.NoError(t, err)

	var second string
	res, err := filefield.WithTx(ctx, db, nil, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT a`); err != nil {
			return err
		}
		ch, err := f.Replace(ctx, first, upload("second"))
		if err != nil {
			return err
		}
		second = ch.New
		if _, err := tx.ExecContext(ctx, `UPDATE users SET picture = ? WHERE id = 1`, ch.New); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `ROLLBACK TO a`)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, first, picture(t, db), "the savepoint rolled the row back")
	assert.Contains(t, files(t, fsys), first, "kept: a row still names it (%+v)", res)
	assert.Equal(t, []filefield.Kept{{Path: first, Reason: filefield.KeptReferenced}}, res.Kept)
	assert.Contains(t, files(t, fsys), second, "the unreferenced upload stays for the orphan finder")
}
