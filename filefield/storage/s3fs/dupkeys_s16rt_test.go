package s3fs_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// The same path given twice to one Delete (a companion listed twice, a
// plan with a repeated line) is reported truthfully when requests fail:
// a target is reported deleted only if the object is gone, and the object
// is gone only if some target says so. RemoveFiles used to key a batch's
// results by object key, so when the DeleteObjects request failed the
// first of two equal keys kept a nil error and Delete reported it
// deleted while the object was still there.
func TestS16DuplicateTargetsReportWhatHappened(t *testing.T) {
	srv := s3test.Shared(t)
	for _, fail := range [][]string{{"delete-batch"}, {"delete-batch", "delete"}, nil} {
		for _, mode := range []string{s3fs.ConditionalOff, s3fs.ConditionalAuto} {
			t.Run(fmt.Sprint(fail, mode), func(t *testing.T) {
				bucket := srv.NewBucket(t)
				p := srv.Proxy(t)
				fsys := s3fs.New(p.Client(nil), bucket, s3fs.Options{ConditionalDeletes: mode})
				f, err := fsys.Create("pics/a.png")
				require.NoError(t, err)
				_, err = f.Write([]byte("still needed"))
				require.NoError(t, err)
				require.NoError(t, f.Close())
				fi, err := fsys.Stat("pics/a.png")
				require.NoError(t, err)

				if fail != nil {
					p.Fail(s3test.Is(fail...), 403, "AccessDenied")
				}
				t0 := storage.Target{Path: "pics/a.png", Size: fi.Size(), ModTime: fi.ModTime(), Check: true}
				t1 := t0
				t1.Index = 1
				var deleted, failed int
				require.NoError(t, storage.Delete(t.Context(), fsys, []storage.Target{t0, t1}, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) {
					switch o.Action {
					case storage.ActionDelete:
						deleted++
					case storage.ActionFail:
						failed++
					}
				}}))
				p.Reset()
				_, serr := fsys.Stat("pics/a.png")
				gone := serr != nil
				assert.Equal(t, gone, deleted > 0, "object gone: %v, targets reported deleted: %d (failed %d)", gone, deleted, failed)
				if len(fail) == 2 {
					assert.False(t, gone, "every delete request failed")
					assert.Equal(t, 2, failed)
				}
			})
		}
	}
}
