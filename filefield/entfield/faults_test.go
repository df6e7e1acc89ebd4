package entfield_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// Faults at every storage operation of a replace in a transaction, the
// upload and the deletion after the commit, and of one outside any
// transaction: whatever fails, the file the row points at exists, and no
// file but the stale one or the new one is ever missing or left.
func TestReplaceUnderStorageFaults(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, inTx := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/tx=%v", k.name, inTx), func(t *testing.T) {
				t.Parallel()
				for n := 1; ; n++ {
					if replaceWithFault(t, k, inTx, n) {
						break
					}
					require.Less(t, n, 100, "the fault never stopped firing")
				}
			})
		}
	}
}

// replaceWithFault replaces a picture with the nth storage operation
// failing, checks the files, and reports whether no fault fired.
func replaceWithFault(t *testing.T, k dbKind, inTx bool, n int) bool {
	a := newApp(t, k, k.open(t), entfield.Options{})
	u := a.newUser(t, "ada")
	other := a.newUser(t, "bob")
	a.ffs.Reset(storagetest.Fault{N: n})
	replace := func(ctx context.Context, c *entdemo.Client) error {
		ch, err := a.pics.Save(ctx, upload("new"))
		if err != nil {
			return err
		}
		return c.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx)
	}
	var res filefield.Result
	var err error
	if inTx {
		res, err = entfield.WithTx(t.Context(), a.client, func(ctx context.Context, tx *entdemo.Tx) error {
			return replace(ctx, tx.Client())
		})
	} else {
		err = replace(t.Context(), a.client)
	}
	row := a.user(t, u.ID).Picture
	have := a.stored(t)
	assert.Contains(t, have, row, "n=%d: the row's file exists (err %v, %+v)", n, err, res)
	assert.Contains(t, have, other.Picture, "n=%d", n)
	for _, p := range have {
		assert.Contains(t, []string{row, u.Picture, other.Picture}, p, "n=%d: a file no row holds but the stale one", n)
	}
	if a.ffs.Fired() > 0 {
		return false
	}
	assert.NoError(t, err)
	assert.Len(t, have, 2, "no fault: the stale file went")
	noAbandoned(t, a)
	return true
}

// A commit whose answer is lost with the connection keeps every file:
// here the server did commit, so the new file is the row's, and deleting
// it as a rollback would lose it.
func TestCommitOnABrokenConnectionKeepsEveryFile(t *testing.T) {
	t.Parallel()
	direct, dsn := sqltest.Postgres(t).NewDatabase(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy := sqltest.NewCutProxy(t, u.Host)
	u.Host = proxy.Addr().String()
	db, err := sql.Open("pgx", u.String())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	a := newApp(t, databases[1], db, entfield.Options{})
	ctx := t.Context()
	ada := a.newUser(t, "ada")

	var p string
	res, err := entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
		p = a.newPicture(t, "new")
		if err := tx.User.UpdateOneID(ada.ID).SetPicture(p).Exec(ctx); err != nil {
			return err
		}
		proxy.Arm()
		return nil
	})
	require.ErrorIs(t, err, filefield.ErrCommitUnknown)
	assert.Empty(t, res.Deleted)
	require.Len(t, res.Kept, 2)
	for _, k := range res.Kept {
		assert.Equal(t, filefield.KeptCommitUnknown, k.Reason)
	}
	var now string
	require.NoError(t, direct.QueryRowContext(ctx, `SELECT picture FROM users WHERE id = $1`, ada.ID).Scan(&now))
	assert.Equal(t, p, now, "the server committed")
	assert.ElementsMatch(t, []string{ada.Picture, p}, a.stored(t), "the row's new file is kept")
	assert.False(t, errors.Is(err, sql.ErrTxDone))
}
