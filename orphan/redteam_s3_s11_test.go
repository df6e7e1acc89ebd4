package orphan_test

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

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// s11Hook is an s3.HTTPClient that lets a test act before a request is
// sent, or answer it itself (resp not nil).
type s11Hook struct {
	next   *http.Client
	before func(*http.Request) (resp *http.Response)
}

func (h s11Hook) Do(r *http.Request) (*http.Response, error) {
	if h.before != nil {
		if resp := h.before(r); resp != nil {
			return resp, nil
		}
	}
	return h.next.Do(r)
}

func s11Get(t *testing.T, c *s3.Client, bucket, key string) (string, bool) {
	t.Helper()
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(key)})
	if err != nil {
		return "", false
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return string(b), true
}

func s11Put(t *testing.T, c *s3.Client, bucket, key, body string) {
	t.Helper()
	_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader([]byte(body))})
	require.NoError(t, err)
}

// quarantineOne quarantines media/pics/a.jpg (an orphan) through
// orphan.Apply on the tests' S3 server and returns the bucket, a plain
// client, the run, and an s3fs.Fs on the same bucket whose requests go
// through hook.
func s11QuarantineOne(t *testing.T, hook func(*http.Request) *http.Response) (string, *s3.Client, string, *s3fs.Fs) {
	t.Helper()
	srv := s3test.Shared(t)
	setup := srv.Fs(t, "media")
	put(t, setup, "pics/ref.jpg", 3, 10*day)
	put(t, setup, "pics/a.jpg", 5, 10*day)
	f := orphan.New(setup, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, Quarantine: "trash", MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, 1)
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Quarantined.Files)
	plain := srv.Client(nil)
	_, ok := s11Get(t, plain, setup.Bucket, "media/pics/a.jpg")
	require.False(t, ok, "moved into the quarantine")
	hooked := s3fs.New(srv.ClientVia(s11Hook{next: http.DefaultClient, before: hook}), setup.Bucket, s3fs.Options{Prefix: "media"})
	return setup.Bucket, plain, rep.QuarantineRun, hooked
}

// Restore promises "A file is never put back over anything at its path"
// and storage.Mover promises "never replace an existing newname". On S3
// the move checks the destination with a HEAD and then copies with
// If-None-Match: *, which versitygw v1.8.0 (the tests' own server)
// ignores on CopyObject. A new upload at the stored path between the HEAD
// and the copy was overwritten by the quarantined file, and was lost: its
// bytes were nowhere any more, and Restore reported success. A restore now
// writes the bytes with a create-only PutObject, which versitygw honours.
func TestRestoreDoesNotOverwriteAnUploadMadeAfterTheHead(t *testing.T) {
	t.Parallel()
	var bucket string
	var plain *s3.Client
	var fired atomic.Bool
	hook := func(r *http.Request) *http.Response {
		// The request that writes the path: a CopyObject, or a PutObject.
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/media/pics/a.jpg") && fired.CompareAndSwap(false, true) {
			s11Put(t, plain, bucket, "media/pics/a.jpg", "A NEW UPLOAD") // the app writes the path again
		}
		return nil
	}
	var run string
	var fsys *s3fs.Fs
	bucket, plain, run, fsys = s11QuarantineOne(t, hook)

	rep, rerr := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), run)
	require.True(t, fired.Load(), "the copy was sent")
	body, ok := s11Get(t, plain, bucket, "media/pics/a.jpg")
	require.True(t, ok)
	assert.Equal(t, "A NEW UPLOAD", body, "Restore put the quarantined file back over a file at its path (restore err %v, report %+v)", rerr, rep)
}

// When a restore's copy is made but the delete of the quarantined source
// fails, the move deleted "the copy of what it held ... it is ours, made
// just now" unconditionally. By then the stored path is live again: a
// file the application wrote there after the copy (during the SDK's
// retries of the failing delete) was deleted. The copy is now deleted
// only if it still has the copy's own ETag.
func TestFailedRestoreKeepsAFileWrittenAtThePathAfterTheCopy(t *testing.T) {
	t.Parallel()
	var bucket string
	var plain *s3.Client
	var wrote atomic.Bool
	hook := func(r *http.Request) *http.Response {
		if r.Method == http.MethodDelete && strings.Contains(r.URL.Path, "/.mediaclean-quarantine/") && strings.HasSuffix(r.URL.Path, "/pics/a.jpg") {
			if wrote.CompareAndSwap(false, true) {
				s11Put(t, plain, bucket, "media/pics/a.jpg", "THE APP'S NEW VERSION")
			}
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 Service Unavailable", Header: http.Header{"Content-Type": {"application/xml"}},
				Body: io.NopCloser(strings.NewReader("<Error><Code>SlowDown</Code><Message>test</Message></Error>")), Request: r}
		}
		return nil
	}
	var run string
	var fsys *s3fs.Fs
	bucket, plain, run, fsys = s11QuarantineOne(t, hook)

	rep, rerr := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), run)
	require.True(t, wrote.Load(), "the source delete was tried")
	body, ok := s11Get(t, plain, bucket, "media/pics/a.jpg")
	assert.True(t, ok, "the file the application wrote at its path after the copy was deleted (restore err %v, report %+v)", rerr, rep)
	assert.Equal(t, "THE APP'S NEW VERSION", body)
}
