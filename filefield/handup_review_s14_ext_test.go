package filefield_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield"
)

// Saves into a savepoint's scope keep going while another goroutine
// commits it; the last Save that succeeded must be the parent's when the
// child's Commit ends it (with 7331a35, one registered after
// handUpFirst's snapshot was handed over only after the child ended). The
// parent commits right after, and the change's deferred Rollback runs:
// every scope committed, so its new file must stay.
func TestHandUpExtSaveDuringChildCommitKeepsNewFile(t *testing.T) {
	lost, runs := 0, 60
	for range runs {
		fsys := afero.NewMemMapFs()
		ctx := context.Background()
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		pctx, parent := filefield.NewScope(ctx)
		cctx, child := filefield.NewScope(pctx)
		for i := range 400 {
			if _, err := pics.Save(cctx, upload(fmt.Sprint("pre", i))); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { child.Commit(cctx); close(done) }()
		var last *filefield.Change
		for i := 0; ; i++ {
			ch, err := pics.Save(cctx, upload(fmt.Sprint("during", i)))
			if errors.Is(err, filefield.ErrScopeEnded) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			last = ch
		}
		parent.Commit(pctx)
		if last != nil {
			last.Rollback(ctx)
		}
		<-done
		if last != nil {
			if ok, _ := afero.Exists(fsys, last.New); !ok {
				lost++
			}
		}
	}
	assert.Zero(t, lost, "new file deleted in %d of %d runs though every scope committed", lost, runs)
}
