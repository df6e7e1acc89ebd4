package filefield_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// endless yields head, then filler bytes for ever (or up to n, if n > 0).
type endless struct {
	head []byte
	n    int64
	sent int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n > 0 && e.sent >= e.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && (e.n <= 0 || e.sent < e.n) {
		if e.sent < int64(len(e.head)) {
			p[k] = e.head[e.sent]
		} else {
			p[k] = 'x'
		}
		k++
		e.sent++
	}
	return k, nil
}

// streamedForm returns a request whose body is a multipart form written
// as it is read: the fields, then a file part with body's bytes. read
// counts the bytes the handler took from the body.
func streamedForm(t *testing.T, fields map[string]io.Reader, filename string, body io.Reader) (*http.Request, *atomic.Int64) {
	t.Helper()
	pr, pw := io.Pipe()
	w := multipart.NewWriter(pw)
	go func() {
		for k, v := range fields {
			fw, err := w.CreateFormField(k)
			if err == nil {
				_, err = io.Copy(fw, v)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		fw, err := w.CreateFormFile("file", filename)
		if err == nil {
			_, err = io.Copy(fw, body)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() { pr.Close() })
	var read atomic.Int64
	r := httptest.NewRequest(http.MethodPost, "/upload", io.NopCloser(readCounter{pr, &read}))
	r.Header.Set("Content-Type", w.FormDataContentType())
	return r, &read
}

type readCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// FormFile stops at the size limit: a 200 MiB part for a 1 MiB field
// reads about 1 MiB, an endless one returns too, and a part whose type is
// refused is read no further than its sniffed head.
func TestFormFileReadsNoFurtherThanItMust(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", MaxSize: limit})
		ctx := t.Context()

		r, read := streamedForm(t, nil, "big.png", &endless{head: png("big"), n: 200 << 20})
		_, err := f.FormFile(ctx, r, "file", "", "")
		require.ErrorIs(t, err, filefield.ErrTooLarge)
		assert.Less(t, read.Load(), int64(limit+256<<10), "read %d bytes of a 200 MiB part for a 1 MiB limit", read.Load())
		t.Logf("over-size part: read %d bytes for a %d-byte limit", read.Load(), limit)

		r, read = streamedForm(t, nil, "endless.png", &endless{head: png("endless")})
		done := make(chan error, 1)
		go func() { _, err := f.FormFile(ctx, r, "file", "", ""); done <- err }()
		select {
		case err := <-done:
			require.ErrorIs(t, err, filefield.ErrTooLarge)
		case <-time.After(10 * time.Second):
			t.Fatal("an endless part never returned")
		}
		assert.Less(t, read.Load(), int64(limit+256<<10))

		r, read = streamedForm(t, nil, "page.png", &endless{head: []byte("<html><script>"), n: 200 << 20})
		_, err = f.FormFile(ctx, r, "file", "", "")
		require.ErrorIs(t, err, filefield.ErrTypeNotAllowed)
		assert.Less(t, read.Load(), int64(64<<10), "a refused type read %d bytes", read.Load())

		// Fields before the file are skipped, but not without end.
		r, read = streamedForm(t, map[string]io.Reader{"note": &endless{n: 100 << 20}}, "a.png", bytes.NewReader(png("a")))
		_, err = f.FormFile(ctx, r, "file", "", "")
		require.ErrorIs(t, err, filefield.ErrTooLarge)
		assert.Less(t, read.Load(), int64(filefield.MaxFormSkip+256<<10))

		// With no size limit, a cancelled context stops an endless upload.
		unlimited := filefield.New("pics", fsys, filefield.Options{Dir: "pics", MaxSize: -1})
		cctx, cancel := context.WithCancel(ctx)
		r, _ = streamedForm(t, nil, "endless.png", &endless{head: png("forever")})
		go func() { _, err := unlimited.FormFile(cctx, r, "file", "", ""); done <- err }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("a cancelled upload did not stop")
		}
		assert.Empty(t, files(t, fsys), "nothing was stored")
	})
}

// AllowedTypes ["*"] without Extensions accepts any type: known types get
// their extension, others ".bin"; the client's name never decides.
func TestAnyTypeAcceptsEveryUpload(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		f := filefield.New("any", fsys, filefield.Options{Dir: "any", AllowedTypes: []string{"*"}})
		ctx := t.Context()
		for body, ext := range map[string]string{
			string(png("p")):           ".png",
			"%PDF-1.7 receipt":         ".pdf",
			"plain words":              ".txt",
			"\x00\x01\x02binary data":  ".bin",
			"<html><script>x</script>": ".txt",
		} {
			ch, err := f.Save(ctx, filefield.Upload{Body: strings.NewReader(body), Name: "evil.html"})
			require.NoError(t, err, "%q", body)
			if body == "<html><script>x</script>" {
				assert.False(t, strings.HasSuffix(ch.New, ".html"), "the client's extension decided: %s", ch.New)
				continue
			}
			assert.True(t, strings.HasSuffix(ch.New, ext), "%q stored as %s", body, ch.New)
		}
	})
}

// A Save with a deadline against an S3 server that stopped answering
// returns the context's error when the deadline passes, not after the
// SDK's retries.
func TestSaveHonoursTheDeadlineOnS3(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	proxy := srv.Proxy(t)
	fsys := s3fs.New(proxy.Client(nil), srv.NewBucket(t), s3fs.Options{})
	proxy.Stall(s3test.Is("put", "head"))
	for _, hashed := range []bool{false, true} {
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: hashed})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		start := time.Now()
		_, err := f.Save(ctx, upload("stalled"))
		cancel()
		took := time.Since(start)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "hashed=%v", hashed)
		assert.Less(t, took, 3*time.Second, "hashed=%v: gave up after %v", hashed, took)
	}
}
