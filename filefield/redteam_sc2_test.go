package filefield_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Found by a second review of the multi-scope rules. Q outer tx; P = savepoint (child of Q) in which the handler Replaces the
// row's file (registration only, no write); C = a nested savepoint (child
// of P) whose statement writes the path (claim) and then rolls back:
// undone is set. P is released: its Commit hands c to Q, and Q.add clears
// undone as if the path had been written again. Q commits and deletes the
// old file, which the row still holds (the only write was rolled back).
func TestHandUpAfterUndoneKeepsRowsOldFile(t *testing.T) {
	ctx := t.Context()
	fsys, f, seed := seededField(t)

	qctx, q := filefield.NewScope(ctx)
	pctx, p := filefield.NewScope(qctx)
	ch, err := f.Replace(pctx, seed.New, upload("new")) // registered in P
	require.NoError(t, err)
	_, c := filefield.NewScope(pctx)
	_, err = c.Add(f.Claim(ch.New), nil) // savepoint C's UPDATE wrote ch.New
	require.NoError(t, err)
	c.Rollback(ctx) // ROLLBACK TO SAVEPOINT C: row holds seed.New
	p.Commit(ctx)   // RELEASE SAVEPOINT P: nothing written in P
	r := q.Commit(ctx)
	t.Logf("outer commit: %+v", r)
	assert.Contains(t, files(t, fsys), seed.New, "the row's old file was deleted: %v", files(t, fsys))
}

// The caller's scope P holds c. An attempt in an independent transaction
// T claims it and rolls back (undone). The retry is an autocommitted
// statement that writes the path: the integration calls CommitEarly. The
// row is committed with ch.New, so seed.New is stale without ambiguity,
// yet CommitEarly finishes as unknown (undone) and keeps it forever.
func TestCommitEarlyAfterFailedAttemptDeletesStaleOld(t *testing.T) {
	ctx := t.Context()
	fsys, f, seed := seededField(t)

	pctx, p := filefield.NewScope(ctx)
	ch, err := f.Replace(pctx, seed.New, upload("new"))
	require.NoError(t, err)
	_, tt := filefield.NewScope(filefield.WithoutScope(ctx))
	_, err = tt.Add(f.Claim(ch.New), nil) // attempt 1 wrote the path
	require.NoError(t, err)
	tt.Rollback(ctx) // attempt 1 rolled back
	got := f.Claim(ch.New)
	require.Same(t, ch, got)  // the retry's statement claims it (held by P)
	r := got.CommitEarly(ctx) // the retry autocommitted the row
	t.Logf("CommitEarly: %+v", r)
	p.Commit(ctx)
	assert.NotContains(t, files(t, fsys), seed.New, "stale old file kept although the row committed the new path: %+v", r)
}

// Two scopes hold the same changes and roll back at the same time. Each
// marks, then each sees the other's mark in heldElsewhere, so both skip
// and call undo; nobody finishes the change, and the new file of a write
// that both transactions rolled back stays (the change stays pending).
func TestConcurrentRollbacksFinishTheChange(t *testing.T) {
	ctx := t.Context()
	for iter := 0; iter < 200; iter++ {
		fsys := afero.NewMemMapFs()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
		actx, a := filefield.NewScope(ctx)
		_, b := filefield.NewScope(filefield.WithoutScope(ctx))
		var chs []*filefield.Change
		for i := 0; i < 100; i++ {
			ch, err := f.Save(actx, upload(fmt.Sprint(i)))
			require.NoError(t, err)
			_, err = b.Add(ch, nil)
			require.NoError(t, err)
			chs = append(chs, ch)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, s := range []*filefield.Scope{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; s.Rollback(context.Background()) }()
		}
		close(start)
		wg.Wait()
		for _, ch := range chs {
			if ok, _ := afero.Exists(fsys, ch.New); ok {
				t.Fatalf("iteration %d: both scopes rolled back, yet %s stays (held=%v)", iter, ch.New, ch.Held())
			}
		}
	}
}

// A child's Rollback racing its parent's Commit: the parent marks the
// child's change with itself, the child then ends first (it sees the
// parent's mark, so undo leaves it), and the parent's takeTree skips the
// ended child. The change is never finished and stays Held() forever (a
// stale finisher), so a later Rollback or Commit by hand only records a
// wish and the pending list keeps it.
func TestChildRollbackRacingParentCommitFinishesTheChange(t *testing.T) {
	ctx := t.Context()
	for iter := 0; iter < 300; iter++ {
		fsys := afero.NewMemMapFs()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
		pctx, parent := filefield.NewScope(ctx)
		cctx, child := filefield.NewScope(pctx)
		ch, err := f.Save(cctx, upload("c"))
		require.NoError(t, err)
		for i := 0; i < 100; i++ { // more children: a wider window between mark and takeTree
			octx, _ := filefield.NewScope(pctx)
			_, err := f.Save(octx, upload(fmt.Sprint(i)))
			require.NoError(t, err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			runtime.Gosched()
			child.Rollback(context.Background())
		}()
		close(start)
		parent.Commit(ctx)
		wg.Wait()
		if f.Claim(ch.New) == ch { // still unfinished although every scope ended
			r := ch.Rollback(ctx)
			t.Fatalf("iteration %d: every scope ended, yet the change is unfinished and held=%v; a Rollback by hand: %+v; claimable again: %v; new file exists: %v",
				iter, ch.Held(), r, f.Claim(ch.New) == ch, exists(fsys, ch.New))
		}
	}
}

// Owner and child both registered; outermost commits with the child still
// open: the change is taken twice and the Result lists its deletion twice.
func TestParentCommitWithOpenChildListsEachFileOnce(t *testing.T) {
	ctx := t.Context()
	_, f, seed := seededField(t)
	pctx, p := filefield.NewScope(ctx)
	ch, err := f.Replace(pctx, seed.New, upload("new"))
	require.NoError(t, err)
	_, c := filefield.NewScope(pctx)
	_, err = c.Add(f.Claim(ch.New), nil)
	require.NoError(t, err)
	r := p.Commit(ctx)
	assert.Len(t, r.Deleted, 1, "%+v", r)
}

func exists(fsys afero.Fs, p string) bool { ok, _ := afero.Exists(fsys, p); return ok }
