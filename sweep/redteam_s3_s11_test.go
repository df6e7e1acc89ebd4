package sweep_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// A QR code regenerated in place between the listing and its removal is
// young when it is removed, and is kept as changed on a local disk
// (TestFileRewrittenBeforeRemovalIsKept). QR codes are deterministic: the
// regenerated file has the same bytes. On S3 a sweep did not re-check an
// object with an ETag and relied on the ETag condition alone; the same
// bytes give the same ETag, so the young object was deleted. Every file
// is re-checked now, objects too.
func TestIdenticalRewriteBeforeRemovalIsKept(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			fsys, _ := b.New(t)
			put(t, fsys, "qr_codes/1/qr.png", 10, 30*day)
			regenerated := false
			rewrite := refsFunc(func(p string) {
				if p == "qr_codes/1/qr.png" && !regenerated {
					regenerated = true
					put(t, fsys, p, 10, 0) // the same 10 bytes, written now
				}
			})
			s := sweep.New(fsys, sweep.Options{Now: clock, Refs: rewrite,
				Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}})
			rep, err := s.Sweep(context.Background())
			require.NoError(t, err)
			require.True(t, regenerated)
			assert.Equal(t, []string{"qr_codes/1/qr.png"}, storagetest.Files(t, fsys),
				"the regenerated (young) file was deleted; deleted %d, kept %v, conditional %q", rep.Deleted.Files, rep.Kept, rep.ConditionalDeletes)
		})
	}
}
