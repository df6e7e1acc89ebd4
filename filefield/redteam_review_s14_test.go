package filefield_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// review s14: the public-API form of
// TestReviewS14RollbackInChildHandOverWindowAfterParentEnds. A child
// scope (a savepoint) commits on its goroutine while the parent (the
// transaction, committed) commits on another without waiting for the
// child's Commit call to return, and the handler's deferred Rollback of
// one of the child's changes runs just after. Every scope committed, so
// the row names the new file (both files stay, as a wish to roll back
// inside a committed scope keeps both); it must not be deleted. The
// child holds many changes so that the last one is still being handed
// over when the parent commits.
func TestReviewS14RollbackAfterParentCommitDuringChildCommitKeepsNewFile(t *testing.T) {
	lost, runs := 0, 60
	for range runs {
		fsys := afero.NewMemMapFs()
		ctx := context.Background()
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		pctx, parent := filefield.NewScope(ctx)
		cctx, child := filefield.NewScope(pctx)
		var last *filefield.Change
		for i := range 400 {
			ch, err := pics.Save(cctx, upload("new"+string(rune('a'+i%26))+string(rune('a'+i/26))))
			require.NoError(t, err)
			last = ch
		}
		done := make(chan struct{})
		go func() { child.Commit(cctx); close(done) }()
		// Wait for the child's Commit to have begun: a change made with
		// its context is refused once it has ended (the probe deletes a
		// path no file has).
		for {
			if _, err := pics.Delete(cctx, "pics/none.png"); errors.Is(err, filefield.ErrScopeEnded) {
				break
			}
		}
		parent.Commit(pctx)
		last.Rollback(ctx)
		<-done
		if ok, _ := afero.Exists(fsys, last.New); !ok {
			lost++
		}
	}
	assert.Zero(t, lost, "new file deleted in %d of %d runs though every scope committed", lost, runs)
}
