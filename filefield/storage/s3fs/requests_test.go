package s3fs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/sweep"
)

// fill puts n one-byte objects under d/ and back-dates them all.
func fill(t *testing.T, srv *s3test.Server, bucket string, n int) {
	t.Helper()
	client := srv.Client(nil)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("d%d/f%05d.png", i%7, i)), Body: bytes.NewReader([]byte{1})})
			return err
		})
	}
	require.NoError(t, g.Wait())
	old := time.Now().Add(-30 * 24 * time.Hour)
	require.NoError(t, filepath.WalkDir(filepath.Join(srv.Dir, bucket), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}))
}

// TestRequestCounts (T5): over 5,000 keys, a sweep and an orphan plan and
// apply make one listing call per 1000 keys (and a sweep one more per
// batch of 1000, its re-check) and one batch delete per 1000 deletions, and no request per key, where deletes are conditional in
// batches (AWS; forced here, as versitygw ignores the ETags but takes the
// same requests) or not at all. Where only single deletes are
// conditional (versitygw, found by the probe), each deletion is a
// DeleteObject of its own, and the listings stay as they were.
func TestRequestCounts(t *testing.T) {
	const n = 5000
	srv := s3test.Shared(t)
	var count s3test.Counter

	bucket := srv.NewBucket(t)
	fill(t, srv, bucket, n)
	fsys := s3fs.New(srv.Client(&count), bucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalBatch})
	rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: time.Hour}}}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, n, rep.Deleted.Files)
	assert.Equal(t, 2*n/1000, count.Get("list"), "sweep: list calls (the listing, and each batch's re-check)")
	assert.Equal(t, n/1000, count.Get("delete-batch"), "sweep: batch deletes")
	assert.Zero(t, count.Get("head")+count.Get("delete")+count.Get("get"), "sweep: no request per key")

	orphanCounts(t, srv, &count, n, s3fs.ConditionalBatch)
	assert.Equal(t, n/1000, count.Get("delete-batch"), "orphan apply: batch deletes")
	assert.Zero(t, count.Get("head")+count.Get("delete")+count.Get("get"), "orphan: no request per key")
	orphanCounts(t, srv, &count, 1500, s3fs.ConditionalSingle)
	assert.Equal(t, 1500-1, count.Get("delete"), "orphan apply: one conditional delete per key")
	assert.Zero(t, count.Get("head")+count.Get("delete-batch")+count.Get("get"), "orphan: nothing else per key")
}

// orphanCounts fills a bucket with n objects, plans and applies an orphan
// search that keeps one, and checks its listings, counted in count.
func orphanCounts(t *testing.T, srv *s3test.Server, count *s3test.Counter, n int, conditional string) {
	t.Helper()
	bucket := srv.NewBucket(t)
	fill(t, srv, bucket, n)
	count.Reset()
	fsys := s3fs.New(srv.Client(count), bucket, s3fs.Options{ConditionalDeletes: conditional})
	f := orphan.New(fsys, orphan.Paths("d0/f00000.png"), orphan.Options{MaxFraction: -1, Unreferenced: []string{"**"}})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	pages := (n + 999) / 1000
	assert.Equal(t, pages, count.Get("list"), "orphan plan: list calls")
	orep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	assert.Equal(t, n-1, orep.Deleted.Files)
	assert.Equal(t, 2*pages, count.Get("list"), "orphan apply re-checks with one more listing")
}
