package filefield_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// A callback run while a change is being finished (OnEvent, Options.Refs)
// may use the field, other changes and the scopes of the same
// transaction: no lock is held then. Before, the change's lock was held
// across the callbacks, and each of these calls waited on it for good.
func TestCallbacksDuringFinishMayUseFieldAndScopes(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	var pics *filefield.Field
	var during atomic.Pointer[filefield.Change]
	var sawHeld, sawClaim, sawScope atomic.Int32
	var scopeCtx atomic.Value // context.Context of the transaction's scope
	pics = filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1,
		OnEvent: func(e filefield.Event) {
			c := during.Load()
			if c == nil || e.Action != filefield.ActionDelete {
				return
			}
			// The change being finished: asking about it does not wait.
			if !c.Held() {
				sawHeld.Add(1)
			}
			if pics.Claim(c.New) == nil { // finished: off the list
				sawClaim.Add(1)
			}
			// A savepoint of the committing transaction: ended with it.
			ctx := scopeCtx.Load().(context.Context)
			if _, err := pics.Save(ctx, upload("late")); err == filefield.ErrScopeEnded {
				sawScope.Add(1)
			}
			sctx, sp := filefield.NewScope(ctx)
			_ = sctx
			sp.Commit(context.Background())
		}})
	ctx := t.Context()
	old, err := pics.Save(ctx, upload("old"))
	require.NoError(t, err)
	old.Commit(ctx)

	done := make(chan filefield.Result, 1)
	go func() {
		tctx, scope := filefield.NewScope(ctx)
		scopeCtx.Store(tctx)
		ch, err := pics.Replace(tctx, old.New, upload("new"))
		if err != nil {
			done <- filefield.Result{}
			return
		}
		during.Store(ch)
		done <- scope.Commit(tctx)
	}()
	select {
	case r := <-done:
		assert.Equal(t, []string{old.New}, r.Deleted)
	case <-time.After(10 * time.Second):
		t.Fatal("a callback that used the field and the scope during a commit waited for good")
	}
	assert.Equal(t, int32(1), sawHeld.Load(), "the change being finished is held by none")
	assert.Equal(t, int32(1), sawClaim.Load(), "the change being finished is not claimable")
	assert.Equal(t, int32(1), sawScope.Load(), "a Save into the ended transaction is refused")
}

// A Refs callback that reads another change of the field while that one
// is being finished by another goroutine does not wait for it.
func TestRefsCallbackWhileAnotherChangeFinishes(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1,
		Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) {
			entered <- struct{}{}
			<-release
			return false, nil
		})})
	ctx := t.Context()
	o1, err := pics.Save(ctx, upload("o1"))
	require.NoError(t, err)
	o1.Commit(ctx)
	o2, err := pics.Save(ctx, upload("o2"))
	require.NoError(t, err)
	o2.Commit(ctx)
	c1, err := pics.Replace(ctx, o1.New, upload("n1"))
	require.NoError(t, err)
	c2, err := pics.Replace(ctx, o2.New, upload("n2"))
	require.NoError(t, err)

	go c1.Commit(ctx)
	<-entered // c1 is being finished, its Refs blocked
	// c1's own Held and its concurrent Rollback neither wait nor undo it.
	heldDone := make(chan bool, 1)
	go func() { heldDone <- c1.Held() }()
	select {
	case h := <-heldDone:
		assert.False(t, h)
	case <-time.After(10 * time.Second):
		t.Fatal("Held waited for a change's finish")
	}
	assert.Empty(t, c1.Rollback(ctx).Deleted, "a Rollback after a Commit began does nothing")
	close(release)
	r := c2.Commit(ctx)
	assert.Equal(t, []string{o2.New}, r.Deleted)
	// c1's Commit, asked again, waits for the first and returns its result.
	assert.Equal(t, []string{o1.New}, c1.Commit(ctx).Deleted)
	ok, _ := afero.Exists(fsys, c1.New)
	assert.True(t, ok, "the committed change's new file stays")
}
