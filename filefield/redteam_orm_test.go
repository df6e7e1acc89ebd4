package filefield_test

import (
	"context"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Found by a red-team pass (it failed before the fix). A Rollback of a change that runs while the outermost scope
// is committing (after Scope.take, before commitAll reaches the change)
// is no longer "held by an open scope" and deletes the new file of a row
// that committed. The window is opened deterministically from OnEvent,
// which commitAll calls synchronously while committing the first change;
// a goroutine's deferred ch.Rollback hits the same window.
func TestRollbackRacingOuterScopeCommitKeepsNewFile(t *testing.T) {
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	var second *filefield.Change
	fired := false
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) {
		if e.Action == filefield.ActionDelete && second != nil && !fired {
			fired = true
			second.Rollback(context.Background()) // the racing goroutine
		}
	}})
	seed, err := f.Save(ctx, upload("old"))
	require.NoError(t, err)
	seed.Commit(ctx)

	sctx, s := filefield.NewScope(ctx)
	first, err := f.Replace(sctx, seed.New, upload("a"))
	require.NoError(t, err)
	second, err = f.Save(sctx, upload("b"))
	require.NoError(t, err)
	// The transaction committed both rows.
	s.Commit(ctx)
	require.True(t, fired)
	assert.Contains(t, files(t, fsys), first.New)
	assert.Contains(t, files(t, fsys), second.New, "the committed row's new file was deleted: %v", files(t, fsys))
}

// Found by a red-team pass (it failed before the fix). The mirror image: a Commit racing the outermost scope's
// rollback deletes the old file the rolled-back row still points at.
func TestCommitRacingOuterScopeRollbackKeepsOldFile(t *testing.T) {
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	var first *filefield.Change
	fired := false
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) {
		if e.Action == filefield.ActionDelete && first != nil && !fired {
			fired = true
			first.Commit(context.Background()) // the racing goroutine
		}
	}})
	seed, err := f.Save(ctx, upload("old"))
	require.NoError(t, err)
	seed.Commit(ctx)

	sctx, s := filefield.NewScope(ctx)
	first, err = f.Replace(sctx, seed.New, upload("a"))
	require.NoError(t, err)
	_, err = f.Save(sctx, upload("b")) // rolled back first (newest first)
	require.NoError(t, err)
	s.Rollback(ctx)
	require.True(t, fired)
	assert.Contains(t, files(t, fsys), seed.New, "the rolled-back row's old file was deleted: %v", files(t, fsys))
}

// Found by a red-team pass. Scope.Add moves a change that an open scope holds into
// another scope (a child, or an unrelated one): that scope's rollback
// deletes the new file although the scope the change was made in is
// still open and then commits a row holding it. This is what the
// integrations' Claim+Add does (F1/F2 in gormfield and entfield).
func TestAddToChildThenChildRollbackKeepsParentsUpload(t *testing.T) {
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	pctx, parent := filefield.NewScope(ctx)
	ch, err := f.Save(pctx, upload("a"))
	require.NoError(t, err)
	_, child := filefield.NewScope(pctx)
	_, err = child.Add(ch, nil)
	require.NoError(t, err)
	child.Rollback(ctx) // the savepoint that also wrote the path rolled back
	parent.Commit(ctx)  // the parent's own row holding ch.New committed
	assert.Contains(t, files(t, fsys), ch.New)
}
