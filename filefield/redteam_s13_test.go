package filefield_test

// Red team, session 13: scopes and ownership (e259b6a and after).

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

func s13Field(fsys afero.Fs, opts filefield.Options) *filefield.Field {
	if opts.Dir == "" {
		opts.Dir = "pics"
	}
	if opts.PendingTimeout == 0 {
		opts.PendingTimeout = -1
	}
	return filefield.New("pics", fsys, opts)
}

// Loss (found in session 13, fixed). A scope made from a context that carries a child scope
// which has committed already (a savepoint released; its context captured
// by a closure, or a helper run again with it) is a grandchild whose
// parent is no longer pending. Save refuses such a context (ended() walks
// the ancestors), but Scope.Add, the README's way to register an upload
// made before the transaction, only checks the scope itself. When the
// grandchild commits, its parent refuses the hand-over, and the fallback
// in Scope.Commit finishes the change "as the parent finished": committed,
// which deletes the old file now, although the root transaction has not
// committed. The root then rolls back and the row holds the deleted file.
func TestS13AddUnderReleasedSavepointDeletesBeforeRootCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	ch, err := f.Replace(ctx, old, upload("new")) // made before the transaction
	require.NoError(t, err)

	rctx, root := filefield.NewScope(ctx) // the transaction
	cctx, child := filefield.NewScope(rctx)
	child.Commit(cctx) // a savepoint released; cctx lives on

	var addErr error
	_, err = filefield.RunInScope(cctx, func(sctx context.Context) (func() error, error) {
		_, addErr = filefield.ScopeFrom(sctx).Add(ch, nil) // README pattern
		return func() error { return nil }, nil            // RELEASE SAVEPOINT
	})
	require.NoError(t, err)
	assert.Contains(t, files(t, fsys), old, "deleted before the root transaction ended (Add said %v)", addErr)

	root.Rollback(rctx) // the transaction rolls back: the row holds old
	assert.Contains(t, files(t, fsys), old, "the row's file is gone")
}

// Error swallowed (found in session 13, same cause as above; fixed). Add and AddClaimed on a
// scope whose ancestor has ended accept the change, where Save on the same
// context says ErrScopeEnded ("a change made then would belong to no
// transaction").
func TestS13AddUnderEndedAncestorIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	rctx, root := filefield.NewScope(ctx)
	root.Rollback(rctx)
	cctx, child := filefield.NewScope(rctx)

	_, err := f.Save(cctx, upload("a"))
	require.ErrorIs(t, err, filefield.ErrScopeEnded, "Save refuses")

	ch, err := f.Save(ctx, upload("b"))
	require.NoError(t, err)
	_, err = child.Add(ch, nil)
	assert.ErrorIs(t, err, filefield.ErrScopeEnded, "Add accepts into a dead tree")
	err = child.AddClaimed(ch)
	assert.ErrorIs(t, err, filefield.ErrScopeEnded, "AddClaimed accepts into a dead tree")
}

// Loss (found in session 13, edge; fixed). RunInScope treats a panic from the commit
// function like a panic of work: it rolls the scope back, deleting the
// new file. A commit that panics may have committed (here it did: a
// post-commit hook, a logging wrapper, a driver bug after COMMIT was
// answered); its outcome is unknown, and the row now points at a deleted
// file. ErrCommitUnknown's rule (keep every file) would be the safe one.
func TestS13RunInScopeCommitPanicAfterCommitKeepsNewFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	var row string
	func() {
		defer func() { _ = recover() }()
		_, _ = filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
			ch, err := f.Replace(ctx, old, upload("new"))
			if err != nil {
				return nil, err
			}
			pendingRow := ch.New
			return func() error {
				row = pendingRow // COMMIT answered OK
				panic("after-commit hook")
			}, nil
		})
	}()
	require.NotEmpty(t, row)
	assert.Contains(t, files(t, fsys), row, "the committed row's new file was deleted")
	assert.Contains(t, files(t, fsys), old)
}

// Error swallowed (found in session 13, low; fixed: ErrRolledBack). AddClaimed of a change that has
// finished (its maker rolled it back between the integration's Claim and
// its AddClaimed, deleting the new file) returns nil: the integration
// cannot tell that the row it is committing points at a deleted file.
func TestS13AddClaimedOfRolledBackChangeIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	ch, err := f.Save(ctx, upload("new"))
	require.NoError(t, err)
	c := f.Claim(ch.New) // the statement wrote ch.New
	require.Same(t, ch, c)
	ch.Rollback(ctx) // the maker gives up meanwhile
	require.NotContains(t, files(t, fsys), ch.New)
	_, s := filefield.NewScope(ctx)
	err = s.AddClaimed(c)
	assert.ErrorIs(t, err, filefield.ErrRolledBack, "the claimed change is finished and its file gone; nothing says so")
	_, err = s.Add(ch, nil)
	assert.ErrorIs(t, err, filefield.ErrRolledBack, "Add says so too")
	s.Commit(ctx)
}

// Loss (found in session 13, fixed). The README's Quick start stores the upload before the
// transaction and registers it with ScopeFrom(ctx).Add(ch, nil), ignoring
// Add's results. A transaction retried after a serialization failure (the
// usual loop around WithTx) runs that callback again: the first attempt's
// rollback owned ch and deleted its file; the second attempt's Add of the
// finished change returns nil, the row is written with ch.New and
// commits, pointing at a deleted file. Add should refuse a finished change
// (the error is swallowed), or a change taken by Add should not be
// deleted while its maker may retry.
func TestS13RetriedTransactionReAddsDeletedUpload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	ch, err := f.Replace(ctx, old, upload("new")) // before the transaction
	require.NoError(t, err)
	defer ch.Rollback(ctx)

	row := old
	errSerialization := errors.New("40001 could not serialize access")
	var addErrs []error
	for attempt := 0; attempt < 2; attempt++ {
		pending := row
		_, err = filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
			_, err := filefield.ScopeFrom(ctx).Add(ch, nil)
			addErrs = append(addErrs, err)
			if err != nil {
				return nil, err
			}
			pending = ch.New // UPDATE users SET picture = ch.New
			return func() error {
				if attempt == 0 {
					return errSerialization
				}
				row = pending
				return nil
			}, nil
		})
		if err == nil {
			break
		}
	}
	if row == ch.New {
		assert.Contains(t, files(t, fsys), ch.New, "the committed row's file was deleted by the first attempt; Add said %v", addErrs)
	}
	assert.Contains(t, files(t, fsys), row)
}

// Held. A scope ended twice, both orders, and a change's Commit/Rollback
// after its scope ended: the first end decides.
func TestS13ScopeEndedTwiceFirstWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)

	sctx, s := filefield.NewScope(ctx)
	ch, err := f.Replace(sctx, old, upload("a"))
	require.NoError(t, err)
	s.Rollback(ctx)
	assert.Equal(t, filefield.Result{}, s.Commit(ctx))
	assert.Equal(t, filefield.Result{}, ch.Commit(ctx), "commit after the scope rolled it back")
	assert.Equal(t, []string{old}, files(t, fsys))

	sctx, s = filefield.NewScope(ctx)
	ch, err = f.Replace(sctx, old, upload("b"))
	require.NoError(t, err)
	s.Commit(ctx)
	s.Rollback(ctx)
	s.End(ctx, errors.New("late"))
	ch.Rollback(ctx)
	assert.Equal(t, []string{ch.New}, files(t, fsys))
}

// Held. A child savepoint that rolled back after its parent committed (a
// misuse) does nothing; a child rolled back while its parent is open, and
// the parent then committing, keeps the parent's old only if a row may
// hold it.
func TestS13ChildEndsAfterParent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	pctx, p := filefield.NewScope(ctx)
	cctx, c := filefield.NewScope(pctx)
	ch, err := f.Replace(cctx, old, upload("a"))
	require.NoError(t, err)
	p.Commit(ctx) // commits the open child's change too
	assert.Equal(t, filefield.Result{}, c.Rollback(ctx))
	assert.Equal(t, []string{ch.New}, files(t, fsys))
}

// Held. Give-back, then a second transaction that writes the path and
// commits: the row of the second holds the new file, which stays; the
// maker's later Rollback does nothing to it.
func TestS13GivenBackThenClaimedAndCommittedByAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	old := seedRow(t, f)
	ch, err := f.Replace(ctx, old, upload("new"))
	require.NoError(t, err)

	_, a := filefield.NewScope(ctx)
	require.NoError(t, a.AddClaimed(f.Claim(ch.New)))
	r := a.Rollback(ctx)
	assert.Contains(t, r.Kept, filefield.Kept{Path: ch.New, Reason: filefield.KeptGivenBack})

	_, b := filefield.NewScope(ctx)
	c := f.Claim(ch.New)
	require.Same(t, ch, c)
	require.NoError(t, b.AddClaimed(c))
	ch.Rollback(ctx) // the maker gives up: only a wish while b holds it
	b.Commit(ctx)
	ch.Rollback(ctx)
	assert.Contains(t, files(t, fsys), ch.New)
	assert.Contains(t, files(t, fsys), old, "the maker's rollback wish keeps both")
}

// Held. Two claimers of one unowned upload, both register before any end;
// whichever order they end in, a committed row's file stays.
func TestS13TwoClaimersAnyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, order := range []string{"commit-first", "rollback-first"} {
		fsys := afero.NewMemMapFs()
		f := s13Field(fsys, filefield.Options{})
		old := seedRow(t, f)
		ch, err := f.Replace(ctx, old, upload("new"))
		require.NoError(t, err)
		_, a := filefield.NewScope(ctx)
		_, b := filefield.NewScope(ctx)
		require.NoError(t, a.AddClaimed(f.Claim(ch.New)))
		require.NoError(t, b.AddClaimed(f.Claim(ch.New)))
		if order == "commit-first" {
			a.Commit(ctx)
			b.Rollback(ctx)
		} else {
			b.Rollback(ctx)
			a.Commit(ctx)
		}
		ch.Rollback(ctx) // the maker's deferred rollback
		assert.Contains(t, files(t, fsys), ch.New, order)
	}
}

// Held. Refs erroring, Refs saying referenced, keep mode, protected
// directory globs (any case) and companions that are protected, unsafe
// or the default: nothing of those is deleted on Commit.
func TestS13KeepRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	errRefs := errors.New("db down")
	for _, tc := range []struct {
		name string
		opts filefield.Options
		old  string
	}{
		{"refs error", filefield.Options{Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, errRefs })}, ""},
		{"refs used", filefield.Options{Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return true, nil })}, ""},
		{"keep", filefield.Options{Keep: true}, ""},
		{"protected dir", filefield.Options{Protected: []string{"pics/keep"}}, "pics/keep/a.png"},
		{"protected dir case", filefield.Options{Protected: []string{"pics/keep/**"}}, "pics/KEEP/a.png"},
		{"default case", filefield.Options{Default: "/pics/default.png"}, "pics/Default.PNG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := afero.NewMemMapFs()
			f := s13Field(fsys, tc.opts)
			old := tc.old
			if old == "" {
				old = seedRow(t, s13Field(fsys, filefield.Options{}))
			} else {
				require.NoError(t, afero.WriteFile(fsys, old, png("o"), 0o644))
			}
			sctx, s := filefield.NewScope(ctx)
			_, err := f.Replace(sctx, old, upload("new"))
			require.NoError(t, err)
			r := s.Commit(ctx)
			assert.Contains(t, files(t, fsys), old, "%+v", r)
			assert.Empty(t, r.Deleted)
		})
	}

	// Companions that must stay, with a main file that goes.
	fsys := afero.NewMemMapFs()
	for _, p := range []string{"pics/default.png", "thumbs/keep/x.png", "pics/x"} {
		require.NoError(t, afero.WriteFile(fsys, p, []byte("k"), 0o644))
	}
	f := s13Field(fsys, filefield.Options{Default: "pics/default.png", Protected: []string{"thumbs/keep/**"},
		Companions: func(string) []string {
			return []string{"PICS/DEFAULT.png", "thumbs/Keep/x.png", "../pics/x", "/pics/x", "pics/./x", "pics//x", ""}
		}})
	old := seedRow(t, s13Field(fsys, filefield.Options{}))
	sctx, s := filefield.NewScope(ctx)
	_, err := f.Replace(sctx, old, upload("new"))
	require.NoError(t, err)
	r := s.Commit(ctx)
	assert.Equal(t, []string{old}, r.Deleted, "%+v", r)
	got := files(t, fsys)
	for _, p := range []string{"pics/default.png", "thumbs/keep/x.png", "pics/x"} {
		assert.Contains(t, got, p)
	}
}

// Held. Concurrent makers, claimers and ends on one Field (run with
// -race): each upload is claimed by two transactions before either ends,
// ends happen concurrently in random order; a committed row's file is
// never deleted.
func TestS13ConcurrentClaimersOnOneField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{})
	const n = 24
	type job struct {
		ch   *filefield.Change
		a, b *filefield.Scope
	}
	jobs := make([]job, n)
	for i := range jobs {
		ch, err := f.Save(ctx, upload("u"+string(rune('a'+i))))
		require.NoError(t, err)
		_, a := filefield.NewScope(ctx)
		_, b := filefield.NewScope(ctx)
		require.NoError(t, a.AddClaimed(f.Claim(ch.New)))
		require.NoError(t, b.AddClaimed(f.Claim(ch.New)))
		jobs[i] = job{ch, a, b}
	}
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(3)
		go func() { defer wg.Done(); j.a.Commit(ctx) }()
		go func() { defer wg.Done(); j.b.Rollback(ctx) }()
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				j.ch.Rollback(ctx)
			} else {
				j.ch.Commit(ctx)
			}
		}()
	}
	wg.Wait()
	got := files(t, fsys)
	for _, j := range jobs {
		assert.Contains(t, got, j.ch.New, "a committed (scope a) row's file")
	}
}

// Liveness (found in session 13, leak only; fixed: every change finishes, then the panic goes on). Options.Refs panics on the first old file
// a scope's commit asks about (a nil map in the checker, a driver panic).
// The panic leaves Scope.Commit halfway: the scope is committed, the
// remaining changes are never finished, and since the ended scope's
// finishing mark stays on them they count as held for good: their
// maker's Commit only records a wish and their old files stay. The panic
// also reaches WithTx's caller after the database committed.
func TestS13RefsPanicLeavesLaterChangesHeldForever(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	calls := 0
	f := s13Field(fsys, filefield.Options{Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) {
		calls++
		if calls == 1 {
			panic("refs checker bug")
		}
		return false, nil
	})})
	seed := s13Field(fsys, filefield.Options{})
	old1, old2 := seedRow(t, seed), seedRow(t, seed)
	sctx, s := filefield.NewScope(ctx)
	_, err := f.Replace(sctx, old1, upload("a"))
	require.NoError(t, err)
	c2, err := f.Replace(sctx, old2, upload("b"))
	require.NoError(t, err)
	assert.Panics(t, func() { s.Commit(ctx) })
	c2.Commit(ctx) // the maker finishes what the scope left
	assert.False(t, c2.Held(), "no open scope holds it any more")
	assert.NotContains(t, files(t, fsys), old2, "the second change was never finished")
}

// Held. HashNames: two makers store identical bytes in no scope (one file);
// a transaction claims the first and rolls back (given back), the second
// maker commits its row, the first gives up: the shared file stays
// (no Refs: never deleted).
func TestS13HashNamesGiveBackSharedFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := s13Field(fsys, filefield.Options{HashNames: true})
	c1, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	c2, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	require.Equal(t, c1.New, c2.New)
	_, a := filefield.NewScope(ctx)
	require.NoError(t, a.AddClaimed(f.Claim(c1.New)))
	a.Rollback(ctx)
	c2.Commit(ctx)
	c1.Rollback(ctx)
	assert.Contains(t, files(t, fsys), c1.New)
}

// A savepoint released while a savepoint inside it is still open (a
// misuse: the inner one's context outlived its parent's release). The
// inner one then commits: its change goes up to the transaction's scope,
// the nearest one still open, and follows that scope's end. Before
// session 13 it was finished as the released parent had finished,
// committed, which deleted the old file before the transaction ended.
func TestS13InnerSavepointCommittingAfterItsParentGoesToTheRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, commitRoot := range []bool{false, true} {
		fsys := afero.NewMemMapFs()
		f := s13Field(fsys, filefield.Options{})
		old := seedRow(t, f)
		rctx, root := filefield.NewScope(ctx)
		pctx, parent := filefield.NewScope(rctx)
		gctx, inner := filefield.NewScope(pctx)
		ch, err := f.Replace(gctx, old, upload("new"))
		require.NoError(t, err)
		parent.Commit(pctx) // released first
		inner.Commit(gctx)
		assert.ElementsMatch(t, []string{old, ch.New}, files(t, fsys), "nothing finished before the transaction ends")
		if commitRoot {
			res := root.Commit(rctx)
			assert.Equal(t, []string{old}, res.Deleted)
			assert.Equal(t, []string{ch.New}, files(t, fsys))
		} else {
			root.Rollback(rctx)
			assert.Equal(t, []string{old}, files(t, fsys), "the new file goes with the transaction's rollback")
		}
	}
}
