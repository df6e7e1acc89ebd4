package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mib = 1 << 20

// endless is a reader of n bytes of a PNG signature and padding, made as
// it is read: a large upload that is never in memory.
type endless struct{ n, off int64 }

func (r *endless) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	sig := png("big")
	for i := range p {
		if o := r.off + int64(i); o < int64(len(sig)) {
			p[i] = sig[o]
		} else {
			p[i] = 'x'
		}
	}
	r.off += int64(len(p))
	return len(p), nil
}

const boundary = "mediaclean-test-boundary"

// multipartStream returns a multipart body with the text fields, then a
// file part of size bytes made lazily, and its length.
func multipartStream(fields [][2]string, size int64) (io.Reader, int64) {
	var head strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&head, "--%s\r\nContent-Disposition: form-data; name=%q\r\n\r\n%s\r\n", boundary, f[0], f[1])
	}
	fmt.Fprintf(&head, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n", boundary)
	tail := "\r\n--" + boundary + "--\r\n"
	n := int64(head.Len()) + size + int64(len(tail))
	return io.MultiReader(strings.NewReader(head.String()), &endless{n: size}, strings.NewReader(tail)), n
}

// dirBytes sums the sizes of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// peak samples f every millisecond until stop is called, and returns the
// largest value seen.
func peak(f func() int64) (stop func() int64) {
	var max atomic.Int64
	max.Store(f())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if v := f(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	return func() int64 { close(done); wg.Wait(); return max.Load() }
}

// A 300 MiB upload to any form with a file is refused with 413 after the
// server read at most the form's limit (the field's 10 MiB and a small
// allowance) and a little buffering, whether the client declares its
// length or streams it chunked; the temp folder stays empty and the
// media folder holds at most one limit's worth, for the moment of the
// upload. Not parallel: it sets TMPDIR.
func TestOversizedUploadReadsAtMostTheLimit(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": "1", "amount": "5"}, pdf, "r.pdf"))
	before := e.inSync("setup")
	const size = 300 * mib
	limit := int64(maxUpload + formAllowance)
	for _, c := range []struct {
		path   string
		fields [][2]string
	}{
		{"/users", [][2]string{{"name", "bob"}}},
		{"/forum", [][2]string{{"user_id", "1"}, {"body", "hi"}}},
		{"/donations", [][2]string{{"user_id", "1"}, {"amount", "5"}}},
		{"/files/picture/1", nil},
		{"/files/receipt/1", nil},
	} {
		for _, chunked := range []bool{false, true} {
			body, n := multipartStream(c.fields, size)
			req, err := http.NewRequest("POST", e.url+c.path, body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
			if chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(body) // hides the length
			} else {
				req.ContentLength = n
			}
			read0 := e.ln.read.Load()
			media0 := dirBytes(e.media)
			stopTmp, stopMedia := peak(func() int64 { return dirBytes(tmp) }), peak(func() int64 { return dirBytes(e.media) - media0 })
			start := time.Now()
			resp, err := client.Do(req)
			require.NoError(t, err, "%s: the client gets the 413, not a reset", c.path)
			resp.Body.Close()
			tmpPeak, mediaPeak := stopTmp(), stopMedia()
			read := e.ln.read.Load() - read0
			t.Logf("%s chunked=%v: %d after %v; server read %.2f MiB of %d MiB (limit %.2f MiB); temp peak %d B, media peak %.2f MiB",
				c.path, chunked, resp.StatusCode, time.Since(start).Round(time.Millisecond), float64(read)/mib, size/mib, float64(limit)/mib, tmpPeak, float64(mediaPeak)/mib)
			assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, c.path)
			assert.LessOrEqual(t, read, limit+2*mib, "%s: bytes the server read", c.path)
			assert.LessOrEqual(t, tmpPeak, int64(64<<10), "%s: temp folder peak", c.path)
			assert.LessOrEqual(t, mediaPeak, limit, "%s: media folder peak", c.path)
		}
	}
	assert.Equal(t, before, e.inSync("oversized uploads"), "and nothing was left")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// Twenty rejected 30 MiB uploads at once (which took the process to 1 GiB
// when forms were parsed whole, in memory) keep the heap within a few MiB
// each. Not parallel: it measures the process's heap.
func TestParallelOversizedUploadsKeepMemoryBounded(t *testing.T) {
	const reset = -1 // the connection reset before the answer was read
	t.Setenv("TMPDIR", t.TempDir())
	e := newEnv(t)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapInuse)
	stop := peak(func() int64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse) - base
	})
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Go(func() {
			body, n := multipartStream([][2]string{{"name", "x"}}, 30*mib)
			req, err := http.NewRequest("POST", e.url+"/users", body)
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
			req.ContentLength = -1
			_ = n
			resp, err := client.Do(req)
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
				// The server answered 413 and closed the connection
				// while the client was still sending: refused too.
				codes[i] = reset
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	growth := stop()
	t.Logf("20 parallel 30 MiB uploads: peak heap growth %.1f MiB", float64(growth)/mib)
	for _, c := range codes {
		assert.Contains(t, []int{http.StatusRequestEntityTooLarge, reset}, c)
	}
	assert.Less(t, growth, int64(64*mib))
}

// A file of exactly the field's limit still fits, with its form fields.
func TestUploadAtTheLimitIsAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		path   string
		fields [][2]string
	}{
		{"/users", [][2]string{{"name", "ann"}}},
		{"/files/picture/1", nil},
		{"/forum", [][2]string{{"user_id", "1"}, {"body", strings.Repeat("b", 2000)}}},
	} {
		body, n := multipartStream(c.fields, maxUpload)
		req, err := http.NewRequest("POST", e.url+c.path, body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		req.ContentLength = n
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, c.path)
	}
	e.inSync("uploads at the limit")
}
