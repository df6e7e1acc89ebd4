package s3fs_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
)

// Found by red-team passes (each case failed before its fix). The probe
// of conditional deletes took any HTTP 400 to its wrong-ETag
// DeleteObject for "the server does not implement If-Match", and
// remembered it for the life of the Fs. A 400 is also what S3 answers for
// transient failures (ExpiredToken: temporary credentials that ran out
// during a long run), and what a proxy or load balancer in front of the
// bucket sends as its own page (HTML, or no body), for which the SDK
// makes up the code BadRequest. On a server that honours If-Match on
// DeleteObject only (versitygw), one such answer turned every later
// deletion unconditional: an object rewritten between the re-check and
// its delete was deleted. A failed request is not a "no": the probe
// fails and is tried again.
func TestProbeAnswerThatIsNoAnswerKeepsConditions(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(w http.ResponseWriter)
	}{
		{"ExpiredToken", func(w http.ResponseWriter) { s3Error(w, http.StatusBadRequest, "ExpiredToken") }},
		{"proxy html", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center><hr><center>nginx</center></body></html>"))
		}},
		{"proxy empty", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hiccup atomic.Bool
			// One such 400 on the first conditional DeleteObject (the
			// probe's wrong-ETag attempt).
			f, client := newFakeVia(t, &fakeS3{ifMatch: true}, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodDelete && r.Header.Get("If-Match") != "" && hiccup.CompareAndSwap(false, true) {
						tc.send(w)
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			f.put("a/same.png", "v1")
			f.put("a/changed.png", "v1")
			fsys := s3fs.New(client, fakeBucket, s3fs.Options{})
			targets := planOf(t, fsys, true) // as an inventory plan carries them
			require.Len(t, targets, 2)
			s3fs.SetBeforeDelete(fsys, func([]storage.Target) { f.put("a/changed.png", "v2") })
			_ = storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{})
			require.True(t, hiccup.Load())
			assert.True(t, f.has("a/changed.png"), "the object rewritten after the re-check was deleted (way %q)", fsys.Features().ConditionalDeletes)
			assert.NotEqual(t, "none", fsys.Features().ConditionalDeletes, "a server that honours If-Match is remembered as not honouring it after one 400")
		})
	}
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
