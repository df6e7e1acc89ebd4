package filefield_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// hashPathS16 is the stored path HashNames gives body under dir.
func hashPathS16(dir string, body []byte) string {
	s := sha256.Sum256(body)
	return dir + "/" + hex.EncodeToString(s[:16]) + ".png"
}

// TestS16HashReuseByRewriteRacesConditionalDelete: on S3, a HashNames
// upload that finds its content already stored "touches" the object by
// storing the same bytes again (objects have no settable time), and the
// deletion pipeline's last guard against a reuse after its re-check is
// the ETag condition on the delete request. The same bytes give the same
// ETag (MD5), so that guard does not see the reuse: a second process
// (its own Field, its own path locks) that reused the file between the
// re-check and the delete request got success, its row committed
// pointing at the object, and the object was deleted. An upload now
// reuses only a file younger than half of ReuseGrace, which no deletion
// can be about to delete: B's bytes go under a name of their own, and
// every file a committed row names is there.
func TestS16HashReuseByRewriteRacesConditionalDelete(t *testing.T) {
	srv := s3test.Shared(t)
	fsA := srv.Fs(t, "")                                         // process A, which back-dates for the test
	fsB := s3fs.New(srv.Client(nil), fsA.Bucket, s3fs.Options{}) // process B: a plain s3fs, no settable times
	noRefs := filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, nil })
	opts := filefield.Options{Dir: "pics", HashNames: true, Refs: noRefs}
	a := filefield.New("pics", fsA, opts)
	b := filefield.New("pics", fsB, opts)

	first, err := a.Save(t.Context(), upload("same"))
	require.NoError(t, err)
	first.Commit(t.Context())
	old := time.Now().Add(-48 * time.Hour)
	require.NoError(t, fsA.Chtimes(first.New, old, old))

	var once sync.Once
	var reused *filefield.Change
	var saveErr error
	fsA.BeforeDelete = func(targets []storage.Target) {
		for _, tg := range targets {
			if tg.Path != first.New {
				continue
			}
			once.Do(func() {
				// B's request: same bytes, committed row.
				reused, saveErr = b.Save(context.Background(), upload("same"))
				if saveErr == nil {
					reused.Commit(context.Background())
				}
			})
		}
	}
	del, err := a.Delete(t.Context(), first.New)
	require.NoError(t, err)
	res := del.Commit(t.Context())
	require.NoError(t, saveErr)
	require.NotNil(t, reused, "the race was not staged")
	assert.NotEqual(t, first.New, reused.New, "an old file was reused")
	_, serr := fsB.Stat(reused.New)
	require.NoErrorf(t, serr, "B's upload succeeded and its row committed pointing at %s, which A deleted: %+v", reused.New, res)
	got, err := afero.ReadFile(fsB, reused.New)
	require.NoError(t, err)
	assert.Equal(t, string(png("same")), string(got))
	assert.Equal(t, []string{first.New}, res.Deleted, "A's delete of the old file went ahead")
}
