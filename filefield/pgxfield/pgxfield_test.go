package pgxfield_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/pgxfield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

type app struct {
	pool *pgxpool.Pool
	fsys afero.Fs
	pics *filefield.Field
}

func newApp(t *testing.T) *app {
	t.Helper()
	_, url := sqltest.Postgres(t).NewDatabase(t)
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = pool.Exec(t.Context(), `
		CREATE TABLE users (id INT PRIMARY KEY, picture TEXT NOT NULL DEFAULT '');
		CREATE TABLE audit (id SERIAL PRIMARY KEY, user_id INT REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED);
		INSERT INTO users (id) VALUES (1);`)
	require.NoError(t, err)
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { rfs.Close() })
	return &app{pool: pool, fsys: rfs, pics: filefield.New("pics", rfs, filefield.Options{Dir: "pics"})}
}

func upload(tag string) filefield.Upload {
	return filefield.Upload{Body: bytes.NewReader(append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), tag...)), Name: tag + ".png"}
}

func (a *app) picture(t *testing.T) string {
	var p string
	require.NoError(t, a.pool.QueryRow(t.Context(), `SELECT picture FROM users WHERE id = 1`).Scan(&p))
	return p
}

// replace is the application code: swap the user's picture in one
// transaction begun on db, and let end decide how fn ends.
func (a *app) replace(ctx context.Context, db pgxfield.Beginner, tag string, end func(ctx context.Context, tx pgx.Tx) error) (filefield.Result, error) {
	return pgxfield.WithTx(ctx, db, func(ctx context.Context, tx pgx.Tx) error {
		var old string
		if err := tx.QueryRow(ctx, `SELECT picture FROM users WHERE id = 1`).Scan(&old); err != nil {
			return err
		}
		ch, err := a.pics.Replace(ctx, old, upload(tag))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET picture = $1 WHERE id = 1`, ch.New); err != nil {
			return err
		}
		return end(ctx, tx)
	})
}

func ok(context.Context, pgx.Tx) error { return nil }

func TestWithTx(t *testing.T) {
	t.Parallel()
	errApp := errors.New("application error")
	for _, tc := range []struct {
		name   string
		end    func(ctx context.Context, tx pgx.Tx) error
		panics bool
	}{
		{"commit", ok, false},
		{"error", func(context.Context, pgx.Tx) error { return errApp }, false},
		{"panic", func(context.Context, pgx.Tx) error { panic("handler bug") }, true},
		{"failed commit", func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO audit (user_id) VALUES (999)`)
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t)
			ctx := t.Context()
			_, err := a.replace(ctx, a.pool, "first", ok)
			require.NoError(t, err)
			first := a.picture(t)
			var res filefield.Result
			run := func() { res, err = a.replace(ctx, a.pool, "second", tc.end) }
			if tc.panics {
				assert.PanicsWithValue(t, "handler bug", run)
			} else {
				run()
			}
			got := storagetest.Files(t, a.fsys)
			if tc.name == "commit" {
				require.NoError(t, err)
				assert.Equal(t, []string{a.picture(t)}, got)
				assert.Equal(t, []string{first}, res.Deleted)
				return
			}
			assert.False(t, errors.Is(err, filefield.ErrCommitUnknown), "%v", err)
			assert.Equal(t, first, a.picture(t))
			assert.Equal(t, []string{first}, got, "the new file is gone, the old one stays")
		})
	}
}

// A savepoint (WithTx on a pgx.Tx) that fails rolls back its own files;
// the outer transaction's commit deletes what it made stale.
func TestSavepoints(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)
	errInner := errors.New("inner")
	res, err := pgxfield.WithTx(ctx, a.pool, func(ctx context.Context, tx pgx.Tx) error {
		_, err := a.replace(ctx, tx, "inner", func(context.Context, pgx.Tx) error { return errInner })
		assert.ErrorIs(t, err, errInner)
		assert.Equal(t, []string{first}, storagetest.Files(t, a.fsys), "the savepoint's file went at once")
		_, err = a.replace(ctx, tx, "kept", ok)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{first}, res.Deleted)
	assert.Equal(t, []string{a.picture(t)}, storagetest.Files(t, a.fsys))
}

// A commit whose answer is lost with the connection keeps every file:
// here the server did commit, so the new file is the row's, and deleting
// it as a rollback would lose it.
func TestCommitOnABrokenConnectionKeepsEveryFile(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := t.Context()
	_, err := a.replace(ctx, a.pool, "first", ok)
	require.NoError(t, err)
	first := a.picture(t)

	cfg := a.pool.Config().Copy()
	proxy := sqltest.NewCutProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, fmt.Sprint(cfg.ConnConfig.Port)))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", uint16(proxy.Addr().Port)
	cut, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer cut.Close()

	res, err := a.replace(ctx, cut, "second", func(context.Context, pgx.Tx) error {
		proxy.Arm()
		return nil
	})
	require.ErrorIs(t, err, filefield.ErrCommitUnknown)
	assert.Empty(t, res.Deleted)
	require.Len(t, res.Kept, 2)
	for _, k := range res.Kept {
		assert.Equal(t, filefield.KeptCommitUnknown, k.Reason)
	}
	now := a.picture(t)
	assert.NotEqual(t, first, now, "the server committed")
	assert.ElementsMatch(t, []string{first, now}, storagetest.Files(t, a.fsys), "the row's new file is kept")
}

// WithTx on a pool begins a transaction of its own: a scope the caller has
// open does not own its files, so the committed row keeps its new file
// when that outer scope rolls back. On a pgx.Tx it is a savepoint, and
// the outer scope does own them.
func TestWithTxOnAPoolInsideAScopeIsIndependent(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	_, err := a.replace(t.Context(), a.pool, "first", ok)
	require.NoError(t, err)
	ctx, outer := filefield.NewScope(t.Context())
	_, err = a.replace(ctx, a.pool, "second", ok)
	require.NoError(t, err)
	second := a.picture(t)
	outer.Rollback(ctx)
	assert.Equal(t, []string{second}, storagetest.Files(t, a.fsys), "the committed row's file stays")
}
