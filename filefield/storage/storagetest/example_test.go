package storagetest_test

import (
	"context"
	"fmt"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// CheckFS runs the conformance suite on any afero.Fs, outside a test too:
// an operator can run it against a bucket before trusting it. Known
// divergences are declared, and the suite checks they are still there.
func ExampleCheckFS() {
	ctx := context.Background()
	err := storagetest.CheckFS(ctx, afero.NewMemMapFs(), storagetest.MemMapFsDivergences)
	fmt.Println("MemMapFs with its divergences declared:", err)

	err = storagetest.CheckFS(ctx, afero.NewMemMapFs(), storagetest.Divergences{})
	fmt.Println("MemMapFs claiming to be a disk conforms:", err == nil)
	// Output:
	// MemMapFs with its divergences declared: <nil>
	// MemMapFs claiming to be a disk conforms: false
}
