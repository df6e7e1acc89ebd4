package filefield_test

import (
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
)

// The row takes A in the transaction (scope S). A savepoint (child C)
// replaces A by B. While C is open, a statement issued through the outer
// transaction's handle (its context carries S: in gorm, the outer `tx`
// captured by the inner Transaction's closure) writes A back. On the
// database that statement runs after C's, inside the savepoint; the row
// commits holding A. takeTree puts every child's changes after the
// parent's, whatever the time they were registered, so B's replace comes
// last and deletes A.
func TestReviewParentWriteWhileChildOpenKeepsFile(t *testing.T) {
	for _, release := range []bool{true, false} {
		name := "savepoint never released"
		if release {
			name = "savepoint released"
		}
		t.Run(name, func(t *testing.T) {
			fsys := afero.NewMemMapFs()
			pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
			ctx, scope := filefield.NewScope(t.Context())
			a, err := pics.Save(ctx, upload("a")) // row = A
			require.NoError(t, err)
			cctx, child := filefield.NewScope(ctx)
			b, err := pics.Replace(cctx, a.New, upload("b")) // row = B, in the savepoint
			require.NoError(t, err)
			// row = A again, through the outer handle: the integration
			// claims A's change into S.
			c := pics.Claim(a.New)
			require.Same(t, a, c)
			_, err = scope.Add(c, nil)
			require.NoError(t, err)
			if release {
				child.Commit(cctx)
			}
			res := scope.Commit(ctx)
			assert.Contains(t, files(t, fsys), a.New, "the committed row holds A; result %+v", res)
			_ = b
		})
	}
}
