package filefield_test

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// The case TestScopeEndsRacingAreLinearizable found against the design
// with a lock per scope (minimized): in transaction R, a savepoint S rolls
// back while R commits. C0 replaces old0 with new0, made in R and written
// again in S (AddClaimed: S shares it with R); C1 replaces old1 with new1,
// made in S. Then R commits (if it has not) and every change's deferred
// Rollback runs. The racing run must end as one of the two serial orders:
//
//   - S.Rollback, then R.Commit: C1 rolls back (new1 gone); C0 stays R's
//     with an undone record, so R's commit keeps both its files.
//   - R.Commit, then S.Rollback: R commits S with it, both changes commit
//     (old0 and old1 gone); the Rollback does nothing.

// linMinRoles are the files of the case, in the order of linMinOutcome.
var linMinRoles = []string{"C0 old", "C0 new", "C1 old", "C1 new"}

var (
	linMinRollbackFirst = []bool{true, true, true, false}
	linMinCommitFirst   = []bool{false, true, false, true}
)

type linMinWorld struct {
	fsys     afero.Fs
	rctx     context.Context
	sctx     context.Context
	r, s     *filefield.Scope
	c0, c1   *filefield.Change
	old0     string
	old1     string
	gateMu   sync.Mutex
	gateAt   string // the path of the delete event to pause at
	reached  chan struct{}
	released chan struct{}
}

func linMinBuild(t *testing.T) *linMinWorld {
	t.Helper()
	w := &linMinWorld{fsys: afero.NewMemMapFs(), reached: make(chan struct{}), released: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-w.released:
		default:
			close(w.released)
		}
	})
	field := filefield.New("pics", w.fsys, filefield.Options{
		Dir:            "pics",
		PendingTimeout: -1,
		OnEvent:        w.onEvent,
	})
	ctx := context.Background()
	w.old0, w.old1 = "pics/old-0.png", "pics/old-1.png"
	require.NoError(t, w.fsys.MkdirAll("pics", 0o755))
	require.NoError(t, afero.WriteFile(w.fsys, w.old0, linPNG("old-0"), 0o644))
	require.NoError(t, afero.WriteFile(w.fsys, w.old1, linPNG("old-1"), 0o644))
	w.rctx, w.r = filefield.NewScope(ctx)
	w.sctx, w.s = filefield.NewScope(w.rctx)
	var err error
	w.c0, err = field.Replace(w.rctx, w.old0, filefield.Upload{Body: bytes.NewReader(linPNG("new-0")), Name: "up.png"})
	require.NoError(t, err)
	require.NoError(t, w.s.AddClaimed(w.c0))
	w.c1, err = field.Replace(w.sctx, w.old1, filefield.Upload{Body: bytes.NewReader(linPNG("new-1")), Name: "up.png"})
	require.NoError(t, err)
	return w
}

func (w *linMinWorld) onEvent(e filefield.Event) {
	w.gateMu.Lock()
	hit := w.gateAt != "" && e.Action == filefield.ActionDelete && e.Path == w.gateAt
	if hit {
		w.gateAt = ""
	}
	w.gateMu.Unlock()
	if hit {
		close(w.reached)
		<-w.released
	}
}

// pausedWhile runs end until it deletes path (with no lock held), runs
// other meanwhile, then lets end go on.
func (w *linMinWorld) pausedWhile(t *testing.T, path string, end, other func()) {
	t.Helper()
	w.gateMu.Lock()
	w.gateAt = path
	w.gateMu.Unlock()
	done := make(chan struct{})
	go func() { defer close(done); end() }()
	select {
	case <-w.reached:
	case <-time.After(5 * time.Second):
		t.Fatalf("the end never deleted %s", path)
	}
	other()
	close(w.released)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the paused end did not return (deadlock?)")
	}
}

func (w *linMinWorld) sRollback() { w.s.Rollback(w.sctx) }
func (w *linMinWorld) rCommit()   { w.r.Commit(w.rctx) }

// finish runs the closing step: R's Commit, then the deferred Rollbacks.
func (w *linMinWorld) finish() []bool {
	ctx := context.Background()
	w.r.Commit(ctx)
	w.c0.Rollback(ctx)
	w.c1.Rollback(ctx)
	out := make([]bool, 4)
	for i, p := range []string{w.old0, w.c0.New, w.old1, w.c1.New} {
		out[i], _ = afero.Exists(w.fsys, p)
	}
	return out
}

// TestLinearMinSavepointRollbackRacingRootCommit replays the case's
// interleavings: each end whole before the other, and each end paused in
// its per-change loop (where it runs with no lock held) while the other
// runs whole. Each must end exactly as the serial order of its takes.
func TestLinearMinSavepointRollbackRacingRootCommit(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, w *linMinWorld)
		want []bool
	}{
		{"s-rollback-then-r-commit", func(t *testing.T, w *linMinWorld) { w.sRollback(); w.rCommit() }, linMinRollbackFirst},
		{"r-commit-then-s-rollback", func(t *testing.T, w *linMinWorld) { w.rCommit(); w.sRollback() }, linMinCommitFirst},
		{"r-commit-during-s-rollback", func(t *testing.T, w *linMinWorld) {
			w.pausedWhile(t, w.c1.New, w.sRollback, w.rCommit) // S has taken C1 and is deleting new1
		}, linMinRollbackFirst},
		{"s-rollback-during-r-commit-c0", func(t *testing.T, w *linMinWorld) {
			w.pausedWhile(t, w.old0, w.rCommit, w.sRollback) // R has taken both, is committing C0
		}, linMinCommitFirst},
		{"s-rollback-during-r-commit-c1", func(t *testing.T, w *linMinWorld) {
			w.pausedWhile(t, w.old1, w.rCommit, w.sRollback) // R has committed C0, is committing C1
		}, linMinCommitFirst},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := linMinBuild(t)
			tc.run(t, w)
			got := w.finish()
			if !slices.Equal(got, tc.want) {
				t.Errorf("outcome:\n%swant (the serial order of the takes):\n%s", linShow(linMinRoles, got), linShow(linMinRoles, tc.want))
			}
		})
	}
}

// TestLinearMinSavepointRollbackRacingRootCommitStress runs the two ends
// at once, through the linearizability test's harness (whose callbacks
// yield), and checks that every run ends exactly as one of the serial
// orders.
func TestLinearMinSavepointRollbackRacingRootCommitStress(t *testing.T) {
	t.Parallel()
	setup := linSetup{
		scopes: []linScopeSpec{{parent: -1, tx: 1}, {parent: 0, tx: 1}},
		changes: []linChangeSpec{
			{kind: linReplace, maker: 0, addTo: -1, claims: []int{1}},
			{kind: linReplace, maker: 1, addTo: -1},
		},
		ops:     []linOp{{linScopeRollback, 1}, {linScopeCommit, 0}},
		closing: map[int]bool{0: true},
	}
	var serial [][]bool
	var roles []string
	for _, p := range linPermutations(len(setup.ops)) {
		w := linBuild(t, setup, afero.NewMemMapFs())
		for _, k := range p {
			w.apply(setup.ops[k])
		}
		w.close(setup)
		serial = append(serial, w.outcome())
		roles = w.roleNames()
	}
	require.NotEqual(t, serial[0], serial[1], "the two serial orders end alike: the case tests nothing")
	seen := map[int]int{}
	for a := range 200 {
		w := linBuild(t, setup, afero.NewMemMapFs())
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, op := range setup.ops {
			wg.Go(func() {
				<-start
				for range (a + i) % 3 {
					runtime.Gosched()
				}
				w.apply(op)
			})
		}
		close(start)
		wg.Wait()
		w.close(setup)
		got := w.outcome()
		k := slices.IndexFunc(serial, func(s []bool) bool { return slices.Equal(s, got) })
		if k < 0 {
			t.Fatalf("attempt %d: the racing run ends as no serial order\n%s\nconcurrent outcome:\n%sserial outcomes:\n%s\n%s",
				a, setup, linShow(roles, got), linShow(roles, serial[0]), linShow(roles, serial[1]))
		}
		seen[k]++
	}
	t.Logf("runs ending as each serial order: %v", seen)
}
