package s3fs_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// Found by a second red-team pass. A small plan (up to 100 targets,
// re-checked with HeadObject) whose targets carry no ETag was deleted
// unconditionally although the bucket honours If-Match: the stat dropped
// HeadObject's ETag, so the re-check had none to hand on. StatFiles
// keeps it, and the rewrite is kept, as with a plan of 150
// (TestRewriteAfterRecheckIsKept).
func TestSmallPlanWithoutETagsKeepsRewrite(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(nil)
	keys := []string{"d/f001.png", "d/f002.png", "d/f003.png"}
	putKeys(t, client, bucket, keys)
	fsys := s3fs.New(client, bucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalSingle}) // what the probe finds on versitygw
	targets := planOf(t, fsys, false)                                                          // no ETags: e.g. an inventory report without the ETag column
	const victim = "d/f002.png"
	s3fs.SetBeforeDelete(fsys, func([]storage.Target) {
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(victim), Body: bytes.NewReader([]byte("v2-2"))})
		require.NoError(t, err)
	})
	out := deleteOutcomes(t, fsys, targets)
	_, err := fsys.Stat(victim)
	assert.NoError(t, err, "the object rewritten after the re-check must be kept (bucket honours If-Match); outcome %+v", out[victim])
	assert.Equal(t, storage.KeptChanged, out[victim].Reason)
	assert.Equal(t, storage.ActionDelete, out["d/f001.png"].Action)
}

// A quarantine move (storage.Delete with MoveTo) copies the object, then
// deletes the source: that delete used to be unconditional, so an object
// rewritten between the two was deleted while the quarantine held only
// its old content. The source's delete now carries the ETag: the
// rewritten object stays, and the stale copy is removed.
func TestQuarantineMoveKeepsRewriteBetweenCopyAndDelete(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	plain := srv.Client(nil)
	const src = "media/u/pic.png"
	putKeys(t, plain, bucket, []string{src})
	var fired atomic.Bool
	hc := hookClient{next: http.DefaultClient, before: func(r *http.Request) {
		if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/u/pic.png") && fired.CompareAndSwap(false, true) {
			_, err := plain.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(src), Body: bytes.NewReader([]byte("NEW!"))})
			require.NoError(t, err)
		}
	}}
	fsys := s3fs.New(srv.ClientVia(hc), bucket, s3fs.Options{Prefix: "media", ConditionalDeletes: s3fs.ConditionalSingle})
	var targets []storage.Target
	require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error {
		targets = append(targets, storage.Target{Path: e.Path, Size: e.Size, ModTime: e.ModTime, ETag: e.ETag, Check: true,
			MoveTo: storage.QuarantineDirName + "/run1/" + e.Path})
		return nil
	}))
	require.Len(t, targets, 1)
	var outs []storage.Outcome
	require.NoError(t, storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { outs = append(outs, o) }}))
	require.True(t, fired.Load())
	q, err := plain.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("media/" + storage.QuarantineDirName + "/run1/u/pic.png")})
	var qbody []byte
	if err == nil {
		qbody = make([]byte, 16)
		n, _ := q.Body.Read(qbody)
		qbody = qbody[:n]
	}
	_, srcErr := fsys.Stat("u/pic.png")
	require.NoError(t, srcErr, "the rewritten object was moved or deleted: outcome %+v, quarantine holds %q", outs[0], qbody)
	assert.Equal(t, storage.KeptChanged, outs[0].Reason)
	assert.Error(t, err, "a stale copy stayed in the quarantine: %q", qbody)
	src2, err := plain.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(src)})
	require.NoError(t, err)
	body, err := io.ReadAll(src2.Body)
	require.NoError(t, err)
	assert.Equal(t, "NEW!", string(body))
}

type hookClient struct {
	next   *http.Client
	before func(*http.Request)
}

func (h hookClient) Do(r *http.Request) (*http.Response, error) {
	h.before(r)
	return h.next.Do(r)
}
