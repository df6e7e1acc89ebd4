package filefield

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// Review of abe64b5 (commitChild), adapted to the shared tree lock: a
// registration, a child's Commit (commitChild) and a scope's end (take)
// are each one step under the tree's lock, so the only points where
// another goroutine can come in are between those steps and inside an
// end's per-change loop (commitAll, Rollback's), which runs with no lock
// held. The tests pause an end there with ccGate, an Options.OnEvent that
// blocks on an event of a change the end finishes before the one under
// test.

// ccGate pauses whoever emits the first event its armed predicate
// accepts, until open is called. Use its onEvent as Options.OnEvent:
// events are emitted with no lock held.
type ccGate struct {
	mu       sync.Mutex
	hit      func(Event) bool
	reached  chan struct{}
	release  chan struct{}
	openOnce sync.Once
}

func newCCGate(t *testing.T) *ccGate {
	g := &ccGate{reached: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open) // a test that fails does not leave an end blocked
	return g
}

// arm makes the next event with action on path block.
func (g *ccGate) arm(action Action, path string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hit = func(e Event) bool { return e.Action == action && e.Path == path }
}

func (g *ccGate) onEvent(e Event) {
	g.mu.Lock()
	hit := g.hit != nil && g.hit(e)
	if hit {
		g.hit = nil
	}
	g.mu.Unlock()
	if hit {
		close(g.reached)
		<-g.release
	}
}

// wait waits until the gate holds an end.
func (g *ccGate) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the end never reached the gate")
	}
}

func (g *ccGate) open() { g.openOnce.Do(func() { close(g.release) }) }

// ccGo runs f on a goroutine; the channel is closed when it returns.
func ccGo(f func()) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	return done
}

// ccWait waits for done, failing after 5 s (a deadlock).
func ccWait(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return (deadlock?)", what)
	}
}

// ccEmpty reports whether r did nothing.
func ccEmpty(r Result) bool { return len(r.Deleted)+len(r.Kept)+len(r.Failed) == 0 }

// The outermost scope ends (Commit, Rollback, End unknown) while a
// savepoint's Commit races it: the savepoint commits just before the
// parent's end takes the tree ("before"), or just after, when the
// parent's end has taken it already and the savepoint's Commit does
// nothing ("during"). While the parent's end is finishing its changes
// (paused on an earlier one), the savepoint's change must be held: the
// maker's deferred Change.Rollback only records a wish (it would delete
// the new file of a change every scope committed), and, at a Rollback,
// its early Change.Commit too (it would delete the old file of a row the
// transaction rolled back).
func TestCommitChildMarkWindowUnheld(t *testing.T) {
	for _, end := range []string{"commit", "rollback", "unknown"} {
		for _, when := range []string{"before", "during"} {
			t.Run(end+"/"+when, func(t *testing.T) {
				g := newCCGate(t)
				ctx, fsys, f, old := ccSetup(t, Options{OnEvent: g.onEvent})
				old1, err := f.Save(ctx, ccPNG("old1"))
				if err != nil {
					t.Fatal(err)
				}
				old1.Commit(ctx)
				pctx, parent := NewScope(ctx)
				var gate *Change
				if end != "rollback" { // finished before ch: stamped first
					if gate, err = f.Replace(pctx, old1.New, ccPNG("gate")); err != nil {
						t.Fatal(err)
					}
				}
				cctx, child := NewScope(pctx)
				ch, err := f.Replace(cctx, old.New, ccPNG("new"))
				if err != nil {
					t.Fatal(err)
				}
				if end == "rollback" { // rolled back before ch: newer
					if gate, err = f.Save(pctx, ccPNG("gate")); err != nil {
						t.Fatal(err)
					}
				}
				switch end {
				case "commit":
					g.arm(ActionDelete, old1.New)
				case "unknown":
					g.arm(ActionKeep, old1.New)
				case "rollback":
					g.arm(ActionDelete, gate.New)
				}
				if when == "before" {
					if r := child.Commit(cctx); !ccEmpty(r) {
						t.Fatalf("child commit did %+v", r)
					}
				}
				done := ccGo(func() {
					switch end {
					case "commit":
						parent.Commit(pctx)
					case "rollback":
						parent.Rollback(pctx)
					case "unknown":
						parent.End(pctx, fmt.Errorf("conn: %w", ErrCommitUnknown))
					}
				})
				g.wait(t) // the parent's end has taken the tree and is finishing gate
				if when == "during" {
					if r := child.Commit(cctx); !ccEmpty(r) {
						t.Errorf("child commit during the parent's end did %+v", r)
					}
				}
				held := ch.Held()
				var r Result
				if end == "rollback" {
					r = ch.Commit(ctx) // the maker's early Commit: only a wish while held
				} else {
					r = ch.Rollback(ctx) // the deferred Rollback
				}
				g.open()
				ccWait(t, done, "the parent's end")
				if !held {
					t.Errorf("while the parent's end is finishing the tree, no scope holds the change")
				}
				if !ccEmpty(r) {
					t.Errorf("the maker's call acted on a held change: %+v", r)
				}
				if end != "rollback" && !ccExists(fsys, ch.New) {
					t.Errorf("parent %s, child committed: new file %s deleted by the change's Rollback (%+v)", end, ch.New, r)
				}
				if end != "commit" && !ccExists(fsys, old.New) {
					t.Errorf("parent %s: old file %s a row still names deleted by the change's Commit (%+v)", end, old.New, r)
				}
				if ch.unfinished() {
					t.Errorf("the change was left pending")
				}
			})
		}
	}
}

// The same race with real goroutines: the parent has savepoints before
// the child, the child commits as the parent's Commit starts, and the
// handler's deferred Rollback runs as soon as the parent has ended, while
// commitAll may still be working through the earlier changes.
func TestCommitChildMarkWindowStress(t *testing.T) {
	lost, runs := 0, 20
	for run := range runs {
		ctx, fsys, f, _ := ccSetup(t, Options{})
		pctx, parent := NewScope(ctx)
		for i := range 8 {
			sctx, _ := NewScope(pctx)
			for j := range 8 {
				if _, err := f.Save(sctx, ccPNG(fmt.Sprint("s", i, "-", j))); err != nil {
					t.Fatal(err)
				}
			}
		}
		cctx, child := NewScope(pctx)
		ch, err := f.Save(cctx, ccPNG("last"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(3)
		go func() { defer wg.Done(); <-start; parent.Commit(pctx) }()
		go func() { // the savepoint's release, racing the outer commit
			defer wg.Done()
			<-start
			for range run % 4 {
				runtime.Gosched()
			}
			child.Commit(cctx)
		}()
		go func() { // the handler's deferred Rollback
			defer wg.Done()
			<-start
			for parent.live() {
				runtime.Gosched()
			}
			ch.Rollback(ctx)
		}()
		close(start)
		wg.Wait()
		if !ccExists(fsys, ch.New) {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("every scope committed, yet the change's new file was deleted in %d of %d runs", lost, runs)
	}
}

// A callback runs with no lock held: a change c of a savepoint finished
// elsewhere (CommitEarly, as integrations do for an autocommitted
// statement) emits its delete event, and the OnEvent waits for the
// savepoint's Commit, which moves c into the parent (it takes c's lock
// under the tree's), then opens a scope in the savepoint's context and
// reads c and the scopes. Had finish kept c's lock through the callback,
// or the tree's, they would wait on each other. (Before abe64b5 the
// child's Commit waited for c's lock holding the parent's; with it, it
// held the parent's and the child's.)
func TestCommitChildCallbackDeadlock(t *testing.T) {
	var (
		child  *Scope
		parent *Scope
		ch     *Change
		cctx   context.Context
		once   sync.Once
		inner  = make(chan error, 1)
	)
	onEvent := func(e Event) {
		if e.Action != ActionDelete {
			return
		}
		once.Do(func() {
			committed := ccGo(func() { child.Commit(cctx) })
			select {
			case <-committed:
			case <-time.After(5 * time.Second):
				inner <- fmt.Errorf("the savepoint's Commit waits for the callback")
				return
			}
			NewScope(cctx) // e.g. a logger's hook that opens a savepoint scope
			ch.Held()
			parent.live()
			inner <- nil
		})
	}
	var ready bool
	var mu sync.Mutex
	ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
		mu.Lock()
		r := ready
		mu.Unlock()
		if r {
			onEvent(e)
		}
	}})
	pctx, p := NewScope(ctx)
	parent = p
	cctx, child = NewScope(pctx)
	c, err := f.Replace(cctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	ch = c
	mu.Lock()
	ready = true
	mu.Unlock()
	done := ccGo(func() { ch.CommitEarly(ctx) })
	ccWait(t, done, "CommitEarly, whose OnEvent waits for the savepoint's Commit and opens a scope")
	if err := <-inner; err != nil {
		t.Fatal(err)
	}
	if ccExists(fsys, old.New) {
		t.Errorf("CommitEarly kept the old file")
	}
	_ = parent.Commit(pctx)
	if !ccExists(fsys, ch.New) {
		t.Errorf("new file deleted")
	}
}

// Lock order: concurrent Commits and Rollbacks at every level of a tree,
// Saves into its leaves, Claims and Held checks, with a timeout. No
// deadlock expected (the scopes of a tree share one lock, taken before a
// change's; no path holds a change's lock while it takes a tree's, nor
// any lock while it runs a callback).
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
							f.Claim(c.New)
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
	rb.CommitEarly(ctx) // finished (committed) before the child's Commit
	gone, err := f.Save(cctx, ccPNG("gone"))
	if err != nil {
		t.Fatal(err)
	}
	gone.mu.Lock()
	gone.state = rolledBack // as if it had rolled back (a registration refuses those)
	gone.mu.Unlock()
	child.tree.mu.Lock()
	want := child.written[a]
	child.tree.mu.Unlock()
	if r := child.Commit(cctx); len(r.Deleted)+len(r.Kept) > 0 {
		t.Errorf("child Commit returned %+v", r)
	}
	parent.tree.mu.Lock()
	got, inA, inGone := parent.written[a], slices.Contains(parent.changes, a), slices.Contains(parent.changes, gone)
	parent.tree.mu.Unlock()
	if !inA || got != want {
		t.Errorf("moved: %v, stamp %d, want %d", inA, got, want)
	}
	if inGone {
		t.Errorf("a rolled-back change was moved into the parent")
	}
	a.mu.Lock()
	inScopes := slices.Contains(a.scopes, parent)
	a.mu.Unlock()
	if !inScopes {
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
