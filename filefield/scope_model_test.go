package filefield_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// A randomized model of a database with savepoints and of the ways
// applications and the ORM integrations use scopes: an upload written in
// its own scope or by a statement in a savepoint that claims it (and may
// roll back, and be retried), the deferred Rollback idiom, an early Commit
// inside the scope, a statement that fails (ClaimUnheld, then Rollback),
// an autocommitted statement (Claim, then CommitEarly), and deletes. Many
// scopes hold one change. After every step, each file a committed row
// points at must exist: losing it is the one outcome no rule may allow.
// Files may be kept where the outcome is unknown, but the test also
// checks that stale files do go, so that keeping everything cannot pass.
func TestScopesWithSavepointsAgainstADatabaseModel(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends[:2], func(t *testing.T, fsys afero.Fs, _ string) {
		seed := uint64(time.Now().UnixNano())
		if v := os.Getenv("SCOPE_MODEL_SEED"); v != "" {
			seed, _ = strconv.ParseUint(v, 10, 64)
		}
		rnd := rand.New(rand.NewPCG(seed, 2))
		var trace []string
		short := func(p string) string {
			if len(p) > 10 {
				return p[5:10]
			}
			return p
		}
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) {
			if e.Action != filefield.ActionStore {
				trace = append(trace, fmt.Sprintf("      %s %s %s", e.Action, short(e.Path), e.Reason))
			}
		}})
		const rows = 4
		committed := make([]string, rows) // the rows' paths, as committed
		uploads := 0
		type frame struct {
			ctx    context.Context
			scope  *filefield.Scope
			writes map[int]string // rows this transaction (savepoint) wrote
			defers []func()       // deferred calls of the handler, run before the frame ends
		}
		type upl struct {
			ch  *filefield.Change
			row int
			old string
		}
		for round := range 60 {
			root, rootScope := filefield.NewScope(t.Context())
			stack := []*frame{{ctx: root, scope: rootScope, writes: map[int]string{}}}
			var made []upl // this round's uploads, for retries
			trace = trace[:0]
			view := func(row int) string {
				for i := len(stack) - 1; i >= 0; i-- {
					if p, ok := stack[i].writes[row]; ok {
						return p
					}
				}
				return committed[row]
			}
			writtenOpen := func(row int) bool {
				for _, f := range stack {
					if _, ok := f.writes[row]; ok {
						return true
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
						require.Failf(t, "a committed row's file is gone", "seed %d, round %d, step %d (%s): row %d holds %s\n%s", seed, round, step, what, row, p, strings.Join(trace, "\n"))
					}
				}
			}
			replace := func(ctx context.Context, row int) *filefield.Change {
				uploads++
				ch, err := pics.Replace(ctx, view(row), upload(fmt.Sprintf("%d-%d", round, uploads)))
				require.NoError(t, err)
				made = append(made, upl{ch, row, view(row)})
				trace = append(trace, fmt.Sprintf("      upload %s -> %s", short(view(row)), short(ch.New)))
				return ch
			}
			end := func(commit bool) string {
				top := stack[len(stack)-1]
				for i := len(top.defers) - 1; i >= 0; i-- {
					top.defers[i]()
				}
				stack = stack[:len(stack)-1]
				if !commit {
					top.scope.Rollback(top.ctx)
					return "rollback"
				}
				top.scope.Commit(top.ctx)
				if len(stack) == 0 {
					for row, p := range top.writes {
						committed[row] = p
					}
				} else {
					maps.Copy(stack[len(stack)-1].writes, top.writes)
				}
				return "commit"
			}
			for step := 0; len(stack) > 0; step++ {
				top := stack[len(stack)-1]
				row := rnd.IntN(rows)
				what := ""
				switch op := rnd.IntN(20); {
				case step >= 40:
					what = end(rnd.IntN(3) > 0)
				case op < 4: // a handler replaces the row's file in its transaction
					ch := replace(top.ctx, row)
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
					ch := replace(top.ctx, row)
					ctx, s := filefield.NewScope(top.ctx)
					c := pics.Claim(ch.New)
					require.NotNil(t, c)
					_, err := s.Add(c, nil)
					require.NoError(t, err)
					stack = append(stack, &frame{ctx: ctx, scope: s, writes: map[int]string{row: ch.New}})
					what = "replace, written in a savepoint"
				case op < 7: // a retry: a savepoint writes an earlier upload again
					var open []upl
					for _, u := range made {
						if view(u.row) == u.old && u.ch.Held() {
							open = append(open, u)
						}
					}
					if len(open) == 0 {
						continue
					}
					u := open[rnd.IntN(len(open))]
					c := pics.Claim(u.ch.New)
					if c == nil {
						continue // finished meanwhile
					}
					ctx, s := filefield.NewScope(top.ctx)
					_, err := s.Add(c, nil)
					require.NoError(t, err)
					stack = append(stack, &frame{ctx: ctx, scope: s, writes: map[int]string{u.row: u.ch.New}})
					what = "retry in a savepoint"
				case op < 8 && rnd.IntN(2) == 0:
					// A statement writes an earlier upload again (a stale
					// copy of a row saved), in whatever frame: the
					// integration claims it into the innermost open scope,
					// where the database runs the statement.
					var open []upl
					for _, u := range made {
						if u.ch.Held() {
							open = append(open, u)
						}
					}
					if len(open) == 0 {
						continue
					}
					u := open[rnd.IntN(len(open))]
					c := pics.Claim(u.ch.New)
					if c == nil {
						continue
					}
					if _, err := top.scope.Add(c, nil); err != nil {
						continue
					}
					top.writes[u.row] = u.ch.New
					what = "written again"
				case op < 8 && rnd.IntN(2) == 0:
					// A handler with no scope: its statement fails, and
					// the statement's own scope, rolling back, gives the
					// upload back; the handler gives up on it or retries
					// the statement, which commits on its own.
					if writtenOpen(row) {
						continue // the open transaction holds the row's lock
					}
					bare := filefield.WithoutScope(top.ctx)
					ch := replace(bare, row)
					c := pics.ClaimUnheld(ch.New)
					require.Same(t, ch, c)
					fctx, failed := filefield.NewScope(bare)
					err := failed.AddClaimed(c)
					require.NoError(t, err)
					failed.Rollback(fctx)
					if rnd.IntN(2) == 0 {
						ch.Rollback(bare)
						what = "unscoped failed statement, given up"
						break
					}
					require.Same(t, ch, pics.Claim(ch.New))
					ctx, s := filefield.NewScope(bare)
					err = s.AddClaimed(ch)
					require.NoError(t, err)
					committed[row] = ch.New
					s.Commit(ctx)
					what = "unscoped failed statement, retried"
				case op < 8: // the statement fails; the handler rolls its upload back and goes on
					ch := replace(top.ctx, row)
					if c := pics.ClaimUnheld(ch.New); c != nil {
						c.Rollback(top.ctx)
					}
					ch.Rollback(top.ctx)
					what = "failed statement"
				case op < 9: // an autocommitted statement writes the row
					if writtenOpen(row) {
						continue
					}
					ch := replace(top.ctx, row)
					c := pics.Claim(ch.New)
					require.NotNil(t, c)
					committed[row] = ch.New
					c.CommitEarly(top.ctx)
					what = "autocommit"
				case op < 11: // the row's file is deleted with the row's update
					old := view(row)
					if old == "" {
						continue
					}
					_, err := pics.Delete(top.ctx, old)
					require.NoError(t, err)
					top.writes[row] = ""
					what = "delete"
				case op < 13 && len(stack) < 5: // a savepoint
					ctx, s := filefield.NewScope(top.ctx)
					stack = append(stack, &frame{ctx: ctx, scope: s, writes: map[int]string{}})
					what = "savepoint"
				case op < 17:
					what = end(true)
				default:
					what = end(false)
				}
				trace = append(trace, fmt.Sprintf("%2d depth %d row %d: %s; rows %v", step, len(stack), row, what, shorts(committed)))
				check(step, what)
			}
		}
		// Stale files went: far fewer files than uploads remain.
		left := len(files(t, fsys))
		require.Less(t, left, uploads/2, "seed %d: %d files left of %d uploads", seed, left, uploads)
	})
}

func shorts(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if len(p) > 10 {
			out[i] = p[5:10]
		}
	}
	return out
}

// Found by TestScopesWithSavepointsAgainstADatabaseModel. In one
// transaction the row takes upload A, then B (A's file is now stale),
// then a statement writes A again (a stale copy of the struct saved): the
// integration claims A's change into the scope. The row commits holding
// A, whose file the replace used to delete at the commit, since the
// change that made it stale was registered after A's.
func TestPathWrittenAgainAfterItsReplaceIsKept(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		for _, nested := range []string{"", "released savepoint", "savepoint never released"} {
			ctx, scope := filefield.NewScope(t.Context())
			a, err := pics.Save(ctx, upload("a"))
			require.NoError(t, err)
			b, err := pics.Replace(ctx, a.New, upload("b"))
			require.NoError(t, err)
			at := scope
			if nested != "" { // the stale write in a savepoint
				_, at = filefield.NewScope(ctx)
			}
			c := pics.Claim(a.New)
			require.Same(t, a, c)
			_, err = at.Add(c, nil)
			require.NoError(t, err)
			if nested != "savepoint never released" {
				at.Commit(ctx)
			}
			res := scope.Commit(ctx)
			assert.Contains(t, files(t, fsys), a.New, "%q: the row holds A; result %+v", nested, res)
			assert.Contains(t, files(t, fsys), b.New, "%q: B was committed by its change", nested)
		}
	})
}
