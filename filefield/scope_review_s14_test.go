package filefield

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/spf13/afero"
)

// review s14: Scope.Commit of a child used to be two steps where a
// goroutine can be preempted: take (the child committed, its changes out
// of its lists, none marked) and then handOver to the parent. If the
// parent ended in between (its Commit or End running concurrently with
// the child's Commit: "a parent that commits with a child still open"),
// no scope held the change and a Change.Rollback in that window (the
// deferred one) deleted the new file, though every scope committed. The
// child's end and the move are one step now (commitChild, under the
// tree's lock): replayed here with the parent ending right after it,
// then the Rollback.
func TestReviewS14RollbackInChildHandOverWindowAfterParentEnds(t *testing.T) {
	for _, end := range []string{"commit", "unknown"} {
		t.Run(end, func(t *testing.T) {
			ctx := context.Background()
			fsys := afero.NewMemMapFs()
			f := New("pics", fsys, Options{Dir: "pics", PendingTimeout: -1})
			old, err := f.Save(ctx, Upload{Body: bytes.NewReader([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRold")), Name: "o.png"})
			if err != nil {
				t.Fatal(err)
			}
			old.Commit(ctx)
			pctx, parent := NewScope(ctx)
			cctx, child := NewScope(pctx)
			ch, err := f.Replace(cctx, old.New, Upload{Body: bytes.NewReader([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRnew")), Name: "n.png"})
			if err != nil {
				t.Fatal(err)
			}
			if !child.commitChild() { // child.Commit(cctx)
				t.Fatal("commitChild found the child ended")
			}
			held := ch.Held()
			// the parent's transaction ends, on another goroutine
			if end == "commit" {
				parent.Commit(pctx)
			} else {
				parent.End(pctx, fmt.Errorf("conn lost: %w", ErrCommitUnknown))
			}
			r := ch.Rollback(ctx) // the handler's deferred Rollback
			if !held {
				t.Error("after the child's Commit its change is held by no scope")
			}
			if exists, _ := afero.Exists(fsys, ch.New); !exists {
				t.Errorf("parent %s, child committed: the new file %s a committed (or maybe committed) row names was deleted (Rollback result %+v)", end, ch.New, r)
			}
			if exists, _ := afero.Exists(fsys, old.New); end == "unknown" && !exists {
				t.Errorf("outcome unknown: the old file was deleted")
			}
		})
	}
}
