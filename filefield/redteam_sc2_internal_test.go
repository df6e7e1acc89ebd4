package filefield

import (
	"bytes"
	"testing"

	"github.com/spf13/afero"
)

// Deterministic form of TestRT2ChildRollbackRacingParentCommitLeavesChangeStuck:
// the interleaving parent.mark → child.Rollback (whole) → parent.takeTree.
// (mark is idempotent, so calling it first and then Commit replays it.)
func TestStaleFinisherDoesNotLeaveChangeStuck(t *testing.T) {
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	f := New("pics", fsys, Options{Dir: "pics", PendingTimeout: -1})
	pctx, parent := NewScope(ctx)
	cctx, child := NewScope(pctx)
	ch, err := f.Save(cctx, Upload{Body: bytes.NewReader([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRx")), Name: "x.png"})
	if err != nil {
		t.Fatal(err)
	}
	parent.mark(parent, nil) // the parent's Commit has marked its subtree...
	child.Rollback(ctx)      // ...the savepoint's rollback runs in full...
	parent.Commit(ctx)       // ...and the parent's takeTree skips the ended child
	ch.Rollback(ctx)         // a deferred Rollback by hand
	ch.mu.Lock()
	st, fin := ch.state, len(ch.finishing)
	ch.mu.Unlock()
	if st == pending {
		ok, _ := afero.Exists(fsys, ch.New)
		t.Fatalf("change never finished: state=pending finishing=%d held=%v new file exists=%v, still on the pending list=%v",
			fin, ch.Held(), ok, len(f.pending.list(ch.New)) == 1)
	}
}
