package s3fs_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
)

// Found by a red-team review (it failed before the fix). A proxy or load balancer in front of the bucket answers one request
// with its own 400 page (HTML, or no body at all), not an S3 error: the
// SDK then has no code, or a generic one, for it. On a server that
// honours If-Match on DeleteObject only (versitygw), one such answer to
// the probe's wrong-ETag delete settles the Fs on deletes without
// conditions for its whole life, although the server never said it
// ignores If-Match.
func TestReviewProbeProxy400IsNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(w http.ResponseWriter)
	}{
		{"html", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center><hr><center>nginx</center></body></html>"))
		}},
		{"empty", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeS3{ifMatch: true}
			f.objects, f.conflict = map[string]fakeObject{}, map[string]bool{}
			var hiccup atomic.Bool
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && r.Header.Get("If-Match") != "" && hiccup.CompareAndSwap(false, true) {
					tc.send(w)
					return
				}
				f.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			client := s3.New(s3.Options{
				BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
				Credentials:                credentials.NewStaticCredentialsProvider("k", "s", ""),
				UsePathStyle:               true,
				RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
				ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
				RetryMaxAttempts:           1,
			})
			f.put("a/same.png", "v1")
			f.put("a/changed.png", "v1")
			fsys := s3fs.New(client, fakeBucket, s3fs.Options{})
			targets := planOf(t, fsys, true)
			require.Len(t, targets, 2)
			s3fs.SetBeforeDelete(fsys, func([]storage.Target) { f.put("a/changed.png", "v2") })
			_ = storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{})
			require.True(t, hiccup.Load())
			assert.True(t, f.has("a/changed.png"), "the object rewritten after the re-check was deleted (way %q)", fsys.Features().ConditionalDeletes)
			assert.NotEqual(t, "none", fsys.Features().ConditionalDeletes)
		})
	}
}
