package filefield_test

// Review, session 13: probes of the scope fixes (give-back by Add,
// ErrRolledBack, handOver, finishEach).

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Held. A change made in scope A (owned) and Added to an unrelated
// transaction's scope B: B commits (its row holds New): New stays, Old
// goes; A's later rollback deletes nothing. And B rolls back while A is
// open, then A rolls back: New goes, Old stays.
func TestS13ReviewMadeInOneScopeAddedToAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, bCommits := range []bool{true, false} {
		fsys := afero.NewMemMapFs()
		f := s13Field(fsys, filefield.Options{})
		old := seedRow(t, f)
		actx, a := filefield.NewScope(ctx)
		ch, err := f.Replace(actx, old, upload("new"))
		require.NoError(t, err)
		_, b := filefield.NewScope(ctx)
		_, err = b.Add(ch, nil)
		require.NoError(t, err)
		if bCommits {
			b.Commit(ctx)
			a.Rollback(ctx)
			ch.Rollback(ctx)
			assert.Equal(t, []string{ch.New}, files(t, fsys))
		} else {
			b.Rollback(ctx)
			assert.ElementsMatch(t, []string{old, ch.New}, files(t, fsys), "A still holds it")
			a.Rollback(ctx)
			assert.Equal(t, []string{old}, files(t, fsys))
		}
	}
}

// Held. An upload made in no scope, Added in a savepoint (child) of the
// transaction: the savepoint releases, the transaction rolls back: the
// upload is given back (kept, pending), Claim finds it, a retry commits
// it, and the handler's deferred Rollback then deletes nothing.
func TestS13ReviewAddInChildThenRootRollsBackThenRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	ch, err := f.Replace(ctx, old, upload("new"))
	require.NoError(t, err)
	rctx, root := filefield.NewScope(ctx)
	_, child := filefield.NewScope(rctx)
	_, err = child.Add(ch, nil)
	require.NoError(t, err)
	child.Commit(ctx)
	r := root.Rollback(ctx)
	assert.Contains(t, r.Kept, filefield.Kept{Path: ch.New, Reason: filefield.KeptGivenBack})
	assert.Same(t, ch, f.Claim(ch.New))
	_, retry := filefield.NewScope(ctx)
	_, err = retry.Add(ch, nil)
	require.NoError(t, err)
	retry.Commit(ctx)
	ch.Rollback(ctx)
	assert.Equal(t, []string{ch.New}, files(t, fsys))
}

// Held. Add of a change made in the root, in a child savepoint that
// rolls back; the root commits without writing it again: both files
// stay (the row may hold either).
func TestS13ReviewAddInChildOfMakersScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	rctx, root := filefield.NewScope(ctx)
	ch, err := f.Replace(rctx, old, upload("new"))
	require.NoError(t, err)
	_, child := filefield.NewScope(rctx)
	_, err = child.Add(ch, nil)
	require.NoError(t, err)
	child.Rollback(ctx)
	root.Commit(ctx)
	ch.Rollback(ctx)
	assert.ElementsMatch(t, []string{old, ch.New}, files(t, fsys))
}

// Held. OnEvent panics on the first event of a Rollback: every change
// is still finished (new files of owned ones gone, the unowned one given
// back and pending), then the panic goes on.
func TestS13ReviewOnEventPanicDuringRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	var armed atomic.Bool
	f := s13Field(fsys, filefield.Options{OnEvent: func(filefield.Event) {
		if armed.CompareAndSwap(true, false) {
			panic("hook")
		}
	}})
	old := seedRow(t, f)
	given, err := f.Replace(ctx, old, upload("given"))
	require.NoError(t, err)
	sctx, s := filefield.NewScope(ctx)
	_, err = s.Add(given, nil)
	require.NoError(t, err)
	c1, err := f.Save(sctx, upload("a"))
	require.NoError(t, err)
	c2, err := f.Save(sctx, upload("b"))
	require.NoError(t, err)
	armed.Store(true)
	assert.Panics(t, func() { s.Rollback(ctx) })
	got := files(t, fsys)
	assert.NotContains(t, got, c1.New)
	assert.Contains(t, got, old)
	assert.Contains(t, got, given.New, "given back")
	assert.False(t, c2.Held())
	assert.Same(t, given, f.Claim(given.New))
	given.Rollback(ctx)
	assert.NotContains(t, files(t, fsys), given.New)
}

// Held (run with -race). A savepoint's release races the root's commit
// or rollback: on commit the new file stays (and the handler's deferred
// Rollback deletes nothing); on rollback the old file stays.
func TestS13ReviewHandOverRacesRootEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for i := range 200 {
		commit := i%2 == 0
		fsys := afero.NewMemMapFs()
		f := s13Field(fsys, filefield.Options{})
		old := seedRow(t, f)
		pre, err := f.Save(ctx, upload("pre"))
		require.NoError(t, err)
		rctx, root := filefield.NewScope(ctx)
		cctx, child := filefield.NewScope(rctx)
		ch, err := f.Replace(cctx, old, upload("new"))
		require.NoError(t, err)
		_, err = child.Add(pre, nil)
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() { child.Commit(ctx) })
		wg.Go(func() {
			if commit {
				root.Commit(ctx)
			} else {
				root.Rollback(ctx)
			}
		})
		wg.Wait()
		ch.Rollback(ctx)
		got := files(t, fsys)
		if commit {
			pre.Rollback(ctx)
			got = files(t, fsys)
			require.Contains(t, got, ch.New, "iteration %d", i)
			require.Contains(t, got, pre.New, "iteration %d", i)
		} else {
			require.Contains(t, got, old, "iteration %d", i)
		}
	}
}
