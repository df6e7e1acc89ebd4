package s3fs_test

// Review of a6f10ab: a restore (a move out of a quarantine area) writes
// the bytes through the client (GetObject + create-only PutObject or
// multipart upload).

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"
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

const r2Src = ".mediaclean-quarantine/run1/pics/a.jpg"

type r2Hook struct {
	next   *http.Client
	before func(*http.Request) *http.Response
	after  func(*http.Request, *http.Response)
}

func (h r2Hook) Do(r *http.Request) (*http.Response, error) {
	if h.before != nil {
		if resp := h.before(r); resp != nil {
			return resp, nil
		}
	}
	resp, err := h.next.Do(r)
	if err == nil && h.after != nil {
		h.after(r, resp)
	}
	return resp, err
}

// failingBody gives n bytes of body, then fails (or ends cleanly, when
// clean), as a connection the server closed midway does.
type failingBody struct {
	body  io.ReadCloser
	left  int
	clean bool
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		if b.clean {
			return 0, io.EOF
		}
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > b.left {
		p = p[:b.left]
	}
	n, err := b.body.Read(p)
	b.left -= n
	return n, err
}

func (b *failingBody) Close() error { return b.body.Close() }

func isSourceGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/.mediaclean-quarantine/") && r.URL.Query().Get("list-type") == ""
}

type r2Env struct {
	bucket string
	plain  *s3.Client
	fsys   *s3fs.Fs
}

func r2Setup(t *testing.T, body []byte, meta bool, before func(*http.Request) *http.Response, after func(*http.Request, *http.Response)) r2Env {
	t.Helper()
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	plain := srv.Client(nil)
	in := &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("media/" + r2Src), Body: bytes.NewReader(body)}
	if meta {
		in.ContentType = aws.String("image/jpeg")
		in.CacheControl = aws.String("max-age=60")
		in.ContentDisposition = aws.String("inline")
		in.Metadata = map[string]string{"owner": "42", "note": "kept"}
	}
	_, err := plain.PutObject(t.Context(), in)
	require.NoError(t, err)
	fsys := s3fs.New(srv.ClientVia(r2Hook{next: http.DefaultClient, before: before, after: after}), bucket, s3fs.Options{Prefix: "media", PartSize: s3fs.MinPartSize})
	return r2Env{bucket: bucket, plain: plain, fsys: fsys}
}

func (e r2Env) get(t *testing.T, key string) (*s3.GetObjectOutput, []byte, bool) {
	t.Helper()
	out, err := e.plain.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &e.bucket, Key: aws.String(key)})
	if err != nil {
		return nil, nil, false
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return out, b, true
}

func (e r2Env) uploads(t *testing.T) int {
	t.Helper()
	out, err := e.plain.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &e.bucket})
	require.NoError(t, err)
	return len(out.Uploads)
}

func r2Bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// A GET of the source that fails midway stores nothing: no object at the
// live path, no multipart upload left, the source stays.
func TestRestoreWhoseReadFailsStoresNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		size int
		cut  int
	}{
		{"small", 1000, 500},
		{"large-after-first-part", s3fs.MinPartSize + 300_000, s3fs.MinPartSize + 100_000},
		{"large-two-parts-in", 2*s3fs.MinPartSize + 300_000, 2*s3fs.MinPartSize + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := r2Bytes(tc.size)
			e := r2Setup(t, body, false, nil, func(r *http.Request, resp *http.Response) {
				if isSourceGet(r) && resp.StatusCode == http.StatusOK {
					resp.Body = &failingBody{body: resp.Body, left: tc.cut}
				}
			})
			err := e.fsys.MoveFile(r2Src, "pics/a.jpg")
			require.Error(t, err)
			_, _, ok := e.get(t, "media/pics/a.jpg")
			assert.False(t, ok, "a partial object was stored at the live path")
			_, src, ok := e.get(t, "media/"+r2Src)
			assert.True(t, ok && bytes.Equal(src, body), "the quarantined source was lost")
			assert.Equal(t, 0, e.uploads(t), "a multipart upload was left")
		})
	}
}

// A body cut short that ends cleanly (a close-delimited answer, or a proxy
// that drops the length) must not be stored as the file either: the GET
// said how long the object is.
func TestRestoreOfShortReadIsRefused(t *testing.T) {
	t.Parallel()
	body := r2Bytes(1000)
	e := r2Setup(t, body, false, nil, func(r *http.Request, resp *http.Response) {
		if isSourceGet(r) && resp.StatusCode == http.StatusOK {
			// A close-delimited answer (no Content-Length: a proxy that
			// re-frames it) whose connection closes midway: net/http
			// reads it to a clean io.EOF.
			resp.Header.Del("Content-Length")
			resp.ContentLength = -1
			resp.Body = &failingBody{body: resp.Body, left: 500, clean: true}
		}
	})
	err := e.fsys.MoveFile(r2Src, "pics/a.jpg")
	_, live, liveOK := e.get(t, "media/pics/a.jpg")
	_, src, srcOK := e.get(t, "media/"+r2Src)
	whole := (liveOK && bytes.Equal(live, body)) || (srcOK && bytes.Equal(src, body))
	assert.True(t, whole, "the file's bytes are nowhere whole any more (move err %v; live %d bytes, source there %v)", err, len(live), srcOK)
}

// Content type and user metadata are kept, small and large.
func TestRestoreKeepsHeaders(t *testing.T) {
	t.Parallel()
	for _, size := range []int{100, s3fs.MinPartSize + 1000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			body := r2Bytes(size)
			e := r2Setup(t, body, true, nil, nil)
			require.NoError(t, e.fsys.MoveFile(r2Src, "pics/a.jpg"))
			out, got, ok := e.get(t, "media/pics/a.jpg")
			require.True(t, ok)
			assert.True(t, bytes.Equal(body, got))
			assert.Equal(t, "image/jpeg", aws.ToString(out.ContentType))
			assert.Equal(t, "max-age=60", aws.ToString(out.CacheControl))
			assert.Equal(t, "inline", aws.ToString(out.ContentDisposition))
			assert.Equal(t, map[string]string{"owner": "42", "note": "kept"}, out.Metadata)
			_, _, ok = e.get(t, "media/"+r2Src)
			assert.False(t, ok)
		})
	}
}

// A large restore goes through a multipart upload; an upload of the
// application at the live path made before CompleteMultipartUpload must
// not be replaced (If-None-Match: * on the completion).
func TestLargeRestoreDoesNotReplaceARacingUpload(t *testing.T) {
	t.Parallel()
	var e r2Env
	var fired atomic.Bool
	e = r2Setup(t, r2Bytes(s3fs.MinPartSize+1000), false, func(r *http.Request) *http.Response {
		if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") && fired.CompareAndSwap(false, true) {
			_, err := e.plain.PutObject(r.Context(), &s3.PutObjectInput{Bucket: &e.bucket, Key: aws.String("media/pics/a.jpg"), Body: strings.NewReader("THE APP'S UPLOAD")})
			if err != nil {
				panic(err)
			}
		}
		return nil
	}, nil)
	err := e.fsys.MoveFile(r2Src, "pics/a.jpg")
	require.True(t, fired.Load(), "CompleteMultipartUpload was sent")
	_, got, ok := e.get(t, "media/pics/a.jpg")
	require.True(t, ok)
	assert.Equal(t, "THE APP'S UPLOAD", string(got), "the restore replaced the application's upload (move err %v)", err)
	assert.ErrorIs(t, err, fs.ErrExist)
	_, _, ok = e.get(t, "media/"+r2Src)
	assert.True(t, ok, "the quarantined source is gone")
	assert.Equal(t, 0, e.uploads(t), "a multipart upload was left")
}

// MoveFileIf from a source rewritten since it was listed: ErrChanged,
// nothing written, the source stays.
func TestRestoreOfRewrittenSourceIsChanged(t *testing.T) {
	t.Parallel()
	for _, size := range []int{100, s3fs.MinPartSize + 1000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			e := r2Setup(t, r2Bytes(size), false, nil, nil)
			err := e.fsys.MoveFileIf(r2Src, "pics/a.jpg", `"0123456789abcdef0123456789abcdef"`)
			assert.True(t, errors.Is(err, storage.ErrChanged), "err %v", err)
			_, _, ok := e.get(t, "media/pics/a.jpg")
			assert.False(t, ok, "written despite the changed source")
			_, _, ok = e.get(t, "media/"+r2Src)
			assert.True(t, ok)
			assert.Equal(t, 0, e.uploads(t))
		})
	}
}
