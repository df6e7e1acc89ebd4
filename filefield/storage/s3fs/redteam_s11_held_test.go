package s3fs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/sweep"
)

// Held: a sweep of everything under the prefix "media" never touches
// another application's keys beside it ("media-old/", "mediax/"), nor
// keys with "+", "%" or a space, which are listed and deleted as
// themselves.
func TestS11HeldPrefixSiblingsAndOddKeys(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	c := srv.Client(nil)
	old := time.Now().Add(-30 * 24 * time.Hour)
	keys := []string{"media/a+b.jpg", "media/a b.jpg", "media/a%2Bb.jpg", "media/a%41.jpg", "media/d/x.jpg",
		"media-old/x.jpg", "mediax/y.jpg", "media.jpg"}
	for _, k := range keys {
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: bytes.NewReader([]byte("x"))})
		require.NoError(t, err)
		require.NoError(t, os.Chtimes(filepath.Join(srv.Dir, bucket, filepath.FromSlash(k)), old, old))
	}
	fsys := s3fs.New(c, bucket, s3fs.Options{Prefix: "media", ListWorkers: 4})
	rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: 24 * time.Hour}}}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Deleted.Files)
	for _, k := range keys[5:] {
		_, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(k)})
		assert.NoError(t, err, k)
	}
	for _, k := range keys[:5] {
		_, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(k)})
		assert.Error(t, err, k)
	}
}
