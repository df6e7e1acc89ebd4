package s3fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/sweep"
)

// The server goes away after the first batch of deletions: the sweep
// returns ErrDeleteFailed with a report of what it did, and nothing the
// plan did not hold was deleted (the young objects are all still there).
func TestServerStoppedMidSweep(t *testing.T) {
	srv, err := s3test.Start()
	require.NoError(t, err)
	defer srv.Stop()
	bucket := "killed"
	require.NoError(t, srv.CreateBucket(t.Context(), bucket))
	fill(t, srv, bucket, 3000) // all back-dated
	fsys := s3fs.New(srv.Client(nil), bucket, s3fs.Options{})
	for i := range 50 {
		f, err := fsys.Create(fmt.Sprintf("young/%02d.png", i))
		require.NoError(t, err)
		f.Write([]byte("y"))
		require.NoError(t, f.Close())
	}

	var once sync.Once
	s := sweep.New(fsys, sweep.Options{
		Rules:       []sweep.Rule{{Glob: "**", MaxAge: 24 * time.Hour}},
		Concurrency: 1,
		OnEvent: func(e sweep.Event) {
			if e.Action == "delete" {
				once.Do(srv.Kill) // after the first batch went through
			}
		},
	})
	rep, err := s.Sweep(t.Context())
	require.ErrorIs(t, err, sweep.ErrDeleteFailed)
	assert.Equal(t, 1000, rep.Deleted.Files, "one batch went through")
	assert.Equal(t, 2000, rep.Failed.Files)
	assert.Equal(t, 50, rep.Kept[sweep.KeptYoung].Files)
	assert.NotEmpty(t, rep.Failures)

	// The server's files: every young object and every failed one remain.
	var young, old int
	require.NoError(t, filepath.WalkDir(filepath.Join(srv.Dir, bucket), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "/.") {
			return err
		}
		if strings.Contains(p, "/young/") {
			young++
		} else {
			old++
		}
		return nil
	}))
	assert.Equal(t, 50, young, "nothing outside the plan was deleted")
	assert.Equal(t, 2000, old, "the failed deletions left their objects")
}
