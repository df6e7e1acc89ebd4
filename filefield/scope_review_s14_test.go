package filefield

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/spf13/afero"
)

// review s14: Scope.Commit of a child, split where a goroutine can be
// preempted: take (the child is committed, its changes out of its
// lists, none marked) and then handOver to the parent. If the parent
// ends in between (its Commit or End runs concurrently with the child's
// Commit: "a parent that commits with a child still open"), open() sees
// the child committed-as-child and the outermost ended, so it says no
// scope holds the change, and no finishing mark says otherwise (the
// child marks nothing, the parent's mark skipped the ended child).
// A Change.Rollback in that window (the deferred one) deletes the new
// file, though every scope committed and handOver then commits it.
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

			// child.Commit(cctx), first half (as in Scope.Commit):
			child.handUpFirst()
			changes, stamps, ok := child.take(committed)
			if !ok || len(changes) != 1 {
				t.Fatalf("take: ok=%v changes=%d", ok, len(changes))
			}
			// the parent's transaction ends meanwhile, on another goroutine
			if end == "commit" {
				parent.Commit(pctx)
			} else {
				parent.End(pctx, fmt.Errorf("conn lost: %w", ErrCommitUnknown))
			}
			held := ch.Held()
			r := ch.Rollback(ctx) // the handler's deferred Rollback
			// child.Commit, second half:
			finishEach(len(changes), func(i int) { child.handOver(cctx, changes[i], stamps[changes[i]]) })

			if exists, _ := afero.Exists(fsys, ch.New); !exists {
				t.Errorf("parent %s, child committed: the new file %s a committed (or maybe committed) row names was deleted (Held()=%v in the window; Rollback result %+v)", end, ch.New, held, r)
			}
			if exists, _ := afero.Exists(fsys, old.New); end == "unknown" && !exists {
				t.Errorf("outcome unknown: the old file was deleted")
			}
		})
	}
}
