package filefield_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// openDB opens a real SQLite database with a users table whose picture
// column the tests keep in step with the files, and a table with a
// deferred foreign key, so that tx.Commit itself can be made to fail.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "app.db")+"?_pragma=foreign_keys(1)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`
		CREATE TABLE users (id INTEGER PRIMARY KEY, picture TEXT NOT NULL DEFAULT '');
		CREATE TABLE audit (id INTEGER PRIMARY KEY,
			user_id INTEGER REFERENCES users(id) DEFERRABLE INITIALLY DEFERRED);
		INSERT INTO users (id) VALUES (1);`)
	require.NoError(t, err)
	return db
}

func picture(t *testing.T, db *sql.DB) string {
	t.Helper()
	var p string
	require.NoError(t, db.QueryRow(`SELECT picture FROM users WHERE id = 1`).Scan(&p))
	return p
}

// setPicture is the application code under test: replace the user's
// picture inside a transaction, then let fail decide how it ends.
func setPicture(ctx context.Context, db *sql.DB, f *filefield.Field, tag string, fail func(tx *sql.Tx) error) (string, error) {
	var newPath string
	_, err := filefield.WithTx(ctx, db, nil, func(ctx context.Context, tx *sql.Tx) error {
		var old string
		if err := tx.QueryRowContext(ctx, `SELECT picture FROM users WHERE id = 1`).Scan(&old); err != nil {
			return err
		}
		ch, err := f.Replace(ctx, old, upload(tag))
		if err != nil {
			return err
		}
		newPath = ch.New
		if _, err := tx.ExecContext(ctx, `UPDATE users SET picture = ? WHERE id = 1`, ch.New); err != nil {
			return err
		}
		return fail(tx)
	})
	return newPath, err
}

func TestWithTxOnSQLite(t *testing.T) {
	t.Parallel()
	errApp := errors.New("application error")
	tests := []struct {
		name    string
		fail    func(tx *sql.Tx) error
		wantErr bool
		panics  bool
	}{
		{"error", func(*sql.Tx) error { return errApp }, true, false},
		{"panic", func(*sql.Tx) error { panic("handler bug") }, true, true},
		{"failed commit", func(tx *sql.Tx) error {
			// A deferred foreign key violation: fn succeeds, tx.Commit fails.
			_, err := tx.Exec(`INSERT INTO audit (user_id) VALUES (999)`)
			return err
		}, true, false},
		{"rollback by tx", func(tx *sql.Tx) error { return tx.Rollback() }, true, false},
		{"commit by tx", func(tx *sql.Tx) error { return tx.Commit() }, true, false},
		{"success", func(*sql.Tx) error { return nil }, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
				ctx := t.Context()
				db := openDB(t)
				f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
				first, err := setPicture(ctx, db, f, "first", func(*sql.Tx) error { return nil })
				require.NoError(t, err)
				require.Equal(t, first, picture(t, db))

				var newPath string
				run := func() { newPath, err = setPicture(ctx, db, f, "second", tt.fail) }
				if tt.panics {
					assert.PanicsWithValue(t, "handler bug", run)
				} else {
					run()
				}
				if !tt.wantErr {
					require.NoError(t, err)
					assert.Equal(t, newPath, picture(t, db))
					assert.Equal(t, []string{newPath}, files(t, fsys), "after a commit only the new file exists")
					return
				}
				if !tt.panics {
					require.Error(t, err)
				}
				if strings.HasSuffix(tt.name, "by tx") {
					// fn ended the transaction itself: WithTx cannot know
					// how, so it keeps both files, whatever the row says.
					assert.ErrorIs(t, err, filefield.ErrCommitUnknown)
					assert.ElementsMatch(t, []string{first, newPath}, files(t, fsys))
					assert.Contains(t, []string{first, newPath}, picture(t, db))
					assert.Equal(t, string(png("first")), read(t, fsys, first))
					return
				}
				assert.Equal(t, first, picture(t, db), "the row still points at the old file")
				assert.Equal(t, []string{first}, files(t, fsys), "the new file is gone")
				assert.Equal(t, string(png("first")), read(t, fsys, first), "the old file is byte-identical")
			})
		})
	}
}

// WithTx begins a transaction of its own on db: a scope the caller has
// open does not own its files. When that outer scope rolls back, the row
// WithTx committed keeps its new file (once, the outer rollback deleted
// it, leaving the committed row pointing at nothing).
func TestWithTxInsideAScopeIsIndependent(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		db := openDB(t)
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		_, err := setPicture(t.Context(), db, f, "first", func(*sql.Tx) error { return nil })
		require.NoError(t, err)

		ctx, outer := filefield.NewScope(t.Context())
		second, err := setPicture(ctx, db, f, "second", func(*sql.Tx) error { return nil })
		require.NoError(t, err)
		assert.Equal(t, []string{second}, files(t, fsys), "the inner commit deleted the old file at once")
		outer.Rollback(ctx)
		assert.Equal(t, second, picture(t, db))
		assert.Equal(t, []string{second}, files(t, fsys), "the committed row's file stays")
	})
}

// Delete then re-create in one transaction keeps the new file.
func TestDeleteThenRecreateInOneTx(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		db := openDB(t)
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true})
		first, err := setPicture(ctx, db, f, "same", func(*sql.Tx) error { return nil })
		require.NoError(t, err)
		_, err = filefield.WithTx(ctx, db, nil, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := f.Delete(ctx, first); err != nil {
				return err
			}
			ch, err := f.Save(ctx, upload("same"))
			if err != nil {
				return err
			}
			_, err = tx.Exec(`UPDATE users SET picture = ? WHERE id = 1`, ch.New)
			return err
		})
		require.NoError(t, err)
		assert.Equal(t, first, picture(t, db))
		assert.Equal(t, []string{first}, files(t, fsys), "the re-created file survives the delete of the same path")
	})
}
