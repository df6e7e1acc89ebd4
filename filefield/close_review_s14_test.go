package filefield

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Q1: S (savepoint of R1) rolls back while another tree R2's Commit is
// finishing c (blocked on an earlier change). The mark now recorded
// against R1 turns R2's commit of c into unknown: both files stay; c
// ends (not held forever).
func TestCloseS14UndoWhileOtherTreeCommits(t *testing.T) {
	var gate atomic.Bool
	var o2 atomic.Value
	o2.Store("")
	blocked, release := make(chan struct{}), make(chan struct{})
	ctx, fsys, f, old := ccSetup(t, Options{OnEvent: func(e Event) {
		if gate.Load() && e.Action == ActionDelete && e.Path == o2.Load() {
			gate.Store(false)
			close(blocked)
			<-release
		}
	}})
	other, _ := f.Save(ctx, ccPNG("other"))
	other.Commit(ctx)
	o2.Store(other.New)
	r1ctx, r1 := NewScope(ctx)
	c, err := f.Replace(r1ctx, old.New, ccPNG("new"))
	if err != nil {
		t.Fatal(err)
	}
	sctx, s := NewScope(r1ctx)
	if err := s.AddClaimed(c); err != nil {
		t.Fatal(err)
	}
	r2ctx, r2 := NewScope(ctx)
	if _, err := f.Replace(r2ctx, other.New, ccPNG("c2")); err != nil { // stamped first
		t.Fatal(err)
	}
	if err := r2.AddClaimed(c); err != nil {
		t.Fatal(err)
	}
	gate.Store(true)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r2.Commit(r2ctx) }()
	<-blocked
	s.Rollback(sctx)
	close(release)
	wg.Wait()
	r1.Commit(r1ctx)
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == pending {
		t.Errorf("c still pending")
	}
	if !ccExists(fsys, old.New) || !ccExists(fsys, c.New) {
		t.Errorf("file lost: old %v new %v (state %d)", ccExists(fsys, old.New), ccExists(fsys, c.New), st)
	}
}

// Q2: mark of R1 (savepoint S rolled back, R1 still open) read by an
// unrelated tree R2's commit: both kept (leak, safe direction).
func TestCloseS14MarkLeaksIntoOtherTree(t *testing.T) {
	ctx, fsys, f, old := ccSetup(t, Options{})
	r1ctx, r1 := NewScope(ctx)
	c, _ := f.Replace(r1ctx, old.New, ccPNG("new"))
	sctx, s := NewScope(r1ctx)
	s.AddClaimed(c)
	s.Rollback(sctx)
	r2ctx, r2 := NewScope(ctx)
	r2.AddClaimed(c)
	res := r2.Commit(r2ctx)
	r1.Commit(r1ctx)
	t.Logf("R2 commit: %+v", res)
	if !ccExists(fsys, old.New) || !ccExists(fsys, c.New) {
		t.Errorf("file lost: old %v new %v", ccExists(fsys, old.New), ccExists(fsys, c.New))
	}
}
