package filefield_test

// From a review of the per-tree undone mark, ErrScopeEnded in Replace and
// KeptAbandoned; the first two tests and the last failed before their
// fixes.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

func seedRow(t *testing.T, f *filefield.Field) string {
	t.Helper()
	seed, err := f.Save(context.Background(), upload("old"))
	require.NoError(t, err)
	seed.Commit(context.Background())
	return seed.New
}

// Liveness: another transaction (tx B) registered the upload (its
// statement wrote ch.New) and then rolled back as a whole. A root's
// rollback undoes every row of its tree, so its tree can hold neither
// file; yet undo() marks the change with tx B's root, and since no scope
// of an ended tree can ever register again, the mark is permanent. Tx A,
// which made the change and wrote its path (registered again, a retry
// that per the doc clears "this tree's" mark), then commits: the old file
// is stale (no row holds it) and must go. Before the per-tree mark, tx
// A's write cleared the (single) mark; with it, the old file was kept as
// commit_unknown for ever, until a tree that rolls back whole took its
// marks off.
func TestRootRollbackOfAnotherTxDoesNotPinTheOldFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	row := seedRow(t, f)

	actx, txA := filefield.NewScope(ctx)
	ch, err := f.Replace(actx, row, upload("new"))
	require.NoError(t, err)

	// tx B writes ch.New into a row of its own, then rolls back entirely.
	_, txB := filefield.NewScope(ctx)
	c := f.Claim(ch.New)
	require.NotNil(t, c)
	_, err = txB.Add(c, nil)
	require.NoError(t, err)
	txB.Rollback(ctx)

	// tx A writes ch.New into row 1 (the ORM claims it into its scope).
	if c := f.Claim(ch.New); c != nil {
		_, err = txA.Add(c, nil)
		require.NoError(t, err)
	}
	r := txA.Commit(ctx)
	assert.Contains(t, files(t, fsys), ch.New)
	assert.NotContains(t, files(t, fsys), row, "tx A committed row 1 = new; the old file is stale but kept for good: %+v", r.Kept)
}

// Same, with the other transaction's write in a savepoint that rolled
// back and then the whole other transaction rolled back.
func TestSavepointThenRootRollbackOfAnotherTxDoesNotPinTheOldFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	row := seedRow(t, f)

	actx, txA := filefield.NewScope(ctx)
	ch, err := f.Replace(actx, row, upload("new"))
	require.NoError(t, err)

	bctx, txB := filefield.NewScope(ctx)
	_, sp := filefield.NewScope(bctx)
	_, err = sp.Add(f.Claim(ch.New), nil)
	require.NoError(t, err)
	sp.Rollback(ctx)
	txB.Rollback(ctx)

	_, err = txA.Add(f.Claim(ch.New), nil)
	require.NoError(t, err)
	txA.Commit(ctx)
	assert.NotContains(t, files(t, fsys), row, "the old file of tx A's committed change is kept for good")
}

// Safety within a tree: the savepoint that wrote the path again (the
// retry that cleared the mark) itself rolls back: the mark must come
// back, and the root's commit must keep the old file row 1 holds.
func TestRetryInSavepointThatRollsBackRestoresMark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, depth := range []int{1, 2, 3} {
		fsys := afero.NewMemMapFs()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
		row := seedRow(t, f)

		pctx, parent := filefield.NewScope(ctx)
		ch, err := f.Replace(pctx, row, upload("new"))
		require.NoError(t, err)
		_, sp1 := filefield.NewScope(pctx)
		_, err = sp1.Add(ch, nil)
		require.NoError(t, err)
		sp1.Rollback(ctx) // row 1 = old

		// Retry: a savepoint, nested depth deep, writes ch.New and the
		// outermost of them rolls back (the innermost released first).
		sctx, sp2 := filefield.NewScope(pctx)
		inner := []*filefield.Scope{sp2}
		ictx := sctx
		for range depth - 1 {
			var s *filefield.Scope
			ictx, s = filefield.NewScope(ictx)
			inner = append(inner, s)
		}
		_, err = inner[len(inner)-1].Add(f.Claim(ch.New), nil)
		require.NoError(t, err)
		for i := len(inner) - 1; i >= 1; i-- {
			inner[i].Commit(ctx)
		}
		sp2.Rollback(ctx) // row 1 = old again

		// Another transaction's open scope holds the change too.
		_, txB := filefield.NewScope(ctx)
		_, _ = txB.Add(ch, nil)

		parent.Commit(ctx)
		assert.Contains(t, files(t, fsys), row, "depth %d: row 1 holds the old file", depth)
		txB.Rollback(ctx)
		assert.Contains(t, files(t, fsys), row, "depth %d: row 1 holds the old file", depth)
	}
}

// Two roots share the change: tx B's savepoint rolled back (mark B), tx
// A wrote the path (must not clear mark B), then B commits without
// writing again: row of B holds what it held before its savepoint, so
// the commit by B must keep both.
func TestTwoRootsMarkNotClearedByOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	row := seedRow(t, f)

	bctx, txB := filefield.NewScope(ctx)
	ch, err := f.Replace(bctx, row, upload("new"))
	require.NoError(t, err)
	_, sp := filefield.NewScope(bctx)
	_, _ = sp.Add(ch, nil)
	sp.Rollback(ctx) // B's row = old

	_, txA := filefield.NewScope(ctx)
	_, _ = txA.Add(f.Claim(ch.New), nil)
	_, spA := filefield.NewScope(ctx) // unrelated root too
	_, _ = spA.Add(ch, nil)
	spA.Commit(ctx) // commits the change: must keep old (B's mark)
	txA.Commit(ctx)
	txB.Commit(ctx)
	assert.Contains(t, files(t, fsys), row, "B's committed row holds the old file")
}

// ErrScopeEnded path: no pending entry is left (Claim finds nothing),
// the new file is removed, and exactly one store and one delete event
// are reported for it.
func TestReplaceScopeEndedLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	var mu sync.Mutex
	var evs []filefield.Event
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: 30 * time.Millisecond,
		OnEvent: func(e filefield.Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }})
	row := seedRow(t, f)
	mu.Lock()
	evs = nil
	mu.Unlock()

	sctx, scope := filefield.NewScope(ctx)
	release := make(chan struct{})
	body, sent := slowBody("new", release)
	done := make(chan error, 1)
	var ch *filefield.Change
	go func() {
		var err error
		ch, err = f.Replace(sctx, row, filefield.Upload{Body: body, Name: "n.png"})
		done <- err
	}()
	<-sent
	scope.Rollback(ctx)
	close(release)
	require.ErrorIs(t, <-done, filefield.ErrScopeEnded)
	assert.Nil(t, ch)
	assert.Equal(t, []string{row}, files(t, fsys))
	time.Sleep(100 * time.Millisecond) // no abandon report for it
	mu.Lock()
	defer mu.Unlock()
	var stores, deletes, others int
	var stored string
	for _, e := range evs {
		switch e.Action {
		case filefield.ActionStore:
			stores++
			stored = e.Path
		case filefield.ActionDelete:
			deletes++
		default:
			others++
		}
	}
	assert.Equal(t, 1, stores)
	assert.Equal(t, 1, deletes)
	assert.Equal(t, 0, others, "%+v", evs)
	assert.Nil(t, f.Claim(stored), "a pending entry was left for the removed upload")
}

// A change abandoned (timeout) while an open scope holds it is not
// forgotten: the scope's rollback must delete the new file.
func TestAbandonedWhileHeldRollbackDeletes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	abandoned := make(chan struct{}, 4)
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: 20 * time.Millisecond,
		OnEvent: func(e filefield.Event) {
			if e.Action == filefield.ActionAbandon {
				abandoned <- struct{}{}
			}
		}})
	row := seedRow(t, f)
	sctx, s := filefield.NewScope(ctx)
	ch, err := f.Replace(sctx, row, upload("new"))
	require.NoError(t, err)
	<-abandoned
	s.Rollback(ctx)
	ch.Rollback(ctx)
	assert.NotContains(t, files(t, fsys), ch.New, "the rolled-back upload's file stays")

	// Held by a child savepoint that committed into its open parent.
	pctx, p := filefield.NewScope(ctx)
	cctx, c := filefield.NewScope(pctx)
	ch2, err := f.Replace(cctx, row, upload("new2"))
	require.NoError(t, err)
	c.Commit(ctx)
	<-abandoned
	p.Rollback(ctx)
	assert.NotContains(t, files(t, fsys), ch2.New, "the rolled-back upload's file stays")
}

// A change claimed into a scope (Claim took it off the list; the
// integration is about to Add it) that times out in between: the scope
// holds it, so its Commit would finish it. The scope rolls back instead,
// and an upload made outside any scope is its maker's again (the maker
// may retry): its file stays. Reported abandoned already, it is not put
// back on the list (it would stay there for good), and its maker's
// Rollback keeps the file too, for the orphan finder.
func TestClaimedThenAbandonedThenScopeRollbackKeepsFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	abandoned := make(chan struct{}, 4)
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: 20 * time.Millisecond,
		OnEvent: func(e filefield.Event) {
			if e.Action == filefield.ActionAbandon {
				abandoned <- struct{}{}
			}
		}})
	ch, err := f.Save(ctx, upload("new"))
	require.NoError(t, err)
	c := f.Claim(ch.New) // the statement writes ch.New; the integration claims it
	require.NotNil(t, c)
	<-abandoned // a slow statement: the timeout fires before Add
	_, s := filefield.NewScope(ctx)
	err = s.AddClaimed(c)
	require.NoError(t, err)
	r := s.Rollback(ctx) // the row's transaction rolled back
	assert.Equal(t, []filefield.Kept{{Path: ch.New, Reason: filefield.KeptGivenBack}}, r.Kept)
	assert.Nil(t, f.Claim(ch.New), "not put back: reported already")
	assert.Equal(t, []filefield.Kept{{Path: ch.New, Reason: filefield.KeptAbandoned}}, ch.Rollback(ctx).Kept)
	assert.Contains(t, files(t, fsys), ch.New)
}
