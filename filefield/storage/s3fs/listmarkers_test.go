package s3fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// Parallel listings over a tree with empty directories (versitygw lists
// an empty folder as a "dir/" marker object) and keys that sort around
// split points.
func TestParallelListingWithDirectoryMarkers(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	var keys []string
	for d := range 40 {
		for i := range 60 {
			keys = append(keys, fmt.Sprintf("m/d%03d/f%03d.png", d, i))
		}
		keys = append(keys, fmt.Sprintf("m/d%03d-x.png", d), fmt.Sprintf("m/d%03d.png", d))
		require.NoError(t, os.MkdirAll(filepath.Join(srv.Dir, bucket, fmt.Sprintf("m/d%03d/empty%d", d, d)), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(srv.Dir, bucket, fmt.Sprintf("m/d%03d~e", d)), 0o755))
	}
	stored := write(t, srv, bucket, keys)
	var exp []string
	for _, k := range stored {
		exp = append(exp, k[2:])
	}
	slices.Sort(exp)
	for _, w := range []int{1, 2, 4, 8} {
		for _, pk := range []int{50, 200, 4000} {
			f := s3fs.New(srv.Client(nil), bucket, s3fs.Options{Prefix: "m", ListWorkers: w})
			s3fs.SetPartKeys(f, pk)
			for _, opts := range []storage.ListOptions{{}, {From: "d005/", To: "d030/f010.png"}, {From: "d010", To: "d010/"}, {From: "d003/empty3", To: "d039~e"}} {
				var got []string
				require.NoError(t, f.ListFiles(t.Context(), opts, func(e storage.Entry) error { got = append(got, e.Path); return nil }))
				var want []string
				for _, p := range exp {
					if opts.To == "" || (p >= opts.From && p <= opts.To) {
						want = append(want, p)
					}
				}
				require.Equal(t, want, got, "w=%d pk=%d opts=%+v", w, pk, opts)
			}
		}
	}
}
