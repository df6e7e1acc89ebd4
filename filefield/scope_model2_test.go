package filefield_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// modelTx is one transaction of TestTwoTransactionsAgainstADatabaseModel:
// a stack of frames, the transaction and its open savepoints.
type modelTx struct {
	name  string
	stack []*modelFrame
	made  []modelUpload // its uploads, for retries and writes again
}

type modelFrame struct {
	ctx    context.Context
	scope  *filefield.Scope
	writes map[int]string // rows this frame wrote
	locks  map[int]bool   // rows it read to copy from (SELECT ... FOR SHARE)
	defers []func()
}

type modelUpload struct {
	ch  *filefield.Change
	row int
	old string
}

// TestTwoTransactionsAgainstADatabaseModel is the scope model with two
// transactions at once, interleaved step by step, each with its own
// savepoints, over rows that one transaction at a time may write (row
// locks). With Options.Refs reading the committed rows (as the ORM
// integrations' checks do), a statement may also copy a path from one row
// into another (the integration claims its change if it is pending), so
// that two rows hold one file. After every step, each file a committed
// row points at must exist; at the end, stale files must have gone.
// SCOPE_MODEL_SEED replays a seed.
func TestTwoTransactionsAgainstADatabaseModel(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, _ string) {
		for _, withRefs := range []bool{false, true} {
			seed := uint64(time.Now().UnixNano())
			if v := os.Getenv("SCOPE_MODEL_SEED"); v != "" {
				seed, _ = strconv.ParseUint(v, 10, 64)
			}
			runTwoTransactions(t, fsys, seed, withRefs)
		}
	})
}

func runTwoTransactions(t *testing.T, fsys afero.Fs, seed uint64, withRefs bool) {
	rnd := rand.New(rand.NewPCG(seed, 3))
	const rows = 6
	committed := make([]string, rows)
	var trace []string
	short := func(p string) string {
		if len(p) > 10 {
			return p[5:10]
		}
		return p
	}
	dir := "pics"
	if withRefs {
		dir = "refs" // the same length: short cuts the same
	}
	opts := filefield.Options{Dir: dir, OnEvent: func(e filefield.Event) {
		if e.Action != filefield.ActionStore {
			trace = append(trace, fmt.Sprintf("      %s %s %s", e.Action, short(e.Path), e.Reason))
		}
	}}
	if withRefs {
		opts.Refs = filefield.RefCheckerFunc(func(_ context.Context, p string) (bool, error) {
			return slices.Contains(committed, p), nil
		})
	}
	pics := filefield.New(dir, fsys, opts)
	uploads := 0
	for round := range 40 {
		trace = trace[:0]
		txs := []*modelTx{{name: "A"}, {name: "B"}}
		for _, x := range txs {
			ctx, s := filefield.NewScope(t.Context())
			x.stack = []*modelFrame{{ctx: ctx, scope: s, writes: map[int]string{}, locks: map[int]bool{}}}
		}
		view := func(x *modelTx, row int) string {
			for i := len(x.stack) - 1; i >= 0; i-- {
				if p, ok := x.stack[i].writes[row]; ok {
					return p
				}
			}
			return committed[row]
		}
		// holds reports whether an open frame of x wrote or locked row.
		holds := func(x *modelTx, row int) bool {
			for _, f := range x.stack {
				if _, ok := f.writes[row]; ok || f.locks[row] {
					return true
				}
			}
			return false
		}
		blocked := func(x *modelTx, row int) bool {
			for _, o := range txs {
				if o != x && holds(o, row) {
					return true
				}
			}
			return false
		}
		// blockedShare reports whether another transaction wrote row: a
		// share lock (FOR SHARE) waits for a writer, not for another
		// share lock.
		blockedShare := func(x *modelTx, row int) bool {
			for _, o := range txs {
				if o == x {
					continue
				}
				for _, f := range o.stack {
					if _, ok := f.writes[row]; ok {
						return true
					}
				}
			}
			return false
		}
		check := func(step int, what string) {
			t.Helper()
			have := map[string]bool{}
			for _, p := range files(t, fsys) {
				have[p] = true
			}
			for row, p := range committed {
				if p != "" && !have[p] {
					require.Failf(t, "a committed row's file is gone", "seed %d, refs %v, round %d, step %d (%s): row %d holds %s\n%s", seed, withRefs, round, step, what, row, p, strings.Join(trace, "\n"))
				}
			}
		}
		replace := func(x *modelTx, ctx context.Context, row int) *filefield.Change {
			uploads++
			old := view(x, row)
			ch, err := pics.Replace(ctx, old, upload(fmt.Sprintf("%d-%d", round, uploads)))
			require.NoError(t, err)
			x.made = append(x.made, modelUpload{ch, row, old})
			trace = append(trace, fmt.Sprintf("      upload %s -> %s", short(old), short(ch.New)))
			return ch
		}
		end := func(x *modelTx, commit bool) string {
			top := x.stack[len(x.stack)-1]
			for i := len(top.defers) - 1; i >= 0; i-- {
				top.defers[i]()
			}
			x.stack = x.stack[:len(x.stack)-1]
			if !commit {
				top.scope.Rollback(top.ctx)
				return "rollback"
			}
			if len(x.stack) == 0 {
				// The database commits first; the files follow.
				for row, p := range top.writes {
					committed[row] = p
				}
				top.scope.Commit(top.ctx)
				return "commit"
			}
			top.scope.Commit(top.ctx)
			parent := x.stack[len(x.stack)-1]
			maps.Copy(parent.writes, top.writes)
			maps.Copy(parent.locks, top.locks)
			return "release"
		}
		push := func(x *modelTx, ctx context.Context, s *filefield.Scope, writes map[int]string) {
			x.stack = append(x.stack, &modelFrame{ctx: ctx, scope: s, writes: writes, locks: map[int]bool{}})
		}
		for step := 0; ; step++ {
			var open []*modelTx
			for _, x := range txs {
				if len(x.stack) > 0 {
					open = append(open, x)
				}
			}
			if len(open) == 0 {
				break
			}
			x := open[rnd.IntN(len(open))]
			top := x.stack[len(x.stack)-1]
			row := rnd.IntN(rows)
			what := ""
			switch op := rnd.IntN(22); {
			case step >= 80:
				what = end(x, rnd.IntN(3) > 0)
			case op < 11 && op != 8 && op != 9 && op != 10 && blocked(x, row):
				continue // the statement would wait for the other's row lock
			case op < 4: // a handler replaces the row's file in its transaction
				ch := replace(x, top.ctx, row)
				top.writes[row] = ch.New
				what = "replace"
				switch rnd.IntN(6) {
				case 0:
					top.defers = append(top.defers, func() { ch.Rollback(top.ctx) })
					what += ", deferred Rollback"
				case 1:
					ch.Commit(top.ctx)
					what += ", early Commit"
				}
			case op < 6: // the upload is made here, a savepoint's statement writes it
				ch := replace(x, top.ctx, row)
				ctx, s := filefield.NewScope(top.ctx)
				c := pics.Claim(ch.New)
				require.NotNil(t, c)
				_, err := s.Add(c, nil)
				require.NoError(t, err)
				push(x, ctx, s, map[int]string{row: ch.New})
				what = "replace, written in a savepoint"
			case op < 7: // a statement writes an earlier upload again, in a savepoint or not
				var held []modelUpload
				for _, u := range x.made {
					if u.ch.Held() && !blocked(x, u.row) {
						held = append(held, u)
					}
				}
				if len(held) == 0 {
					continue
				}
				u := held[rnd.IntN(len(held))]
				c := pics.Claim(u.ch.New)
				if c == nil {
					continue
				}
				if rnd.IntN(2) == 0 {
					ctx, s := filefield.NewScope(top.ctx)
					if _, err := s.Add(c, nil); err != nil {
						continue
					}
					push(x, ctx, s, map[int]string{u.row: u.ch.New})
					what = "written again in a savepoint"
				} else {
					if _, err := top.scope.Add(c, nil); err != nil {
						continue
					}
					top.writes[u.row] = u.ch.New
					what = "written again"
				}
			case op < 8: // the statement fails; the handler rolls its upload back and goes on
				ch := replace(x, top.ctx, row)
				if c := pics.ClaimUnheld(ch.New); c != nil {
					c.Rollback(top.ctx)
				}
				ch.Rollback(top.ctx)
				what = "failed statement"
			case op < 9: // an autocommitted statement writes the row
				if holds(txs[0], row) || holds(txs[1], row) {
					continue
				}
				ch := replace(x, top.ctx, row)
				c := pics.Claim(ch.New)
				require.NotNil(t, c)
				committed[row] = ch.New
				c.CommitEarly(top.ctx)
				what = "autocommit"
			case op < 11: // the row's file is deleted with the row's update
				old := view(x, row)
				if old == "" || blocked(x, row) {
					continue
				}
				_, err := pics.Delete(top.ctx, old)
				require.NoError(t, err)
				top.writes[row] = ""
				what = "delete"
			case op < 13 && withRefs: // a statement copies another row's path into this one
				src := rnd.IntN(rows)
				p := view(x, src)
				if src == row || p == "" || blocked(x, row) || blockedShare(x, src) {
					continue
				}
				top.locks[src] = true
				top.writes[row] = p
				what = fmt.Sprintf("copy row %d", src)
				if c := pics.Claim(p); c != nil {
					if _, err := top.scope.Add(c, nil); err == nil {
						what += ", claimed"
					}
				}
			case op < 15 && len(x.stack) < 5: // a savepoint
				ctx, s := filefield.NewScope(top.ctx)
				push(x, ctx, s, map[int]string{})
				what = "savepoint"
			case op < 19:
				what = end(x, true)
			default:
				what = end(x, false)
			}
			trace = append(trace, fmt.Sprintf("%2d %s depth %d row %d: %s; rows %v", step, x.name, len(x.stack), row, what, shorts(committed)))
			check(step, what)
		}
	}
	left := 0
	for _, p := range files(t, fsys) {
		if strings.HasPrefix(p, dir+"/") {
			left++
		}
	}
	require.Less(t, left, uploads/2, "seed %d, refs %v: %d files left of %d uploads", seed, withRefs, left, uploads)
}
