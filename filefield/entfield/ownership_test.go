package entfield_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/hook"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/message"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/migrate"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/user"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Inside an ent transaction that no scope covers, the hook refuses
// rather than guess, and lets mutations that write no file run; with
// LeaveUnscoped it lets the mutation run and leaves every file alone.
func TestUnscopedTransactions(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
			ctx := t.Context()
			u := a.newUser(t, "ada")
			ch, err := a.pics.Save(ctx, upload("new"))
			require.NoError(t, err)
			tx, err := a.client.Tx(ctx)
			require.NoError(t, err)
			err = tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx)
			assert.ErrorIs(t, err, entfield.ErrNoScope)
			assert.NoError(t, tx.User.UpdateOneID(u.ID).SetName("ada2").Exec(ctx), "no file field: no refusal")
			require.NoError(t, tx.Rollback())
			assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
			ch.Rollback(ctx)
			assert.Equal(t, []string{u.Picture}, a.stored(t))
		})
	})
	t.Run("left", func(t *testing.T) {
		t.Parallel()
		forEachDB(t, entfield.Options{LeaveUnscoped: true}, func(t *testing.T, a *app) {
			ctx := t.Context()
			u := a.newUser(t, "ada")
			ch, err := a.pics.Save(ctx, upload("new"))
			require.NoError(t, err)
			tx, err := a.client.Tx(ctx)
			require.NoError(t, err)
			require.NoError(t, tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx))
			require.NoError(t, tx.Commit())
			assert.Equal(t, ch.New, a.user(t, u.ID).Picture)
			assert.Same(t, ch, a.pics.Claim(ch.New), "the upload's change stays with its field")
			ch.Commit(ctx)
			assert.ElementsMatch(t, []string{u.Picture, ch.New}, a.stored(t), "the old file is left to the orphan finder")
		})
	})
}

// WithTx is an outermost scope of its own, even inside another scope: ent
// has no savepoints, so its commit is final, and its stale file goes
// then; a rollback of the scope around it does not touch its files.
func TestWithTxInsideAScope(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx, outer := filefield.NewScope(t.Context())
		u := a.newUser(t, "ada")
		var p string
		_, err := entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
			ch, err := a.pics.Save(ctx, upload("new"))
			if err != nil {
				return err
			}
			p = ch.New
			return tx.User.UpdateOneID(u.ID).SetPicture(p).Exec(ctx)
		})
		require.NoError(t, err)
		assert.Equal(t, []string{p}, a.stored(t), "the stale file went with WithTx's commit")
		outer.Rollback(ctx)
		assert.Equal(t, []string{p}, a.stored(t), "the committed row's file stays")
	})
}

// A mutation outside any transaction commits on its own, even when its
// context carries a scope: its stale file goes at once, and the upload
// made in that scope commits with it, so a later rollback of the scope
// keeps the file the committed row holds.
func TestAutocommitMutationInsideAScope(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx, s := filefield.NewScope(t.Context())
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		require.Same(t, s, ch.Scope())
		require.NoError(t, a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx))
		assert.Equal(t, []string{ch.New}, a.stored(t))
		s.Rollback(ctx)
		assert.Equal(t, []string{ch.New}, a.stored(t), "the row's new file stays")
		assert.Equal(t, ch.New, a.user(t, u.ID).Picture)
	})
}

// errHook is a commit hook's failure.
var errHook = errors.New("commit hook failed")

// The files follow the database's own commit, whatever the application's
// commit hooks say around it; a transaction fn ended itself keeps every
// file.
func TestCommitHooksAndTransactionsEndedByFn(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"fails after the commit", "stops the commit", "fn commits", "panics after the commit"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				u := a.newUser(t, "ada")
				var p string
				var res filefield.Result
				var err error
				run := func() {
					res, err = entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
						// Stored in the transaction's scope, which owns it.
						ch, err := a.pics.Save(ctx, upload("new"))
						require.NoError(t, err)
						p = ch.New
						if err := tx.User.UpdateOneID(u.ID).SetPicture(p).Exec(ctx); err != nil {
							return err
						}
						switch how {
						case "fails after the commit":
							tx.OnCommit(func(next entdemo.Committer) entdemo.Committer {
								return entdemo.CommitFunc(func(ctx context.Context, tx *entdemo.Tx) error {
									if err := next.Commit(ctx, tx); err != nil {
										return err
									}
									return errHook
								})
							})
						case "stops the commit":
							tx.OnCommit(func(entdemo.Committer) entdemo.Committer {
								return entdemo.CommitFunc(func(context.Context, *entdemo.Tx) error { return errHook })
							})
						case "fn commits":
							return tx.Commit()
						case "panics after the commit":
							tx.OnCommit(func(next entdemo.Committer) entdemo.Committer {
								return entdemo.CommitFunc(func(ctx context.Context, tx *entdemo.Tx) error {
									_ = next.Commit(ctx, tx)
									panic("hook bug")
								})
							})
						}
						return nil
					})
				}
				if how == "panics after the commit" {
					assert.PanicsWithValue(t, "hook bug", run)
				} else {
					run()
				}
				switch how {
				case "fails after the commit":
					assert.ErrorIs(t, err, errHook)
					assert.Equal(t, p, a.user(t, u.ID).Picture)
					assert.Equal(t, []string{u.Picture}, res.Deleted)
					assert.Equal(t, []string{p}, a.stored(t))
				case "stops the commit":
					assert.ErrorIs(t, err, errHook)
					// The transaction was rolled back, not left open
					// holding the row (and SQLite's one connection).
					wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					require.NoError(t, a.client.User.UpdateOneID(u.ID).SetName("ada2").Exec(wctx))
					assert.Equal(t, u.Picture, a.user(t, u.ID).Picture, "rolled back")
					assert.Equal(t, []string{p}, res.Deleted)
					assert.Equal(t, []string{u.Picture}, a.stored(t))
				case "panics after the commit":
					assert.Equal(t, p, a.user(t, u.ID).Picture)
					assert.ElementsMatch(t, []string{u.Picture, p}, a.stored(t), "both kept")
				case "fn commits":
					assert.ErrorIs(t, err, filefield.ErrCommitUnknown)
					assert.Equal(t, p, a.user(t, u.ID).Picture)
					assert.Empty(t, res.Deleted)
					assert.ElementsMatch(t, []string{u.Picture, p}, a.stored(t), "both kept")
				}
			})
		})
	}
}

func TestTrackRefusesBadDeclarations(t *testing.T) {
	t.Parallel()
	a := newApp(t, databases[0], databases[0].open(t), entfield.Options{})
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	noKey := &schema.Table{Name: "nokey", Columns: []*schema.Column{{Name: "picture", Type: field.TypeString}}}
	for name, track := range map[string]func(){
		"no column":      func() { a.files.Track(pics, migrate.UsersTable, "nope") },
		"not a string":   func() { a.files.Track(pics, migrate.MessagesTable, message.FieldUserID) },
		"tracked twice":  func() { a.files.Track(pics, migrate.UsersTable, user.FieldPicture) },
		"no primary key": func() { a.files.Track(pics, noKey, "picture") },
		"no field":       func() { a.files.Track(nil, migrate.UsersTable, user.FieldName) },
		"no driver":      func() { entfield.New(nil, entfield.Options{}) },
	} {
		assert.Panics(t, track, name)
	}
}

// A hook installed on the client of a type without its field refuses
// that type's mutations at once.
func TestAHookOnTheWrongClientRefuses(t *testing.T) {
	t.Parallel()
	k := databases[0]
	a := newApp(t, k, k.open(t), entfield.Options{})
	pics := filefield.New("pics2", a.ffs, filefield.Options{Dir: "pics2"})
	other := entfield.New(a.drv, entfield.Options{})
	a.client.Message.Use(other.Track(pics, migrate.UsersTable, user.FieldName))
	err := a.client.Message.Create().SetImage("").Exec(t.Context())
	assert.ErrorContains(t, err, "Message has no field name")
}

// What the hooks leave alone they say at Warn: a mutation in an unscoped
// transaction (LeaveUnscoped), and a tracked field set by a hook inside
// theirs, after their read.
func TestLeftFilesAreLogged(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			rec := &storagetest.LogRecorder{Level: slog.LevelWarn}
			a := newApp(t, k, k.open(t), entfield.Options{LeaveUnscoped: true, Logger: rec.Logger()})
			ctx := t.Context()
			u := a.newUser(t, "ada")
			tx, err := a.client.Tx(ctx)
			require.NoError(t, err)
			require.NoError(t, tx.User.UpdateOneID(u.ID).SetPicture(a.newPicture(t, "tx")).Exec(ctx))
			require.NoError(t, tx.Rollback())

			late := a.newPicture(t, "late")
			a.client.User.Use(func(next ent.Mutator) ent.Mutator {
				return hook.UserFunc(func(ctx context.Context, m *entdemo.UserMutation) (ent.Value, error) {
					if _, ok := m.Name(); ok {
						m.SetPicture(late)
					}
					return next.Mutate(ctx, m)
				})
			})
			require.NoError(t, a.client.User.UpdateOneID(u.ID).SetName("ada2").Exec(ctx))
			assert.Equal(t, late, a.user(t, u.ID).Picture)

			var msgs []string
			for _, r := range rec.Records() {
				msgs = append(msgs, r.Message)
			}
			require.Len(t, msgs, 2, "%q", msgs)
			assert.Contains(t, msgs[0], "unscoped ent transaction")
			assert.Contains(t, msgs[1], "install entfield's hooks last")
		})
	}
}

// Scopes made inside WithTx nest like savepoints: with a database
// savepoint rolled back, the child scope's rollback deletes its upload at
// once and keeps the old file; a child that commits hands its changes to
// WithTx's scope, whose commit deletes.
func TestChildScopesInsideWithTx(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		u := a.newUser(t, "ada")
		var kept string
		res, err := entfield.WithTx(t.Context(), a.client, func(ctx context.Context, tx *entdemo.Tx) error {
			replace := func(ctx context.Context, tag string) (string, error) {
				ch, err := a.pics.Save(ctx, upload(tag))
				if err != nil {
					return "", err
				}
				return ch.New, tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx)
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT sp1"); err != nil {
				return err
			}
			cctx, child := filefield.NewScope(ctx)
			if _, err := replace(cctx, "inner"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT sp1"); err != nil {
				return err
			}
			child.Rollback(ctx)
			assert.Equal(t, []string{u.Picture}, a.stored(t), "the savepoint's upload went at once")

			cctx, child = filefield.NewScope(ctx)
			p, err := replace(cctx, "kept")
			if err != nil {
				return err
			}
			kept = p
			assert.Empty(t, child.Commit(ctx).Deleted, "a child's commit deletes nothing")
			assert.ElementsMatch(t, []string{u.Picture, p}, a.stored(t))
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, []string{u.Picture}, res.Deleted)
		assert.Equal(t, []string{kept}, a.stored(t))
		assert.Equal(t, kept, a.user(t, u.ID).Picture)
	})
}
