package filefield_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// A new user's mistake, three replaces without registering anything:
// with a scope in the context, each change registers itself, and the
// commit leaves one file.
func TestScopeRegistersChangesByThemselves(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		cur := ""
		for i := range 3 {
			ctx, scope := filefield.NewScope(t.Context())
			ch, err := pics.Replace(ctx, cur, upload(fmt.Sprint(i)))
			require.NoError(t, err)
			res := scope.Commit(ctx)
			if cur != "" {
				assert.Equal(t, []string{cur}, res.Deleted)
			}
			cur = ch.New
		}
		assert.Equal(t, []string{cur}, files(t, fsys))
		assert.Nil(t, pics.Claim(cur), "a scoped change is not pending with the field")
	})
}

func TestNestedScopesAreSavepoints(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		ctx, outer := filefield.NewScope(t.Context())
		base, err := pics.Save(ctx, upload("base"))
		require.NoError(t, err)

		// A child that commits hands its changes up: nothing is deleted
		// until the outer scope commits.
		cctx, child := filefield.NewScope(ctx)
		kept, err := pics.Replace(cctx, base.New, upload("kept"))
		require.NoError(t, err)
		assert.Equal(t, filefield.Result{}, child.Commit(cctx))
		assert.ElementsMatch(t, []string{base.New, kept.New}, files(t, fsys))

		// A child that rolls back undoes its own changes at once.
		rctx, rolled := filefield.NewScope(ctx)
		gone, err := pics.Save(rctx, upload("gone"))
		require.NoError(t, err)
		assert.Equal(t, []string{gone.New}, rolled.Rollback(rctx).Deleted)

		// A child left open commits with its parent.
		octx, _ := filefield.NewScope(ctx)
		open, err := pics.Save(octx, upload("open"))
		require.NoError(t, err)

		res := outer.Commit(ctx)
		assert.Equal(t, []string{base.New}, res.Deleted, "the replaced file goes at the outermost commit")
		assert.ElementsMatch(t, []string{kept.New, open.New}, files(t, fsys))

		// The scope has ended: a change in it would belong to no
		// transaction, so none is made and nothing is stored.
		_, err = pics.Save(ctx, upload("late"))
		assert.ErrorIs(t, err, filefield.ErrScopeEnded)
		_, err = pics.Delete(octx, kept.New)
		assert.ErrorIs(t, err, filefield.ErrScopeEnded, "a child of an ended scope has ended too")
		ch, err := pics.Save(t.Context(), upload("unscoped"))
		require.NoError(t, err)
		_, err = outer.Add(ch, nil)
		assert.ErrorIs(t, err, filefield.ErrScopeEnded)
		ch.Rollback(t.Context())
		assert.ElementsMatch(t, []string{kept.New, open.New}, files(t, fsys))
	})
}

// An outer rollback undoes what committed children handed up.
func TestOuterRollbackUndoesCommittedChildren(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		before, err := pics.Save(t.Context(), upload("before"))
		require.NoError(t, err)
		before.Commit(t.Context())

		ctx, outer := filefield.NewScope(t.Context())
		cctx, child := filefield.NewScope(ctx)
		ch, err := pics.Replace(cctx, before.New, upload("child"))
		require.NoError(t, err)
		child.Commit(cctx)
		res := outer.Rollback(ctx)
		assert.Equal(t, []string{ch.New}, res.Deleted)
		assert.Equal(t, []string{before.New}, files(t, fsys), "the old file stays")
		assert.Equal(t, res, outer.Rollback(ctx), "idempotent")
		assert.Equal(t, filefield.Result{}, outer.Commit(ctx), "commit after rollback does nothing")
	})
}

// RunInScope: a failed commit, an error and a panic roll back; success
// commits.
func TestRunInScope(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	errCommit := errors.New("commit failed")
	for _, tc := range []struct {
		name   string
		work   error
		commit error
		panics bool
	}{{"commit fails", nil, errCommit, false}, {"work fails", errCommit, nil, false}, {"panic", nil, nil, true}} {
		run := func() (filefield.Result, error) {
			return filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
				if _, err := pics.Save(ctx, upload(tc.name)); err != nil {
					return nil, err
				}
				if tc.panics {
					panic("handler bug")
				}
				return func() error { return tc.commit }, tc.work
			})
		}
		if tc.panics {
			assert.PanicsWithValue(t, "handler bug", func() { _, _ = run() }, tc.name)
		} else {
			res, err := run()
			assert.ErrorIs(t, err, errCommit, tc.name)
			assert.Len(t, res.Deleted, 1, tc.name)
		}
		assert.Empty(t, files(t, fsys), tc.name)
	}
	res, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
		_, err := pics.Save(ctx, upload("ok"))
		return func() error { return nil }, err
	})
	require.NoError(t, err)
	assert.Empty(t, res.Deleted)
	assert.Len(t, files(t, fsys), 1)
}

// Claim hands an unscoped change to whoever finishes it, once; hash-named
// uploads of the same content are separate changes under one path.
func TestClaim(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true})
	a, err := pics.Save(t.Context(), upload("same"))
	require.NoError(t, err)
	b, err := pics.Save(t.Context(), upload("same"))
	require.NoError(t, err)
	require.Equal(t, a.New, b.New)
	// Each statement's claim joins its transaction's scope at once, as
	// the integrations do: the next claim gets the next change no scope
	// holds, then one a scope holds (claimable until finished: another
	// statement may write the path).
	_, s1 := filefield.NewScope(t.Context())
	first := pics.Claim(a.New)
	require.NoError(t, s1.AddClaimed(first))
	_, s2 := filefield.NewScope(t.Context())
	second := pics.Claim(a.New)
	require.NoError(t, s2.AddClaimed(second))
	assert.ElementsMatch(t, []*filefield.Change{a, b}, []*filefield.Change{first, second})
	assert.Same(t, a, pics.Claim(a.New))
	s1.Commit(t.Context())
	s2.Commit(t.Context())

	c, err := pics.Save(t.Context(), upload("other"))
	require.NoError(t, err)
	c.Commit(t.Context())
	assert.Nil(t, pics.Claim(c.New), "a finished change is not claimed")
	assert.Nil(t, pics.Claim(a.New), "finished")
}

// An upload made outside any scope and claimed into one (a statement
// that wrote its path) is borrowed: the scope's commit finishes it, its
// rollback gives it back, pending and claimable, since its maker may
// retry; the maker's own Rollback, asked while the scope held it or
// after, deletes it. A change added by its maker (Add, not Claim) rolls
// back with the scope as before.
func TestBorrowedChangesAreGivenBack(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, _ := b.New(t)
			var kept []string
			pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) {
				if e.Action == filefield.ActionKeep {
					kept = append(kept, e.Reason)
				}
			}})
			ctx := t.Context()
			a, err := pics.Save(ctx, upload("a"))
			require.NoError(t, err)
			for _, claim := range []func(string) *filefield.Change{pics.Claim, pics.ClaimUnheld} {
				sctx, s := filefield.NewScope(ctx)
				require.Same(t, a, claim(a.New))
				err = s.AddClaimed(a)
				require.NoError(t, err)
				require.True(t, a.Held())
				res := s.Rollback(sctx)
				assert.Empty(t, res.Deleted)
				assert.Equal(t, []filefield.Kept{{Path: a.New, Reason: filefield.KeptGivenBack}}, res.Kept)
				assert.False(t, a.Held())
				assert.Nil(t, a.Scope())
				assert.Contains(t, files(t, fsys), a.New, "given back, not deleted")
			}
			assert.Equal(t, []string{filefield.KeptGivenBack, filefield.KeptGivenBack}, kept)
			// Claimed again, by a retry whose scope commits.
			sctx, s := filefield.NewScope(ctx)
			require.Same(t, a, pics.Claim(a.New))
			err = s.AddClaimed(a)
			require.NoError(t, err)
			s.Commit(sctx)
			assert.Empty(t, a.Rollback(ctx).Deleted, "committed")
			assert.Contains(t, files(t, fsys), a.New)

			// The maker's Rollback, asked while the scope held it, wins
			// when the scope rolls back.
			b, err := pics.Save(ctx, upload("b"))
			require.NoError(t, err)
			sctx, s = filefield.NewScope(ctx)
			require.Same(t, b, pics.Claim(b.New))
			err = s.AddClaimed(b)
			require.NoError(t, err)
			b.Rollback(ctx) // a wish: the scope holds it
			assert.Contains(t, files(t, fsys), b.New)
			assert.Equal(t, []string{b.New}, s.Rollback(sctx).Deleted)
			assert.NotContains(t, files(t, fsys), b.New)

			// Given back, then given up by its maker.
			c, err := pics.Save(ctx, upload("c"))
			require.NoError(t, err)
			sctx, s = filefield.NewScope(ctx)
			err = s.AddClaimed(pics.Claim(c.New))
			require.NoError(t, err)
			s.Rollback(sctx)
			assert.Equal(t, []string{c.New}, c.Rollback(ctx).Deleted)
			assert.Nil(t, pics.Claim(c.New), "finished")

			// Added by its maker, not claimed: made in no scope, it is
			// given back too (a retry may add it again), and its maker's
			// Rollback deletes it.
			d, err := pics.Save(ctx, upload("d"))
			require.NoError(t, err)
			sctx, s = filefield.NewScope(ctx)
			_, err = s.Add(d, nil)
			require.NoError(t, err)
			assert.Equal(t, []filefield.Kept{{Path: d.New, Reason: filefield.KeptGivenBack}}, s.Rollback(sctx).Kept)
			assert.Equal(t, []string{d.New}, d.Rollback(ctx).Deleted)
			assert.Equal(t, []string{a.New}, files(t, fsys))

			// Made in a scope: owned by it, deleted by its rollback.
			sctx, s = filefield.NewScope(ctx)
			e, err := pics.Save(sctx, upload("e"))
			require.NoError(t, err)
			assert.Equal(t, []string{e.New}, s.Rollback(sctx).Deleted)
			assert.Equal(t, []string{a.New}, files(t, fsys))
		})
	}
}

// A change still pending at its timeout is reported, through the event
// callback and the logger at Warn; a finished one is not; and the
// reported one deletes nothing.
func TestAbandonedChangesAreReported(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var abandoned []filefield.Event
	fsys := afero.NewMemMapFs()
	rec := &storagetest.LogRecorder{Level: slog.LevelWarn}
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: 50 * time.Millisecond, Logger: rec.Logger(),
		OnEvent: func(e filefield.Event) {
			if e.Action == filefield.ActionAbandon {
				mu.Lock()
				abandoned = append(abandoned, e)
				mu.Unlock()
			}
		}})
	forgotten, err := pics.Save(t.Context(), upload("forgotten"))
	require.NoError(t, err)
	done, err := pics.Save(t.Context(), upload("finished"))
	require.NoError(t, err)
	done.Commit(t.Context())
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(abandoned) > 0
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the finished one's timer would have fired by now
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, abandoned, 1, "the finished change is not reported")
	assert.Equal(t, forgotten.New, abandoned[0].Path)
	assert.ErrorIs(t, abandoned[0].Err, filefield.ErrAbandoned)
	recs := rec.Records()
	require.Len(t, recs, 1)
	assert.Equal(t, "filefield abandon", recs[0].Message)
	assert.Len(t, files(t, fsys), 2, "an abandoned change deletes nothing")
	// No scope holds it: the field forgets it (one a scope holds stays
	// claimable, for a statement that writes its path later).
	assert.Nil(t, pics.Claim(forgotten.New), "the field forgot it")
}

// A randomized model of nested scopes: saves, replaces and deletes in
// scopes that commit, roll back or are left open, checked after every
// outermost end against a model of which files must exist.
func TestScopesAgainstAModel(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:3], func(t *testing.T, fsys afero.Fs, _ string) {
		seed := uint64(time.Now().UnixNano())
		rnd := rand.New(rand.NewPCG(seed, 1))
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		live := map[string]bool{} // files committed rows point at
		for round := range 40 {
			type frame struct {
				ctx   context.Context
				scope *filefield.Scope
				news  []string // files stored in this frame or committed children
				olds  []string // stale files to delete at the outermost commit
			}
			root, rootScope := filefield.NewScope(t.Context())
			stack := []*frame{{ctx: root, scope: rootScope}}
			// Deleting or replacing a live file marks it taken, so that
			// two changes never make the same file stale.
			taken := map[string]bool{}
			pickLive := func() string {
				var ps []string
				for p := range live {
					if !taken[p] {
						ps = append(ps, p)
					}
				}
				slices.Sort(ps)
				if len(ps) == 0 {
					return ""
				}
				return ps[rnd.IntN(len(ps))]
			}
			for step := 0; len(stack) > 0; step++ {
				top := stack[len(stack)-1]
				switch op := rnd.IntN(10); {
				case op < 3 && step < 30: // save or replace
					old := ""
					if rnd.IntN(2) == 0 {
						old = pickLive()
					}
					ch, err := pics.Replace(top.ctx, old, upload(fmt.Sprintf("%d-%d", round, step)))
					require.NoError(t, err)
					top.news = append(top.news, ch.New)
					if old != "" {
						taken[old] = true
						top.olds = append(top.olds, old)
					}
				case op < 4 && step < 30: // delete
					if old := pickLive(); old != "" {
						_, err := pics.Delete(top.ctx, old)
						require.NoError(t, err)
						taken[old] = true
						top.olds = append(top.olds, old)
					}
				case op < 6 && step < 30 && len(stack) < 4: // open a child
					ctx, s := filefield.NewScope(top.ctx)
					stack = append(stack, &frame{ctx: ctx, scope: s})
				case op < 8: // commit
					top.scope.Commit(top.ctx)
					stack = stack[:len(stack)-1]
					if len(stack) == 0 {
						for _, p := range top.news {
							live[p] = true
						}
						for _, p := range top.olds {
							delete(live, p)
						}
					} else {
						parent := stack[len(stack)-1]
						parent.news = append(parent.news, top.news...)
						parent.olds = append(parent.olds, top.olds...)
					}
				default: // roll back
					top.scope.Rollback(top.ctx)
					stack = stack[:len(stack)-1]
					for _, p := range top.olds {
						delete(taken, p)
					}
				}
			}
			want := slices.Sorted(func(yield func(string) bool) {
				for p := range live {
					if !yield(p) {
						return
					}
				}
			})
			if !assert.Equal(t, want, files(t, fsys), "seed %d, round %d", seed, round) {
				return
			}
		}
	})
}

// Errors of the connection at commit leave the outcome unknown; answers
// of the database and requests never sent do not.
func TestCommitErrorClassifies(t *testing.T) {
	t.Parallel()
	answered := errors.New("deferred constraint violated")
	for _, tc := range []struct {
		err     error
		unknown bool
	}{
		{nil, false}, {answered, false}, {sql.ErrTxDone, false}, {driver.ErrBadConn, false},
		{io.EOF, true}, {io.ErrUnexpectedEOF, true}, {fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{&net.OpError{Op: "read", Err: errors.New("timeout")}, true},
		// pgx's connection errors, through database/sql as well: "conn
		// closed" while the commit's answer was awaited, and a lock
		// failure before anything was sent.
		{fmt.Errorf("commit: %w", retryErr{false}), true}, {retryErr{true}, false},
	} {
		err := filefield.CommitError(tc.err)
		assert.Equal(t, tc.unknown, errors.Is(err, filefield.ErrCommitUnknown), "%v", tc.err)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, "the cause stays matchable")
		}
	}
}

// retryErr says whether the request it failed was never sent, as pgx's
// connection errors do.
type retryErr struct{ safe bool }

func (e retryErr) Error() string     { return "conn closed" }
func (e retryErr) SafeToRetry() bool { return e.safe }

// RunInScope with a commit of unknown outcome keeps every file, old and
// new, and later Commit or Rollback calls change nothing.
func TestUnknownCommitKeepsEveryFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		old, err := pics.Save(t.Context(), upload("old"))
		require.NoError(t, err)
		old.Commit(t.Context())
		var ch *filefield.Change
		res, err := filefield.RunInScope(t.Context(), func(ctx context.Context) (func() error, error) {
			ch, err = pics.Replace(ctx, old.New, upload("new"))
			return func() error { return filefield.CommitError(io.ErrUnexpectedEOF) }, err
		})
		require.ErrorIs(t, err, filefield.ErrCommitUnknown)
		assert.Empty(t, res.Deleted)
		assert.ElementsMatch(t, []filefield.Kept{{Path: old.New, Reason: filefield.KeptCommitUnknown}, {Path: ch.New, Reason: filefield.KeptCommitUnknown}}, res.Kept)
		ch.Rollback(t.Context())
		ch.Commit(t.Context())
		assert.ElementsMatch(t, []string{old.New, ch.New}, files(t, fsys))
	})
}

// A child made after its parent rolled back (a misuse) takes nothing in:
// a claimed change stays its maker's rather than being finished with a
// tree that has ended.
func TestChildOfARolledBackScopeGivesBorrowedBack(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	ctx := t.Context()
	a, err := pics.Save(ctx, upload("a"))
	require.NoError(t, err)
	pctx, parent := filefield.NewScope(ctx)
	parent.Rollback(pctx)
	cctx, child := filefield.NewScope(pctx)
	err = child.AddClaimed(pics.Claim(a.New))
	require.ErrorIs(t, err, filefield.ErrScopeEnded)
	child.Commit(cctx)
	assert.Equal(t, []string{a.New}, files(t, fsys), "given back")
	require.Same(t, a, pics.Claim(a.New))
	assert.Equal(t, []string{a.New}, a.Rollback(ctx).Deleted, "its maker's to roll back")
}
