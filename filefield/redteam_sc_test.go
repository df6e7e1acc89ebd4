package filefield_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Found by a red-team pass of the multi-scope rules. Core form of the gormfield finding: the upload is made in the parent,
// a savepoint (child) claims it and rolls back, nobody writes the path
// again, the parent commits. The row still holds the old path; the
// parent's commit deletes it. (The mirror, where the parent rewrites the
// path, is TestAddToChildThenChildRollbackKeepsParentsUpload: filefield
// cannot tell the two apart, so only keeping both files is safe.)
func TestChildRollbackThenParentCommitKeepsOld(t *testing.T) {
	ctx := t.Context()
	fsys, f, seed := seededField(t)

	pctx, parent := filefield.NewScope(ctx)
	ch, err := f.Replace(pctx, seed.New, upload("new"))
	require.NoError(t, err)
	_, child := filefield.NewScope(pctx)
	_, err = child.Add(ch, nil) // the savepoint's statement wrote ch.New
	require.NoError(t, err)
	child.Rollback(ctx) // ROLLBACK TO SAVEPOINT: the row holds seed.New again
	r := parent.Commit(ctx)
	t.Logf("parent commit: %+v", r)
	assert.Contains(t, files(t, fsys), seed.New, "the row's old file was deleted: %v", files(t, fsys))
}

// A change's Rollback racing the outermost scope's Commit while the
// change sits in a still-open child: takeMarking sets the parent's state
// before it marks the children's changes, so in between the child is
// "ended" (its parent is) and its change is not marked finishing: the
// racing Rollback acts at once and deletes the new file of a row that
// committed. Many children widen the window.
func TestRollbackRacingParentCommitWithOpenChildKeepsNewFile(t *testing.T) {
	ctx := t.Context()
	for iter := 0; iter < 300; iter++ {
		fsys := afero.NewMemMapFs()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
		pctx, parent := filefield.NewScope(ctx)
		var last *filefield.Change
		for i := 0; i < 40; i++ {
			cctx, _ := filefield.NewScope(pctx)
			for j := 0; j < 5; j++ {
				ch, err := f.Save(cctx, upload(fmt.Sprint(i, "-", j)))
				require.NoError(t, err)
				last = ch
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := 0; k < 200; k++ {
				last.Rollback(context.Background()) // a deferred Rollback in another goroutine
			}
		}()
		close(start)
		parent.Commit(ctx) // the transaction committed every savepoint's rows
		wg.Wait()
		if ok, _ := afero.Exists(fsys, last.New); !ok {
			t.Fatalf("iteration %d: the committed row's new file %s was deleted", iter, last.New)
		}
	}
}

// The same change in two unrelated scopes: the caller's (P) and an
// independent transaction's (S, which claimed it: its row holds the new
// path). S commits; while its commitAll is on an earlier change, P rolls
// back (another goroutine of the handler failed). heldElsewhere(P) sees S
// as not open (it has committed) and ignores that S is finishing the
// change, so P rolls it back and deletes the new file of S's committed
// row. The window is opened deterministically from OnEvent, as in
// TestRollbackRacingOuterScopeCommitKeepsNewFile.
func TestUnrelatedScopeRollbackRacingCommitKeepsNewFile(t *testing.T) {
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	var p *filefield.Scope
	fired := false
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) {
		if e.Action == filefield.ActionDelete && p != nil && !fired {
			fired = true
			p.Rollback(context.Background()) // the racing goroutine
		}
	}})
	seed, err := f.Save(ctx, upload("old"))
	require.NoError(t, err)
	seed.Commit(ctx)

	pctx, pp := filefield.NewScope(ctx)
	ch, err := f.Save(pctx, upload("new")) // the caller's upload
	require.NoError(t, err)
	sctx, s := filefield.NewScope(filefield.WithoutScope(ctx))
	_, err = f.Delete(sctx, seed.New) // S's first change: deletes something
	require.NoError(t, err)
	_, err = s.Add(f.Claim(ch.New), nil) // S's statement wrote ch.New
	require.NoError(t, err)
	p = pp
	s.Commit(ctx) // S's transaction committed the row holding ch.New
	require.True(t, fired)
	assert.Contains(t, files(t, fsys), ch.New, "S's committed row points at a deleted file: %v", files(t, fsys))
}

// seededField returns a field on a fresh MemMapFs, and the committed
// change of a first upload, whose path a row holds.
func seededField(t *testing.T) (afero.Fs, *filefield.Field, *filefield.Change) {
	t.Helper()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	seed, err := f.Save(t.Context(), upload("old"))
	require.NoError(t, err)
	seed.Commit(t.Context())
	return fsys, f, seed
}
