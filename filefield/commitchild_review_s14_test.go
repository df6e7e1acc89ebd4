package filefield

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// Review of abe64b5 (commitChild). Interleavings are replayed from the
// parts of Scope.take (mark, then takeTree) and of mark itself (a scope's
// own changes, then its children, one lock at a time).

func ccPNG(tag string) Upload {
	return Upload{Body: bytes.NewReader(append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), tag...)), Name: tag + ".png"}
}

func ccExists(fsys afero.Fs, p string) bool { ok, _ := afero.Exists(fsys, p); return ok }

func ccSetup(t *testing.T, opts Options) (context.Context, afero.Fs, *Field, *Change) {
	t.Helper()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	opts.Dir, opts.PendingTimeout = "pics", -1
	f := New("pics", fsys, opts)
	old, err := f.Save(ctx, ccPNG("old"))
	if err != nil {
		t.Fatal(err)
	}
	old.Commit(ctx)
	return ctx, fsys, f, old
}

// markOwn is the first step of x.mark(finisher, nil): x's own changes (and
// the record that x is being marked, for changes a child commits into x
// later), under x.mu, before the recursion into x's children.
func markOwn(x, finisher *Scope) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state != pending {
		return
	}
	if !slices.Contains(x.marking, finisher) {
		x.marking = append(x.marking, finisher)
	}
	for _, c := range x.changes {
		c.mu.Lock()
		if !slices.Contains(c.finishing, finisher) {
			c.finishing = append(c.finishing, finisher)
		}
		c.mu.Unlock()
	}
}

// The outermost scope ends (Commit, Rollback, End unknown) while a
// savepoint's Commit runs: its mark has done the parent's own changes and
// released the parent's lock, and not yet reached the child. commitChild
// moves the child's change into the parent then; mark(child) finds the
// child ended and marks nothing; takeTree takes the change with the
// parent. From the parent's end until it finishes the change, no scope
// holds it (the child and the parent are not open, and it carries no
// finishing mark): the maker's Change.Rollback deletes the new file of a
// change every scope committed, or its Change.Commit deletes the old file
// of a row the transaction rolled back.
func TestCommitChildMarkWindowUnheld(t *testing.T) {
	for _, end := range []string{"commit", "rollback", "unknown"} {
		t.Run(end, func(t *testing.T) {
			ctx, fsys, f, old := ccSetup(t, Options{})
			pctx, parent := NewScope(ctx)
			cctx, child := NewScope(pctx)
			ch, err := f.Replace(cctx, old.New, ccPNG("new"))
			if err != nil {
				t.Fatal(err)
			}
			to := map[string]int{"commit": committed, "rollback": rolledBack, "unknown": unknown}[end]
			markOwn(parent, parent) // parent's take: mark(parent), its own changes
			if r := child.Commit(cctx); len(r.Deleted) > 0 {
				t.Fatalf("child commit deleted %v", r.Deleted)
			}
			child.mark(parent, nil) // mark's recursion into the child: ended, nothing
			changes, _, ok := parent.takeTree(to, parent)
			if !ok || !slices.Contains(changes, ch) {
				t.Fatalf("takeTree: ok=%v, change taken=%v", ok, slices.Contains(changes, ch))
			}
			held := ch.Held()
			var r Result
			if end == "rollback" {
				r = ch.Commit(ctx) // the maker's early Commit: only a wish while held
			} else {
				r = ch.Rollback(ctx) // the deferred Rollback
			}
			// the parent's end goes on
			switch end {
			case "commit":
				commitAll(ctx, changes)
			case "rollback":
				for _, c := range changes {
					c.finish(ctx, rolledBack, nil)
				}
			case "unknown":
				for _, c := range changes {
					c.finish(ctx, unknown, nil)
				}
			}
			if !held {
				t.Errorf("between the parent's end and its finish of the change, no scope holds it")
			}
			if end != "rollback" && !ccExists(fsys, ch.New) {
				t.Errorf("parent %s, child committed: new file %s deleted by the change's Rollback (%+v)", end, ch.New, r)
			}
			if end != "commit" && !ccExists(fsys, old.New) {
				t.Errorf("parent %s: old file %s a row still names deleted by the change's Commit (%+v)", end, old.New, r)
			}
		})
	}
}

// The same window with real goroutines: the parent has many savepoints
// before the child (so mark takes a while between the parent and the
// child), the child commits once the parent's mark has begun, and the
// handler's deferred Rollback runs once the parent's state has left
// pending, while commitAll works through the earlier changes.
func TestCommitChildMarkWindowStress(t *testing.T) {
	lost, runs := 0, 10
	for range runs {
		ctx, fsys, f, _ := ccSetup(t, Options{})
		pctx, parent := NewScope(ctx)
		var first *Change
		for i := range 40 {
			sctx, _ := NewScope(pctx)
			for j := range 60 {
				c, err := f.Save(sctx, ccPNG(fmt.Sprint("s", i, "-", j)))
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = c
				}
			}
		}
		cctx, child := NewScope(pctx)
		ch, err := f.Save(cctx, ccPNG("last"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { defer wg.Done(); parent.Commit(pctx) }()
		go func() { // the savepoint's release, recorded as the outer commit starts
			defer wg.Done()
			for {
				first.mu.Lock()
				marked := len(first.finishing) > 0
				first.mu.Unlock()
				if marked {
					break
				}
				runtime.Gosched()
			}
			child.Commit(cctx)
		}()
		go func() { // the handler's deferred Rollback
			defer wg.Done()
			for {
				parent.mu.Lock()
				st := parent.state
				parent.mu.Unlock()
				if st != pending {
					break
				}
				runtime.Gosched()
			}
			ch.Rollback(ctx)
		}()
		wg.Wait()
		if !ccExists(fsys, ch.New) {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("every scope committed, yet the change's new file was deleted in %d of %d runs", lost, runs)
	}
}

// Deadlock: a change c of a savepoint is finished elsewhere (CommitEarly,
// as integrations do for an autocommitted statement; or another scope
// that claimed it), which holds c.mu while it calls OnEvent. The
// savepoint commits meanwhile: commitChild holds the parent's and the
// savepoint's locks and waits for c.mu. An OnEvent that makes a scope in
// the savepoint's context (NewScope locks that scope only) now waits for
// commitChild, which waits for it. Before abe64b5 the child's Commit held
// only the parent's lock while waiting for c.mu (handUpFirst's
// addStamped), so this returned.
func TestCommitChildCallbackDeadlock(t *testing.T) {
	var (
		child  *Scope
		parent *Scope
		cctx   context.Context
		once   sync.Once
	)
	started := make(chan struct{})
	onEvent := func(e Event) {
		if e.Action != ActionDelete {
			return
		}
		once.Do(func() {
			go func() { close(started); child.Commit(cctx) }()
			<-started
			// wait until the child's Commit holds the parent's and the child's locks
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				if parent.mu.TryLock() {
					parent.mu.Unlock()
					runtime.Gosched()
					continue
				}
				if child.mu.TryLock() {
					child.mu.Unlock()
					runtime.Gosched()
					continue
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
			NewScope(cctx) // e.g. a logger's hook that opens a savepoint scope
		})
	}
	ctx, _, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
		if child != nil {
			onEvent(e)
		}
	}})
	pctx, p := NewScope(ctx)
	parent = p
	cctx, child = NewScope(pctx)
	ch, err := f.Replace(cctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { ch.CommitEarly(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("deadlock: CommitEarly's OnEvent (NewScope on the savepoint's context) and the savepoint's Commit wait on each other")
	}
	_ = parent.Commit(pctx)
}

// Lock order: concurrent Commits and Rollbacks at every level of a tree,
// Saves into its leaves, Claims and Held checks, with a timeout. No
// deadlock expected (every holder of two scope locks goes top-down; no
// non-callback path holds a change's lock while taking a scope's).
func TestCommitChildLockOrderNoDeadlock(t *testing.T) {
	done := make(chan struct{})
	total := 0
	go func() {
		defer close(done)
		for round := range 200 {
			ctx, _, f, _ := ccSetup(t, Options{})
			rctx, root := NewScope(ctx)
			type node struct {
				ctx context.Context
				s   *Scope
			}
			var nodes []node
			var build func(ctx context.Context, depth int)
			build = func(ctx context.Context, depth int) {
				if depth == 0 {
					return
				}
				for range 2 {
					c, s := NewScope(ctx)
					nodes = append(nodes, node{c, s})
					build(c, depth-1)
				}
			}
			build(rctx, 3)
			var wg sync.WaitGroup
			var saved []*Change
			var mu sync.Mutex
			for i, n := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 3 {
						if c, err := f.Save(n.ctx, ccPNG(fmt.Sprint(round, "-", i, "-", j))); err == nil {
							mu.Lock()
							saved = append(saved, c)
							mu.Unlock()
							c.Held()
						}
					}
					if (i+round)%3 == 0 {
						n.s.Rollback(n.ctx)
					} else {
						n.s.Commit(n.ctx)
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(round%4) * 100 * time.Microsecond)
				root.Commit(rctx)
			}()
			wg.Wait()
			total += len(saved)
			for _, c := range saved {
				c.Rollback(ctx)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("deadlock (or far too slow)")
	}
	t.Logf("%d changes saved", total)
}

// Item 3: bookkeeping commitChild must keep. A grandchild still open when
// the child commits ends with it (a later Save into it is refused, its
// own Commit does nothing); a change that rolled back is not moved; a
// second Commit, and a Rollback after it, do nothing; the moved change
// lists the parent among its scopes and keeps its (max) stamp.
func TestCommitChildBookkeeping(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	pctx, parent := NewScope(ctx)
	cctx, child := NewScope(pctx)
	gctx, grand := NewScope(cctx)
	a, err := f.Replace(gctx, old.New, ccPNG("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := child.AddClaimed(a); err != nil { // written again in the child: a later stamp
		t.Fatal(err)
	}
	rb, err := f.Save(cctx, ccPNG("rb"))
	if err != nil {
		t.Fatal(err)
	}
	rb.CommitEarly(ctx) // finished: still moved (addStamped took it too)
	gone, err := f.Save(cctx, ccPNG("gone"))
	if err != nil {
		t.Fatal(err)
	}
	gone.mu.Lock()
	gone.state = rolledBack // as if it had rolled back (addStamped refused those)
	gone.mu.Unlock()
	child.mu.Lock()
	want := child.written[a]
	child.mu.Unlock()
	if r := child.Commit(cctx); len(r.Deleted)+len(r.Kept) > 0 {
		t.Errorf("child Commit returned %+v", r)
	}
	parent.mu.Lock()
	got, inA, inGone := parent.written[a], slices.Contains(parent.changes, a), slices.Contains(parent.changes, gone)
	parent.mu.Unlock()
	if !inA || got != want {
		t.Errorf("moved: %v, stamp %d, want %d", inA, got, want)
	}
	if inGone {
		t.Errorf("a rolled-back change was moved into the parent")
	}
	if !slices.Contains(a.scopes, parent) {
		t.Errorf("parent not among the change's scopes")
	}
	if _, err := f.Save(gctx, ccPNG("late")); err == nil {
		t.Errorf("Save into the grandchild ended with the child succeeded")
	}
	if r := grand.Commit(gctx); len(r.Deleted)+len(r.Kept) > 0 {
		t.Errorf("grandchild Commit after its end: %+v", r)
	}
	if r := child.Commit(cctx); len(r.Deleted)+len(r.Kept) > 0 {
		t.Errorf("second child Commit: %+v", r)
	}
	if r := child.Rollback(cctx); len(r.Deleted)+len(r.Kept) > 0 {
		t.Errorf("child Rollback after Commit: %+v", r)
	}
	if !a.Held() {
		t.Errorf("a not held by the open parent")
	}
	parent.Commit(pctx)
	a.Rollback(ctx)
	if !ccExists(fsys, a.New) || ccExists(fsys, old.New) {
		t.Errorf("after the parent's commit: new exists=%v (want true), old exists=%v (want false)", ccExists(fsys, a.New), ccExists(fsys, old.New))
	}
}
