package filefield_test

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// Random concurrent ends of nested and unrelated scopes sharing changes,
// with Commit/Rollback/Held/ClaimUnheld on the changes: looks for
// deadlocks (watchdog) and data races (-race).
func TestScopesUnderConcurrentUseDoNotDeadlock(t *testing.T) {
	ctx := t.Context()
	for iter := 0; iter < 200; iter++ {
		rng := rand.New(rand.NewSource(int64(iter)))
		fsys := afero.NewMemMapFs()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
		root1, s1 := filefield.NewScope(ctx)
		_, s2 := filefield.NewScope(ctx)
		c1ctx, c1 := filefield.NewScope(root1)
		_, c2 := filefield.NewScope(c1ctx)
		scopes := []*filefield.Scope{s1, s2, c1, c2}
		ctxs := []context.Context{root1, c1ctx}
		var changes []*filefield.Change
		for i := 0; i < 12; i++ {
			ch, err := f.Save(ctxs[rng.Intn(len(ctxs))], upload(fmt.Sprint(iter, i)))
			require.NoError(t, err)
			changes = append(changes, ch)
			for k := 0; k < 2; k++ {
				_, _ = scopes[rng.Intn(len(scopes))].Add(ch, nil)
			}
		}
		var wg sync.WaitGroup
		for g := 0; g < 6; g++ {
			wg.Add(1)
			seed := rng.Int63()
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewSource(seed))
				for k := 0; k < 20; k++ {
					switch r.Intn(7) {
					case 0:
						scopes[r.Intn(len(scopes))].Commit(ctx)
					case 1:
						scopes[r.Intn(len(scopes))].Rollback(ctx)
					case 2:
						changes[r.Intn(len(changes))].Commit(ctx)
					case 3:
						changes[r.Intn(len(changes))].Rollback(ctx)
					case 4:
						changes[r.Intn(len(changes))].Held()
					case 5:
						ch := changes[r.Intn(len(changes))]
						f.ClaimUnheld(ch.New)
					case 6:
						_, _ = scopes[r.Intn(len(scopes))].Add(changes[r.Intn(len(changes))], nil)
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("iteration %d: deadlock", iter)
		}
	}
}
