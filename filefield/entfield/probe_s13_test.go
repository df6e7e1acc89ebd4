package entfield_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"entgo.io/ent"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
)

var errS13Hook = errors.New("audit hook failed after the write")

// s13FailingHook installs, inside entfield's hooks, a hook that fails an
// UpdateOne after its write while *fail is set.
func s13FailingHook(a *app, fail *atomic.Bool) {
	a.client.User.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			v, err := next.Mutate(ctx, m)
			if err == nil && m.Op().Is(ent.OpUpdateOne) && fail.Load() {
				return v, errS13Hook
			}
			return v, err
		})
	})
}

// A mutation hook fails after the write; the handler stored its upload in
// no scope (defer ch.Rollback) and Adds it in each WithTx attempt. The
// first attempt returns the hook's error (rolled back), the retry commits,
// then the deferred Rollback runs: the row's file must be there.
func TestS13ProbeEntHookErrorAfterWriteRetried(t *testing.T) {
	t.Parallel()
	for _, made := range []string{"Save", "Replace"} {
		for _, add := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/add=%v", made, add), func(t *testing.T) {
				t.Parallel()
				forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
					var fail atomic.Bool
					s13FailingHook(a, &fail)
					ctx := t.Context()
					u := a.newUser(t, "ada")
					var ch *filefield.Change
					var err error
					if made == "Save" {
						ch, err = a.pics.Save(ctx, upload("new"))
					} else {
						ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
					}
					require.NoError(t, err)
					for attempt := 0; attempt < 3; attempt++ {
						fail.Store(attempt == 0)
						_, err = entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
							if add {
								if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
									return err
								}
							}
							return tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx)
						})
						if err == nil {
							break
						}
						require.ErrorIs(t, err, errS13Hook)
					}
					require.NoError(t, err)
					ch.Rollback(ctx) // deferred
					require.Equal(t, ch.New, a.user(t, u.ID).Picture)
					assert.Contains(t, a.stored(t), ch.New, "the committed row's file was deleted; files %v", a.stored(t))
				})
			})
		}
	}
}

// Loss (add=false; found in session 13, fixed: the hook claims the
// upload into the transaction's scope after an error too, with its
// reference check, so a commit keeps it and a rollback gives it back).
// The hook's error after the write is not fatal to
// the handler: fn logs it and returns nil, so WithTx commits the row the
// mutation wrote, naming the upload. With the upload Added the scope
// commits it. Without (the README's "no file code" handler: store, write
// with the tx's context), entfield's hook, seeing an error inside a
// transaction, neither claimed the upload nor registered the stale path
// (st.finish does nothing when st.own == nil), so no scope held the
// upload; the handler's deferred ch.Rollback then deleted the file the
// committed row names. gormfield claims before the model's
// after-hooks and holds here (TestS13ProbeHookErrorIgnoredInTransaction).
func TestS13ProbeEntHookErrorIgnoredThenCommit(t *testing.T) {
	t.Parallel()
	for _, add := range []bool{true, false} {
		t.Run(fmt.Sprintf("add=%v", add), func(t *testing.T) {
			t.Parallel()
			forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
				var fail atomic.Bool
				fail.Store(true)
				s13FailingHook(a, &fail)
				ctx := t.Context()
				u := a.newUser(t, "ada")
				ch, err := a.pics.Replace(ctx, u.Picture, upload("new"))
				require.NoError(t, err)
				_, err = entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
					if add {
						if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
							return err
						}
					}
					if err := tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx); !errors.Is(err, errS13Hook) {
						return fmt.Errorf("want the hook's error: %w", err)
					}
					return nil // the audit is best effort
				})
				require.NoError(t, err)
				ch.Rollback(ctx) // deferred
				row := a.user(t, u.ID).Picture
				require.Equal(t, ch.New, row, "the write committed")
				assert.Contains(t, a.stored(t), row, "the committed row's file was deleted; files %v", a.stored(t))
			})
		})
	}
}

// The retry on another goroutine while the first attempt's file rollback
// runs: paused (an OnEvent callback of a field of the test's) at the
// deletion of an upload the attempt made in its scope, which the rollback
// handles before the handler's upload (newest first); the second attempt
// Adds, writes and commits in the pause; then the first rollback goes on
// and the handler's deferred Rollback runs.
func TestS13ProbeEntRetryOnAnotherGoroutineDuringRollback(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, k, k.open(t), entfield.Options{})
			var armed atomic.Bool
			var once sync.Once
			var second error
			done := make(chan struct{})
			var attempt func(fail bool) error
			f := filefield.New("s13", a.ffs, filefield.Options{Dir: "s13", OnEvent: func(e filefield.Event) {
				if e.Action != filefield.ActionDelete || !armed.CompareAndSwap(true, false) {
					return
				}
				once.Do(func() {
					go func() {
						defer close(done)
						second = attempt(false)
					}()
					<-done
				})
			}})
			ctx := t.Context()
			u := a.newUser(t, "ada")
			ch, err := a.pics.Replace(ctx, u.Picture, upload("new"))
			require.NoError(t, err)
			attempt = func(fail bool) error {
				_, err := entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
					if _, err := filefield.ScopeFrom(ctx).Add(ch, nil); err != nil {
						return err
					}
					if err := tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx); err != nil {
						return err
					}
					if fail {
						if _, err := f.Save(ctx, upload("own")); err != nil {
							return err
						}
						return errS13Hook
					}
					return nil
				})
				return err
			}
			armed.Store(true)
			err = attempt(true)
			require.ErrorIs(t, err, errS13Hook)
			select {
			case <-done:
			default:
				t.Fatal("the pause point was never reached")
			}
			require.NoError(t, second)
			ch.Rollback(ctx) // deferred
			row := a.user(t, u.ID).Picture
			require.Equal(t, ch.New, row)
			assert.Contains(t, a.stored(t), row, "the committed row's file was deleted; files %v", a.stored(t))
		})
	}
}
