package filefield_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// TestScopeEndsRacingAreLinearizable is a differential test of racing
// ends. Each round builds a random setup from its seed (a transaction T1
// with nested and sibling savepoints, sometimes a second transaction T2,
// and 2 to 5 changes made in scopes or with no scope and added, some also
// claimed by other scopes), then runs 2 to 4 end operations (a scope's
// Commit or Rollback, a change's Commit or Rollback) at once, and a
// closing step that ends every root and rolls back every change (the
// deferred Rollback idiom). The same setup is then run serially, fresh,
// in every order of the operations. The concurrent outcome, which files
// exist (by role, as stored names are random), must keep every file that
// at least one serial order keeps, all together: it may keep more (a
// leak), but it may not delete a file that every serial order that
// explains the rest keeps. Whatever the order, a Replace never loses both
// its old file and its new one.
//
// SCOPE_LINEAR_SEED fixes the first round's seed (round r uses seed+r),
// SCOPE_LINEAR_ROUNDS the number of rounds, SCOPE_LINEAR_ATTEMPTS the
// concurrent runs per round.
func TestScopeEndsRacingAreLinearizable(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SCOPE_LINEAR_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "SCOPE_LINEAR_SEED")
	}
	rounds := linEnvInt(t, "SCOPE_LINEAR_ROUNDS", 250)
	attempts := linEnvInt(t, "SCOPE_LINEAR_ATTEMPTS", 3)
	tmp := t.TempDir()
	failures := 0
	for round := range rounds {
		rs := seed + uint64(round)
		setup := linGenerate(rs)
		// Every 50th round runs on a real disk.
		onDisk := round%50 == 49
		newFs := func() afero.Fs {
			if !onDisk {
				return afero.NewMemMapFs()
			}
			dir, err := os.MkdirTemp(tmp, "w")
			require.NoError(t, err)
			return afero.NewBasePathFs(afero.NewOsFs(), dir)
		}

		// The serial outcomes, one per order of the operations.
		perms := linPermutations(len(setup.ops))
		serial := make([][]bool, len(perms))
		var roles []string
		for i, p := range perms {
			w := linBuild(t, setup, newFs())
			for _, k := range p {
				w.apply(setup.ops[k])
			}
			w.close(setup)
			serial[i] = w.outcome()
			roles = w.roleNames()
			if bad := w.lostBoth(serial[i]); bad != "" {
				t.Errorf("seed %d: the serial order %s loses both files of %s\n%s\noutcome:\n%s",
					rs, linOrder(setup.ops, p), bad, setup, linShow(roles, serial[i]))
				failures++
			}
		}
		// The harness's own check: a serial run is deterministic, so
		// that a difference is the race's, not the setup's.
		{
			w := linBuild(t, setup, newFs())
			for _, k := range perms[0] {
				w.apply(setup.ops[k])
			}
			w.close(setup)
			require.Equal(t, serial[0], w.outcome(), "seed %d: two serial runs of one order differ (harness)\n%s", rs, setup)
		}

		yr := rand.New(rand.NewPCG(rs, 0x9e3779b9))
		for attempt := range attempts {
			w := linBuild(t, setup, newFs())
			yields := make([]int, len(setup.ops))
			for i := range yields {
				yields[i] = yr.IntN(5)
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, op := range setup.ops {
				wg.Go(func() {
					<-start
					for range yields[i] {
						runtime.Gosched()
					}
					w.apply(op)
				})
			}
			close(start)
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("seed %d attempt %d: the racing ends did not return (deadlock?)\n%s", rs, attempt, setup)
			}
			w.close(setup)
			got := w.outcome()

			if bad := w.lostBoth(got); bad != "" {
				t.Errorf("seed %d attempt %d (rerun: SCOPE_LINEAR_SEED=%d SCOPE_LINEAR_ROUNDS=1): the racing run loses both files of %s\n%s\nconcurrent outcome:\n%s",
					rs, attempt, rs, bad, setup, linShow(roles, got))
				failures++
			}
			explained := slices.ContainsFunc(serial, func(s []bool) bool { return linSubset(s, got) })
			if !explained {
				var b strings.Builder
				for i, p := range perms {
					fmt.Fprintf(&b, "  serial %s: %s\n", linOrder(setup.ops, p), linMissing(roles, serial[i], got))
				}
				t.Errorf("seed %d attempt %d (rerun: SCOPE_LINEAR_SEED=%d SCOPE_LINEAR_ROUNDS=1): the racing run deleted files that every serial order keeps\n%s\nconcurrent outcome:\n%s\nwhat each serial order keeps that the racing run lost:\n%s",
					rs, attempt, rs, setup, linShow(roles, got), b.String())
				failures++
			}
			if failures >= 3 {
				t.FailNow()
			}
		}
	}
}

func linEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// Kinds of linChangeSpec.
const (
	linReplace = iota
	linSave
	linDelete
)

type linScopeSpec struct {
	parent int // index of the parent scope, -1 for a root
	tx     int // 1 or 2
}

type linChangeSpec struct {
	kind   int
	maker  int   // the scope whose context makes it; -1: no scope
	addTo  int   // with maker -1, the scope it is added to (Scope.Add)
	claims []int // scopes that register it too (AddClaimed), in order
}

type linOpKind int

const (
	linScopeCommit linOpKind = iota
	linScopeRollback
	linChangeCommit
	linChangeRollback
)

type linOp struct {
	kind linOpKind
	idx  int
}

func (o linOp) String() string {
	switch o.kind {
	case linScopeCommit:
		return fmt.Sprintf("S%d.Commit", o.idx)
	case linScopeRollback:
		return fmt.Sprintf("S%d.Rollback", o.idx)
	case linChangeCommit:
		return fmt.Sprintf("C%d.Commit", o.idx)
	default:
		return fmt.Sprintf("C%d.Rollback", o.idx)
	}
}

type linSetup struct {
	seed    uint64
	scopes  []linScopeSpec
	changes []linChangeSpec
	pre     []linOp // run serially before the race, in both runs
	ops     []linOp // the racing ends
	// closing: per root (by scope index), Commit (true) or Rollback
	closing map[int]bool
}

func (s linSetup) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "setup of seed %d:\n", s.seed)
	for i, sc := range s.scopes {
		if sc.parent < 0 {
			fmt.Fprintf(&b, "  S%d: root of T%d\n", i, sc.tx)
		} else {
			fmt.Fprintf(&b, "  S%d: savepoint of T%d, child of S%d\n", i, sc.tx, sc.parent)
		}
	}
	kinds := []string{"Replace", "Save", "Delete"}
	for j, c := range s.changes {
		fmt.Fprintf(&b, "  C%d: %s", j, kinds[c.kind])
		if c.maker >= 0 {
			fmt.Fprintf(&b, " made in S%d", c.maker)
		} else {
			fmt.Fprintf(&b, " made in no scope, S%d.Add", c.addTo)
		}
		for _, x := range c.claims {
			fmt.Fprintf(&b, ", S%d.AddClaimed", x)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  before the race, serially: %v\n", s.pre)
	fmt.Fprintf(&b, "  racing: %v\n", s.ops)
	b.WriteString("  closing:")
	for i := range s.scopes {
		if c, ok := s.closing[i]; ok {
			if c {
				fmt.Fprintf(&b, " S%d.Commit", i)
			} else {
				fmt.Fprintf(&b, " S%d.Rollback", i)
			}
		}
	}
	b.WriteString(", then every change's Rollback")
	return b.String()
}

// linGenerate makes the setup of a seed.
func linGenerate(seed uint64) linSetup {
	r := rand.New(rand.NewPCG(seed, 0x5eed15))
	s := linSetup{seed: seed, closing: map[int]bool{}}
	s.scopes = append(s.scopes, linScopeSpec{parent: -1, tx: 1})
	depth := []int{0}
	for range 1 + r.IntN(4) { // savepoints of T1, 1 to 3 levels deep
		var cands []int
		for i, sc := range s.scopes {
			if sc.tx == 1 && depth[i] < 3 {
				cands = append(cands, i)
			}
		}
		p := cands[r.IntN(len(cands))]
		s.scopes = append(s.scopes, linScopeSpec{parent: p, tx: 1})
		depth = append(depth, depth[p]+1)
	}
	if r.IntN(3) > 0 { // a second transaction
		root := len(s.scopes)
		s.scopes = append(s.scopes, linScopeSpec{parent: -1, tx: 2})
		if r.IntN(2) == 0 {
			s.scopes = append(s.scopes, linScopeSpec{parent: root, tx: 2})
		}
	}
	ns := len(s.scopes)
	for range 2 + r.IntN(4) {
		c := linChangeSpec{maker: -1, addTo: -1}
		switch k := r.IntN(10); {
		case k < 6:
			c.kind = linReplace
		case k < 8:
			c.kind = linSave
		default:
			c.kind = linDelete
		}
		in := 0
		if r.IntN(4) == 0 {
			c.addTo = r.IntN(ns)
			in = c.addTo
		} else {
			c.maker = r.IntN(ns)
			in = c.maker
		}
		n := 0
		switch k := r.IntN(6); {
		case k < 3:
			n = 1
		case k < 4:
			n = 2
		}
		for range n {
			x := r.IntN(ns)
			if x != in && !slices.Contains(c.claims, x) {
				c.claims = append(c.claims, x)
			}
		}
		s.changes = append(s.changes, c)
	}
	nc := len(s.changes)
	// Ends run before the race: a savepoint's or a change's.
	if r.IntN(3) == 0 {
		var op linOp
		if k := r.IntN(2); k == 0 && ns > 1 {
			i := r.IntN(ns)
			for s.scopes[i].parent < 0 {
				i = r.IntN(ns)
			}
			op = linOp{kind: linOpKind(r.IntN(2)), idx: i}
		} else {
			op = linOp{kind: linChangeCommit + linOpKind(r.IntN(2)), idx: r.IntN(nc)}
		}
		s.pre = append(s.pre, op)
	}
	// The racing ends, 2 to 4, distinct; sometimes a scope's Commit
	// racing its own Rollback.
	want := 2 + r.IntN(3)
	if r.IntN(3) == 0 {
		i := r.IntN(ns)
		s.ops = append(s.ops, linOp{linScopeCommit, i}, linOp{linScopeRollback, i})
	}
	for tries := 0; len(s.ops) < want && tries < 100; tries++ {
		var op linOp
		if r.IntN(10) < 6 {
			op = linOp{kind: linOpKind(r.IntN(2)), idx: r.IntN(ns)}
		} else {
			op = linOp{kind: linChangeCommit + linOpKind(r.IntN(2)), idx: r.IntN(nc)}
		}
		if !slices.Contains(s.ops, op) {
			s.ops = append(s.ops, op)
		}
	}
	for i, sc := range s.scopes {
		if sc.parent < 0 {
			s.closing[i] = r.IntN(3) > 0
		}
	}
	return s
}

// linWorld is a setup built on a filesystem.
type linWorld struct {
	fsys    afero.Fs
	scopes  []*filefield.Scope
	changes []*filefield.Change
	roles   []linRole
}

type linRole struct {
	name    string
	path    string
	replace int // for the files of a Replace: its change, else -1
	isNew   bool
}

func linPNG(tag string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), []byte(tag)...)
}

// linBuild builds setup on fsys, the same way every time.
func linBuild(t *testing.T, setup linSetup, fsys afero.Fs) *linWorld {
	t.Helper()
	base := context.Background()
	yield := func() { runtime.Gosched() }
	field := filefield.New("pics", fsys, filefield.Options{
		Dir:            "pics",
		PendingTimeout: -1,
		// Points where a racing end lets the others run: while a change
		// is being finished, with its lock held.
		OnEvent: func(filefield.Event) { yield() },
		Refs: filefield.RefCheckerFunc(func(context.Context, string) (bool, error) {
			yield()
			return false, nil
		}),
	})
	w := &linWorld{fsys: fsys}
	require.NoError(t, fsys.MkdirAll("pics", 0o755))
	require.NoError(t, afero.WriteFile(fsys, "pics/bystander.png", linPNG("bystander"), 0o644))
	w.roles = append(w.roles, linRole{name: "bystander", path: "pics/bystander.png", replace: -1})
	ctxs := make([]context.Context, len(setup.scopes))
	for i, sc := range setup.scopes {
		parent := base
		if sc.parent >= 0 {
			parent = ctxs[sc.parent]
		}
		ctx, s := filefield.NewScope(parent)
		ctxs[i] = ctx
		w.scopes = append(w.scopes, s)
	}
	for j, cs := range setup.changes {
		old := ""
		if cs.kind != linSave {
			old = fmt.Sprintf("pics/old-%d.png", j)
			require.NoError(t, afero.WriteFile(fsys, old, linPNG(fmt.Sprintf("old-%d", j)), 0o644))
		}
		ctx := base
		if cs.maker >= 0 {
			ctx = ctxs[cs.maker]
		}
		up := filefield.Upload{Body: bytes.NewReader(linPNG(fmt.Sprintf("new-%d", j))), Name: "up.png", Owner: "42"}
		var ch *filefield.Change
		var err error
		switch cs.kind {
		case linReplace:
			ch, err = field.Replace(ctx, old, up)
		case linSave:
			ch, err = field.Save(ctx, up)
		default:
			ch, err = field.Delete(ctx, old)
		}
		if cs.maker < 0 {
			ch, err = w.scopes[cs.addTo].Add(ch, err)
		}
		require.NoError(t, err, "C%d", j)
		for _, x := range cs.claims {
			require.NoError(t, w.scopes[x].AddClaimed(ch), "C%d, S%d.AddClaimed", j, x)
		}
		w.changes = append(w.changes, ch)
		rep := -1
		if cs.kind == linReplace {
			rep = j
		}
		if ch.New != "" {
			w.roles = append(w.roles, linRole{name: fmt.Sprintf("C%d new", j), path: ch.New, replace: rep, isNew: true})
		}
		if old != "" {
			w.roles = append(w.roles, linRole{name: fmt.Sprintf("C%d old", j), path: old, replace: rep})
		}
	}
	for _, op := range setup.pre {
		w.apply(op)
	}
	return w
}

func (w *linWorld) apply(op linOp) {
	ctx := context.Background()
	switch op.kind {
	case linScopeCommit:
		w.scopes[op.idx].Commit(ctx)
	case linScopeRollback:
		w.scopes[op.idx].Rollback(ctx)
	case linChangeCommit:
		w.changes[op.idx].Commit(ctx)
	default:
		w.changes[op.idx].Rollback(ctx)
	}
}

// close ends every root not ended yet, then rolls back every change, as
// a deferred Rollback does.
func (w *linWorld) close(setup linSetup) {
	ctx := context.Background()
	for i := range setup.scopes {
		commit, root := setup.closing[i]
		switch {
		case !root:
		case commit:
			w.scopes[i].Commit(ctx)
		default:
			w.scopes[i].Rollback(ctx)
		}
	}
	for _, ch := range w.changes {
		ch.Rollback(ctx)
	}
}

func (w *linWorld) outcome() []bool {
	out := make([]bool, len(w.roles))
	for i, r := range w.roles {
		_, err := w.fsys.Stat(r.path)
		out[i] = err == nil
	}
	return out
}

func (w *linWorld) roleNames() []string {
	names := make([]string, len(w.roles))
	for i, r := range w.roles {
		names[i] = r.name
	}
	return names
}

// lostBoth names a Replace both of whose files are gone, or the
// bystander gone, or returns "".
func (w *linWorld) lostBoth(out []bool) string {
	if !out[0] {
		return "the bystander (a file no change names)"
	}
	gone := map[int]int{}
	for i, r := range w.roles {
		if r.replace >= 0 && !out[i] {
			gone[r.replace]++
		}
	}
	for j := range w.changes {
		if gone[j] == 2 {
			return fmt.Sprintf("C%d (a Replace)", j)
		}
	}
	return ""
}

// linSubset reports whether every file that exists in a exists in b.
func linSubset(a, b []bool) bool {
	for i := range a {
		if a[i] && !b[i] {
			return false
		}
	}
	return true
}

func linShow(roles []string, out []bool) string {
	var b strings.Builder
	for i, r := range roles {
		st := "gone"
		if out[i] {
			st = "exists"
		}
		fmt.Fprintf(&b, "  %-10s %s\n", r, st)
	}
	return b.String()
}

func linMissing(roles []string, serial, got []bool) string {
	var miss []string
	for i := range roles {
		if serial[i] && !got[i] {
			miss = append(miss, roles[i])
		}
	}
	return strings.Join(miss, ", ")
}

func linOrder(ops []linOp, p []int) string {
	parts := make([]string, len(p))
	for i, k := range p {
		parts[i] = ops[k].String()
	}
	return strings.Join(parts, " ; ")
}

// linPermutations returns every order of 0..n-1.
func linPermutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range linPermutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}
