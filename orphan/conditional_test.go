package orphan_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// On S3 a plan carries each object's ETag. An object rewritten after Find
// with the same size and time (content edited, time set back) is kept by
// Apply's re-check, which compares ETags; one rewritten after that
// re-check, just before its delete request, is kept by the server's
// conditional delete (versitygw honours If-Match on single deletes, so the
// report says "single"). Both are reported as changed.
func TestS3RewritesAreKept(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "")
	for i := range 150 {
		put(t, fsys, fmt.Sprintf("pics/%03d.jpg", i), 10, 10*day)
	}
	rewrite := func(p string) {
		_, err := srv.Client(nil).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String(p), Body: bytes.NewReader(bytes.Repeat([]byte{7}, 10))})
		require.NoError(t, err)
		require.NoError(t, fsys.Chtimes(p, now.Add(-10*day), now.Add(-10*day)))
	}
	var sent []string
	fsys.BeforeDelete = func(targets []storage.Target) {
		for _, tg := range targets {
			sent = append(sent, tg.Path)
		}
		rewrite("pics/042.jpg")
	}
	f := orphan.New(fsys, orphan.Paths("pics/none.jpg"), orphan.Options{Now: clock, MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, 150)
	for _, o := range plan.Orphans {
		require.NotEmpty(t, o.ETag, o.Path)
	}
	rewrite("pics/007.jpg")
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	assert.Equal(t, 148, rep.Deleted.Files)
	assert.Equal(t, 2, rep.Kept[orphan.KeptChanged].Files)
	assert.Equal(t, "single", rep.ConditionalDeletes)
	assert.Equal(t, []string{"pics/007.jpg", "pics/042.jpg"}, files(t, fsys))
	assert.False(t, slices.Contains(sent, "pics/007.jpg"), "the re-check kept it: same size and time, another ETag")
	assert.True(t, slices.Contains(sent, "pics/042.jpg"), "the server kept it")
}
