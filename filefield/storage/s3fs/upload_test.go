package s3fs_test

import (
	"context"
	"crypto/sha256"
	"io"
	"io/fs"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

const part = s3fs.MinPartSize

// writeN writes n pseudo-random bytes (the same for the same n) to w in
// 64 KiB chunks, calling each after every MiB, and returns their SHA-256.
func writeN(t *testing.T, w io.Writer, n int, each func()) [32]byte {
	t.Helper()
	h := sha256.New()
	chunk := make([]byte, 64<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for written := 0; written < n; written += len(chunk) {
		for i := range chunk {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			chunk[i] = byte(x)
		}
		c := chunk[:min(len(chunk), n-written)]
		h.Write(c)
		_, err := w.Write(c)
		require.NoError(t, err)
		if each != nil && (written+len(c))%(1<<20) == 0 {
			each()
		}
	}
	return [32]byte(h.Sum(nil))
}

// sumOf returns the SHA-256 and size of the object at name.
func sumOf(t *testing.T, fsys afero.Fs, name string) ([32]byte, int64) {
	t.Helper()
	f, err := fsys.Open(name)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	require.NoError(t, err)
	return [32]byte(h.Sum(nil)), n
}

// pending returns the bucket's multipart uploads not completed or aborted.
func pending(t *testing.T, client *s3.Client, bucket string) int {
	t.Helper()
	out, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	require.NoError(t, err)
	return len(out.Uploads)
}

func heapAlloc() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A 20 MiB file written with a 5 MiB PartSize goes up in four parts while
// the heap holds about one: it never grows by three parts. The object
// round-trips. A second create-only writer of the same key, opened before
// the first closed, fails at Close with fs.ErrExist (versitygw honours
// If-None-Match on CompleteMultipartUpload), deletes nothing, leaves the
// first object intact and no multipart upload pending.
func TestStreamingUpload(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	var count s3test.Counter
	fsys := s3fs.New(srv.Client(&count), bucket, s3fs.Options{PartSize: part})
	const size = 20 << 20

	a, err := fsys.OpenFile("big.bin", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err)
	b, err := fsys.OpenFile("big.bin", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	require.NoError(t, err, "both opened before either closed")

	base := heapAlloc()
	var peak int64
	sum := writeN(t, a, size, func() { peak = max(peak, heapAlloc()-base) })
	t.Logf("heap growth while writing %d MiB: at most %.1f MiB", size>>20, float64(peak)/(1<<20))
	assert.Less(t, peak, int64(3*part), "the heap grew by three parts or more")
	fi, err := a.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(size), fi.Size())
	assert.Equal(t, 1, pending(t, srv.Client(nil), bucket), "the parts so far are a pending upload")
	require.NoError(t, a.Close())
	assert.Zero(t, pending(t, srv.Client(nil), bucket))
	assert.Equal(t, 4, count.Get("upload-part"))
	assert.Equal(t, 1, count.Get("create-multipart"))
	assert.Equal(t, 1, count.Get("complete-multipart"))
	assert.Zero(t, count.Get("put"), "no single-request upload")

	got, n := sumOf(t, fsys, "big.bin")
	assert.Equal(t, int64(size), n)
	assert.Equal(t, sum, got, "the object round-trips")

	count.Reset()
	writeN(t, b, part+1, nil)
	assert.ErrorIs(t, b.Close(), fs.ErrExist)
	assert.Equal(t, 1, count.Get("complete-multipart"), "refused at Complete, not before")
	assert.Equal(t, 1, count.Get("abort-multipart"))
	assert.Zero(t, count.Get("delete")+count.Get("delete-batch"), "nothing deleted")
	assert.Zero(t, pending(t, srv.Client(nil), bucket), "no multipart upload pending")
	got, n = sumOf(t, fsys, "big.bin")
	assert.Equal(t, int64(size), n)
	assert.Equal(t, sum, got, "the first object is intact")
}

// Up to one part, a file goes up in one PutObject, as before streaming.
func TestSmallUploadIsOnePut(t *testing.T) {
	srv := s3test.Shared(t)
	var count s3test.Counter
	fsys := s3fs.New(srv.Client(&count), srv.NewBucket(t), s3fs.Options{PartSize: part})
	for _, n := range []int{0, 1, part} {
		count.Reset()
		f, err := fsys.Create("f.bin")
		require.NoError(t, err)
		sum := writeN(t, f, n, nil)
		require.NoError(t, f.Close())
		assert.Equal(t, 1, count.Get("put"), "size %d", n)
		assert.Zero(t, count.Get("create-multipart"), "size %d", n)
		got, size := sumOf(t, fsys, "f.bin")
		assert.Equal(t, int64(n), size)
		assert.Equal(t, sum, got)
	}
}

// Every way a multipart upload can fail ends with no object and no
// multipart upload pending, and an error that is not fs.ErrExist: a part
// refused while writing (Write fails, and so does Close), a part or the
// Complete refused at Close, a Complete stalled past the deadline (Close
// returns the context's error within a second, the abort still goes
// through), and Abort.
func TestFailedMultipartLeavesNothing(t *testing.T) {
	srv := s3test.Shared(t)
	refuse := func(kind string) func(*s3test.Proxy) {
		return func(p *s3test.Proxy) { p.Fail(s3test.Is(kind), http.StatusForbidden, "AccessDenied") }
	}
	cases := []struct {
		name    string
		written int // before the fault
		more    int // after it
		fault   func(*s3test.Proxy)
		end     func(afero.File) error
		want    error
	}{
		{"PartRefusedInWrite", part + 1, part, refuse("upload-part"), afero.File.Close, nil},
		{"LastPartRefused", part + 1, 0, refuse("upload-part"), afero.File.Close, nil},
		{"CompleteRefused", part + 1, 0, refuse("complete-multipart"), afero.File.Close, nil},
		{"CompleteInvalidPart", part + 1, 0, func(p *s3test.Proxy) {
			p.Fail(s3test.Is("complete-multipart"), http.StatusBadRequest, "InvalidPart")
		}, afero.File.Close, nil},
		{"CompleteStalled", part + 1, 0, func(p *s3test.Proxy) { p.Stall(s3test.Is("complete-multipart")) }, afero.File.Close, context.DeadlineExceeded},
		{"Abort", part + 1, 0, func(*s3test.Proxy) {}, func(f afero.File) error { return f.(interface{ Abort() error }).Abort() }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := srv.Proxy(t)
			bucket := srv.NewBucket(t)
			base := s3fs.New(p.Client(nil), bucket, s3fs.Options{PartSize: part})
			// The stalled Complete is given a deadline long enough for
			// the first part to go up before it.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			deadline, _ := ctx.Deadline()
			f, err := base.WithContext(ctx).OpenFile("x.bin", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			require.NoError(t, err)
			writeN(t, f, c.written, nil)
			c.fault(p)
			if c.more > 0 {
				_, err := f.Write(make([]byte, c.more))
				require.Error(t, err, "the part was refused")
				assert.NotErrorIs(t, err, fs.ErrExist)
				assert.Zero(t, pending(t, srv.Client(nil), bucket), "the upload was aborted at once")
			}
			_, err = within(t, func() error { return c.end(f) })
			switch {
			case c.name == "Abort":
				assert.NoError(t, err)
			case c.want != nil:
				assert.ErrorIs(t, err, c.want)
				assert.WithinDuration(t, deadline, time.Now(), time.Second, "Close returned soon after the deadline")
			default:
				assert.Error(t, err)
			}
			assert.NotErrorIs(t, err, fs.ErrExist)
			p.Reset()
			assert.Zero(t, pending(t, srv.Client(nil), bucket), "no multipart upload pending")
			_, err = base.Stat("x.bin")
			assert.ErrorIs(t, err, fs.ErrNotExist, "no object")
		})
	}
}
