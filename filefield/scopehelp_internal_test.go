package filefield

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/afero"
)

// Helpers of the scope tests in package filefield.

func ccPNG(tag string) Upload {
	return Upload{Body: bytes.NewReader(append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), tag...)), Name: tag + ".png"}
}

func ccExists(fsys afero.Fs, p string) bool { ok, _ := afero.Exists(fsys, p); return ok }

// ccSetup returns a field on MemMapFs with PendingTimeout off, and a
// committed upload, "old", for changes to replace.
func ccSetup(t *testing.T, opts Options) (context.Context, afero.Fs, *Field, *Change) {
	t.Helper()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	opts.Dir, opts.PendingTimeout = "pics", -1
	f := New("pics", fsys, opts)
	old, err := f.Save(ctx, ccPNG("old"))
	if err != nil {
		t.Fatal(err)
	}
	old.Commit(ctx)
	return ctx, fsys, f, old
}
