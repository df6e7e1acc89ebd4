package s3fs_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// fakeS3 is a test double of the few S3 calls conditional deletes
// involve (PutObject, HeadObject, DeleteObject, DeleteObjects,
// ListObjectsV2), on one bucket in memory, with the behaviours of
// conditional deletes chosen per server: AWS honours If-Match on
// DeleteObject and per-object ETags in DeleteObjects (412 or a per-key
// PreconditionFailed on a mismatch, 404 NoSuchKey for a missing key,
// 409 ConditionalRequestConflict while another request on the key is in
// flight); versitygw honours only the first; MinIO neither.
type fakeS3 struct {
	ifMatch    bool // DeleteObject honours If-Match
	batchETags bool // DeleteObjects honours per-object ETags
	failPut    bool // PutObject answers 500

	mu       sync.Mutex
	objects  map[string]fakeObject
	conflict map[string]bool // keys whose conditional deletes answer 409
	kinds    []string        // the request kinds served, in order (s3test.Kind)
	batchTag []string        // the ETags DeleteObjects requests carried
}

type fakeObject struct {
	body  []byte
	etag  string // quoted
	mtime time.Time
}

const fakeBucket = "fake"

// newFake starts the double and returns it with a client for it.
func newFake(t *testing.T, f *fakeS3) (*fakeS3, *s3.Client) {
	return newFakeVia(t, f, nil)
}

// newFakeVia is newFake with wrap, when set, in front of the double: a
// test answers some requests itself.
func newFakeVia(t *testing.T, f *fakeS3, wrap func(http.Handler) http.Handler) (*fakeS3, *s3.Client) {
	f.objects, f.conflict = map[string]fakeObject{}, map[string]bool{}
	var h http.Handler = f
	if wrap != nil {
		h = wrap(f)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := s3.New(s3.Options{
		BaseEndpoint:               aws.String(srv.URL),
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider("k", "s", ""),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           1,
	})
	return f, client
}

// put stores an object as a PutObject would, returning its ETag.
func (f *fakeS3) put(key, body string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putLocked(key, []byte(body))
}

func (f *fakeS3) putLocked(key string, body []byte) string {
	sum := md5.Sum(body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	f.objects[key] = fakeObject{body: body, etag: etag, mtime: time.Now().Add(-48 * time.Hour).Truncate(time.Second)}
	return etag
}

func (f *fakeS3) has(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.objects[key]
	return ok
}

func (f *fakeS3) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, k := range f.kinds {
		if k == kind {
			n++
		}
	}
	return n
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := s3test.Kind(r)
	f.kinds = append(f.kinds, kind)
	key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+fakeBucket), "/")
	switch kind {
	case "put":
		f.servePut(w, r, key)
	case "head":
		f.serveHead(w, key)
	case "delete":
		f.serveDelete(w, r, key)
	case "delete-batch":
		f.serveBatch(w, r)
	case "list":
		f.serveList(w, r)
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
	}
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s from the test double</Message></Error>", code, code)
}

func (f *fakeS3) servePut(w http.ResponseWriter, r *http.Request, key string) {
	body, err := io.ReadAll(r.Body)
	switch _, exists := f.objects[key]; {
	case err != nil || f.failPut:
		s3Error(w, http.StatusInternalServerError, "InternalError")
	case exists && r.Header.Get("If-None-Match") == "*":
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
	default:
		w.Header().Set("ETag", f.putLocked(key, body))
	}
}

func (f *fakeS3) serveHead(w http.ResponseWriter, key string) {
	o, ok := f.objects[key]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("ETag", o.etag)
	w.Header().Set("Content-Length", strconv.Itoa(len(o.body)))
	w.Header().Set("Last-Modified", o.mtime.UTC().Format(http.TimeFormat))
}

// check applies a conditional delete's ETag to key: "" when the delete
// may go ahead, else the error code.
func (f *fakeS3) check(key, etag string) string {
	o, ok := f.objects[key]
	switch {
	case etag == "":
		return ""
	case !ok:
		return "NoSuchKey"
	case f.conflict[key]:
		return "ConditionalRequestConflict"
	case strings.Trim(etag, `"`) != strings.Trim(o.etag, `"`):
		return "PreconditionFailed"
	}
	return ""
}

var codeStatus = map[string]int{"NoSuchKey": 404, "ConditionalRequestConflict": 409, "PreconditionFailed": 412}

func (f *fakeS3) serveDelete(w http.ResponseWriter, r *http.Request, key string) {
	if f.ifMatch {
		if code := f.check(key, r.Header.Get("If-Match")); code != "" {
			s3Error(w, codeStatus[code], code)
			return
		}
	}
	delete(f.objects, key)
	w.WriteHeader(http.StatusNoContent)
}

type deleteRequest struct {
	Objects []struct {
		Key  string
		ETag string
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name `xml:"DeleteResult"`
	Errors  []struct {
		Key, Code, Message string
	} `xml:"Error"`
}

func (f *fakeS3) serveBatch(w http.ResponseWriter, r *http.Request) {
	var req deleteRequest
	if err := xml.NewDecoder(r.Body).Decode(&req); err != nil {
		s3Error(w, http.StatusBadRequest, "MalformedXML")
		return
	}
	var res deleteResult
	for _, o := range req.Objects {
		f.batchTag = append(f.batchTag, o.ETag)
		if f.batchETags {
			if code := f.check(o.Key, o.ETag); code != "" {
				res.Errors = append(res.Errors, struct{ Key, Code, Message string }{o.Key, code, "from the test double"})
				continue
			}
		}
		delete(f.objects, o.Key)
	}
	w.Header().Set("Content-Type", "application/xml")
	_ = xml.NewEncoder(w).Encode(res)
}

type listResult struct {
	XMLName     xml.Name `xml:"ListBucketResult"`
	Name        string
	KeyCount    int
	IsTruncated bool
	Contents    []listed
}

type listed struct {
	Key          string
	Size         int
	ETag         string
	LastModified string
}

// serveList lists every key after start-after under prefix, in one page.
func (f *fakeS3) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, q.Get("prefix")) && k > q.Get("start-after") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	res := listResult{Name: fakeBucket, KeyCount: len(keys)}
	for _, k := range keys {
		o := f.objects[k]
		res.Contents = append(res.Contents, listed{Key: k, Size: len(o.body), ETag: o.etag, LastModified: o.mtime.UTC().Format(time.RFC3339)})
	}
	w.Header().Set("Content-Type", "application/xml")
	_ = xml.NewEncoder(w).Encode(res)
}

// On a double of each kind of server, the probe picks the way the server
// honours, and the outcomes of a re-checked plan follow from it: an
// object rewritten after the re-check is kept as changed (412, or a
// per-key PreconditionFailed), one deleted meanwhile is already gone (404
// NoSuchKey), and one with a conditional request in flight (409
// ConditionalRequestConflict) is kept and fails, to be tried again. On a
// server without conditional deletes (MinIO) all four are deleted or
// reported deleted, as before.
func TestConditionalDeletesOnDoubles(t *testing.T) {
	for _, tc := range []struct {
		name                string
		server              *fakeS3
		mode                string
		changed, gone, busy storage.Outcome
	}{
		{"aws", &fakeS3{ifMatch: true, batchETags: true}, "batch",
			storage.Outcome{Action: storage.ActionKeep, Reason: storage.KeptChanged},
			storage.Outcome{Action: storage.ActionKeep, Reason: storage.KeptGone},
			storage.Outcome{Action: storage.ActionFail}},
		{"versitygw", &fakeS3{ifMatch: true}, "single",
			storage.Outcome{Action: storage.ActionKeep, Reason: storage.KeptChanged},
			storage.Outcome{Action: storage.ActionKeep, Reason: storage.KeptGone},
			storage.Outcome{Action: storage.ActionFail}},
		{"minio", &fakeS3{}, "none",
			storage.Outcome{Action: storage.ActionDelete},
			storage.Outcome{Action: storage.ActionDelete},
			storage.Outcome{Action: storage.ActionDelete}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, client := newFake(t, tc.server)
			for _, k := range []string{"a/same.png", "a/changed.png", "a/gone.png", "a/busy.png"} {
				f.put(k, "v1")
			}
			f.conflict["a/busy.png"] = true
			fsys := s3fs.New(client, fakeBucket, s3fs.Options{})
			targets := planOf(t, fsys, true)
			s3fs.SetBeforeDelete(fsys, func([]storage.Target) {
				f.put("a/changed.png", "v2")
				f.mu.Lock()
				delete(f.objects, "a/gone.png")
				f.mu.Unlock()
			})
			out := deleteOutcomes(t, fsys, targets)
			assert.Equal(t, tc.mode, fsys.Features().ConditionalDeletes)
			assert.Equal(t, storage.ActionDelete, out["a/same.png"].Action)
			for p, want := range map[string]storage.Outcome{"a/changed.png": tc.changed, "a/gone.png": tc.gone, "a/busy.png": tc.busy} {
				assert.Equal(t, want.Action, out[p].Action, p)
				assert.Equal(t, want.Reason, out[p].Reason, p)
			}
			assert.Equal(t, tc.mode != "none", f.has("a/changed.png"), "the rewritten object is kept where the server checks")
			assert.Equal(t, tc.mode != "none", f.has("a/busy.png"), "a 409 keeps the object")
			if tc.mode == "batch" {
				assert.Equal(t, targets[0].ETag, f.batchTag[len(f.batchTag)-4], "DeleteObjects carries the plan's ETags")
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for k := range f.objects {
				assert.NotContains(t, k, "probe", "the probe objects are removed")
			}
		})
	}
}

// A probe that fails (here PutObject answers 500) deletes nothing: every
// target with an ETag fails, and the next call probes again.
func TestFailedProbeDeletesNothing(t *testing.T) {
	f, client := newFake(t, &fakeS3{ifMatch: true, batchETags: true, failPut: true})
	etag := f.put("x.png", "v1")
	fsys := s3fs.New(client, fakeBucket, s3fs.Options{})
	errs := fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "x.png", ETag: etag}})
	require.Error(t, errs[0])
	assert.NotErrorIs(t, errs[0], fs.ErrNotExist)
	assert.NotErrorIs(t, errs[0], storage.ErrChanged)
	assert.True(t, f.has("x.png"), "nothing is deleted without knowing the way")
	assert.Empty(t, fsys.Features().ConditionalDeletes, "a failed probe is not remembered")
	assert.Zero(t, f.count("delete-batch"))

	f.mu.Lock()
	f.failPut = false
	f.mu.Unlock()
	errs = fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "x.png", ETag: etag}})
	assert.NoError(t, errs[0])
	assert.False(t, f.has("x.png"))
	assert.Equal(t, "batch", fsys.Features().ConditionalDeletes)
}

// A way forced in Options is used without a probe.
func TestForcedWaySkipsTheProbe(t *testing.T) {
	f, client := newFake(t, &fakeS3{ifMatch: true, batchETags: true})
	etag := f.put("x.png", "v1")
	f.put("y.png", "v1")
	fsys := s3fs.New(client, fakeBucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalSingle})
	assert.Equal(t, "single", fsys.Features().ConditionalDeletes)
	errs := fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "x.png", ETag: etag}, {Path: "y.png", ETag: `"0123"`}})
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], storage.ErrChanged)
	assert.Zero(t, f.count("put"), "no probe")
	assert.Equal(t, 2, f.count("delete"), "one DeleteObject each")
	assert.Zero(t, f.count("delete-batch"))
	assert.Panics(t, func() { s3fs.New(client, fakeBucket, s3fs.Options{ConditionalDeletes: "sometimes"}) })
}
