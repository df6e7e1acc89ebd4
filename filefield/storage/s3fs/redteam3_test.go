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

// Found by a red-team pass (each failed before its fix).
//
// The probe of conditional deletes takes ANY HTTP 400 to its wrong-ETag
// DeleteObject as "the server does not implement If-Match" (ignored() in
// probe.go), and remembers the answer for the life of the Fs. A 400 is
// also what S3 answers for transient and unrelated failures:
// ExpiredToken (temporary credentials that ran out while a long inventory
// run was planning), RequestTimeout, IncompleteBody, ... On a server that
// honours If-Match on DeleteObject only (versitygw, the "single" way), one
// such transient answer at the probe turns every later deletion of the Fs
// unconditional ("none"), silently: an object rewritten between Apply's
// re-check and its delete request is then deleted, although the server
// would have refused the delete. The package documentation says a probe
// that fails ("a server error") deletes nothing and is probed again; a
// failed request is not a "no".
//
// Safe behaviour asserted: after a transient 400 (ExpiredToken) during
// the probe, the object rewritten after the re-check is not deleted, and
// the Fs does not settle on "none" for a server that honours If-Match.
func TestRedteamProbeTransient400DisablesConditionalDeletes(t *testing.T) {
	f := &fakeS3{ifMatch: true} // versitygw-like: If-Match on DeleteObject only
	f.objects, f.conflict = map[string]fakeObject{}, map[string]bool{}
	var hiccup atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One transient 400 on the first conditional DeleteObject (the
		// probe's wrong-ETag attempt).
		if r.Method == http.MethodDelete && r.Header.Get("If-Match") != "" && hiccup.CompareAndSwap(false, true) {
			s3Error(w, http.StatusBadRequest, "ExpiredToken")
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
	targets := planOf(t, fsys, true) // as an inventory plan carries them
	require.Len(t, targets, 2)
	s3fs.SetBeforeDelete(fsys, func([]storage.Target) { f.put("a/changed.png", "v2") })
	out := map[string]storage.Outcome{}
	_ = storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { out[o.Path] = o }})
	require.True(t, hiccup.Load())
	t.Logf("way: %q, outcomes: changed %+v same %+v", fsys.Features().ConditionalDeletes, out["a/changed.png"], out["a/same.png"])
	assert.True(t, f.has("a/changed.png"), "the object rewritten after the re-check was deleted: a transient 400 at the probe turned conditional deletes off")
	assert.NotEqual(t, "none", fsys.Features().ConditionalDeletes, "a server that honours If-Match is remembered as not honouring it after one transient 400")
}

// Red team (S3 batch deletes, AWS-like server). The same mangling as
// orphan's TestRedteamNoncharacterKeyDeletesAnotherObject, on the "batch"
// way AWS uses: the DeleteObjects body names "a/x\uFFFD.png" instead of
// "a/x\uFFFF.png" (smithy-go's XML encoder replaces characters XML 1.0
// cannot carry), with the orphan's ETag. Two uploads of the same image
// have the same ETag, so the server deletes the other object: here the
// one a row references. The orphan itself stays, reported deleted.
//
// Safe behaviour asserted: the other object is kept, and the orphan is
// not reported removed while it is still there.
func TestRedteamBatchDeleteOfNoncharacterKeyHitsAnotherObject(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server *fakeS3
		opt    string
	}{
		{"aws batch", &fakeS3{ifMatch: true, batchETags: true}, s3fs.ConditionalAuto},
		{"minio none", &fakeS3{}, s3fs.ConditionalAuto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, client := newFake(t, tc.server)
			const orphanKey, other = "a/x\uFFFF.png", "a/x\uFFFD.png"
			require.Error(t, storage.ValidPath(orphanKey), "a noncharacter is refused as a stored path")
			etag := f.put(orphanKey, "same image")
			f.put(other, "same image") // the same bytes uploaded under another name
			fsys := s3fs.New(client, fakeBucket, s3fs.Options{ConditionalDeletes: tc.opt})
			fi, err := fsys.Stat(orphanKey)
			require.NoError(t, err)
			out := map[string]storage.Outcome{}
			_ = storage.Delete(t.Context(), fsys, []storage.Target{{Path: orphanKey, Size: fi.Size(), ModTime: fi.ModTime(), ETag: etag, Check: true}},
				storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { out[o.Path] = o }})
			t.Logf("way %q, outcome %s/%s %v", fsys.Features().ConditionalDeletes, out[orphanKey].Action, out[orphanKey].Reason, out[orphanKey].Err)
			assert.True(t, f.has(other), "the other object %q was deleted in place of %q", other, orphanKey)
			if out[orphanKey].Action == storage.ActionDelete {
				assert.False(t, f.has(orphanKey), "reported deleted, but the orphan is still there")
			}
		})
	}
}

// Below storage.Delete, which refuses such paths, the backend itself
// sends a key XML cannot carry in a request of its own: a batch delete of
// it on a server without conditions removes that object and no other.
func TestRemoveFilesSendsKeysXMLCannotCarryAlone(t *testing.T) {
	f, client := newFake(t, &fakeS3{})
	const odd, other = "a/x\uFFFF.png", "a/x\uFFFD.png"
	f.put(odd, "same image")
	f.put(other, "same image")
	f.put("a/plain.png", "x")
	fsys := s3fs.New(client, fakeBucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalOff})
	errs := fsys.RemoveFiles(t.Context(), []storage.Target{{Path: odd}, {Path: "a/plain.png"}})
	assert.Equal(t, []error{nil, nil}, errs)
	assert.False(t, f.has(odd), "the odd key is deleted")
	assert.False(t, f.has("a/plain.png"))
	assert.True(t, f.has(other), "the key XML would have named instead is kept")
}
