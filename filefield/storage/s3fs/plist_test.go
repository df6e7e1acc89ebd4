package s3fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// awkward are name pieces that sort next to each other in awkward ways:
// "a" before "a b", "a+b", "a-b", "a.b" and "a/..." ('/' is 0x2f, after
// ' ', '+', '-' and '.'), multi-byte UTF-8, and what URL encoding
// changes ("+", " ", "%2B").
var awkward = []string{"a", "a b", "a+b", "a-b", "a.b", "a0", "ab", "A", "0", "~", "x%2By", "é", "e\u0301", "中文", "😀", "z", "a_b", "a=b&c"}

// put stores a one-byte object under each key, returning those the
// server took (posix storage refuses a key that is also a "directory").
func put(t *testing.T, client *s3.Client, bucket string, keys []string) []string {
	t.Helper()
	var mu sync.Mutex
	var ok []string
	var g errgroup.Group
	g.SetLimit(16)
	for _, k := range keys {
		g.Go(func() error {
			_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: bytes.NewReader([]byte{1})})
			if err == nil {
				mu.Lock()
				ok = append(ok, k)
				mu.Unlock()
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	slices.Sort(ok)
	return ok
}

// randomTree returns n distinct keys below prefix, 1 to 4 segments deep,
// made of awkward pieces, with some big directories (over a page) and
// many small ones.
func randomTree(r *rand.Rand, prefix string, n int) []string {
	seen := map[string]bool{}
	var keys []string
	piece := func() string {
		s := awkward[r.IntN(len(awkward))]
		if r.IntN(3) == 0 {
			s += awkward[r.IntN(len(awkward))]
		}
		return s
	}
	for len(keys) < n {
		var segs []string
		switch r.IntN(4) {
		case 0: // one big directory
			segs = []string{"big", fmt.Sprintf("%s%05d", piece(), r.IntN(100000))}
		case 1: // a flat run at the top
			segs = []string{fmt.Sprintf("%s%04d.png", piece(), r.IntN(10000))}
		default:
			for range 1 + r.IntN(3) {
				segs = append(segs, piece())
			}
			segs = append(segs, fmt.Sprintf("f%s%d.jpg", piece(), r.IntN(50)))
		}
		k := prefix + strings.Join(segs, "/")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// paths lists fsys with opts, returning the paths in the order given.
func paths(t *testing.T, fsys *s3fs.Fs, opts storage.ListOptions) []string {
	t.Helper()
	got := []string{}
	require.NoError(t, fsys.ListFiles(t.Context(), opts, func(e storage.Entry) error {
		got = append(got, e.Path)
		return nil
	}))
	return got
}

// want is what a listing of keys (stored below prefix) with opts must
// give: the paths below opts.Dir, within [From, To] when To is set, in
// byte order.
func want(keys []string, prefix string, opts storage.ListOptions) []string {
	out := []string{}
	dir := strings.Trim(opts.Dir, "/")
	for _, k := range keys {
		p, ok := strings.CutPrefix(k, prefix)
		if !ok || (dir != "" && !strings.HasPrefix(p, dir+"/")) {
			continue
		}
		if opts.To != "" && (p < opts.From || p > opts.To) {
			continue
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// TestParallelListingEqualsSequential: on random trees of awkward names,
// with and without an Fs prefix (and keys just outside it), for whole
// listings, directories and key ranges (including bounds that cut a UTF-8
// character, bounds that are no key, empty and reversed ranges), every
// ListWorkers from 1 to 8 lists exactly the keys there are, in byte
// order, each once: what ListWorkers 1 lists.
func TestParallelListingEqualsSequential(t *testing.T) {
	srv := s3test.Shared(t)
	client := srv.Client(nil)
	bucket := srv.NewBucket(t)
	r := rand.New(rand.NewPCG(1, 2))
	keys := randomTree(r, "media/", 3000)
	// Outside the prefix, just before and after it.
	keys = append(keys, "medi", "media", "media-x/a", "media.b", "media0/a", "mediaz")
	// A layered tree: uploads/<model>/<id>/<name>, small leaves.
	for i := range 1200 {
		keys = append(keys, fmt.Sprintf("media/uploads/m%d/%04d/%s.png", i%3, i/3, awkward[i%len(awkward)]))
	}
	// Most are written as files into the server's folder (which versitygw
	// lists as objects), some stored with PUT.
	stored := append(write(t, srv, bucket, keys[300:]), put(t, client, bucket, keys[:300])...)
	slices.Sort(stored)
	require.Greater(t, len(stored), 3500)

	// The tree splits: small parts take more requests than its pages.
	var count s3test.Counter
	fsys := s3fs.New(srv.Client(&count), bucket, s3fs.Options{ListWorkers: 8})
	s3fs.SetPartKeys(fsys, 200)
	require.Equal(t, stored, paths(t, fsys, storage.ListOptions{}))
	assert.Greater(t, count.Get("list"), 2*((len(stored)+999)/1000), "listings")

	for _, prefix := range []string{"", "media/"} {
		var rel []string
		for _, k := range stored {
			if p, ok := strings.CutPrefix(k, prefix); ok {
				rel = append(rel, p)
			}
		}
		pick := func() string { return rel[r.IntN(len(rel))] }
		cut := func(s string) string { // a bound that cuts a character
			for i := 1; i < len(s); i++ {
				if s[i]&0xc0 == 0x80 {
					return s[:i]
				}
			}
			return s + "\xe4\xb8"
		}
		ranges := []storage.ListOptions{
			{},
			{Dir: "big"},
			{Dir: "uploads"},
			{Dir: "media/uploads/m1"},
			{Dir: "a"},
			{From: "", To: "\U0010FFFF"},
			{From: "a", To: "b"},
			{From: "a-b", To: "a/"},
			{From: "é", To: "😀"},
			{From: cut("é"), To: cut("中文")},
			{From: cut(pick()), To: "\xff"},
			{From: "z", To: "a"},
		}
		for range 3 {
			a, b := pick(), pick()
			if b < a {
				a, b = b, a
			}
			ranges = append(ranges, storage.ListOptions{From: a, To: b}, storage.ListOptions{From: a, To: a})
		}
		for _, opts := range ranges {
			exp := want(stored, prefix, opts)
			for w := 1; w <= 8; w++ {
				// Parts of the default size, and (with 3 and 8
				// workers, on whole listings and wide ranges) many
				// small ones.
				sizes := []int{0}
				if (w == 3 || w == 8) && len(exp) > 1000 {
					sizes = append(sizes, 100+r.IntN(400))
				}
				for _, partKeys := range sizes {
					fsys := s3fs.New(client, bucket, s3fs.Options{Prefix: prefix, ListWorkers: w})
					if partKeys > 0 {
						s3fs.SetPartKeys(fsys, partKeys)
					}
					got := paths(t, fsys, opts)
					if !assert.Equal(t, exp, got, "prefix %q, %+v, ListWorkers %d, part keys %d", prefix, opts, w, partKeys) {
						return
					}
				}
			}
		}
	}
}

// inFlight is an s3.HTTPClient that delays every listing by delay and
// records the most listings it had in flight at once.
type inFlight struct {
	delay     time.Duration
	now, most atomic.Int64
	fail      int64 // fails the fail-th listing and its retries, when set
	lists     atomic.Int64
	mu        sync.Mutex
	failing   string // the query of the failing listing
}

func (c *inFlight) Do(r *http.Request) (*http.Response, error) {
	if s3test.Kind(r) != "list" {
		return http.DefaultClient.Do(r)
	}
	n := c.lists.Add(1)
	cur := c.now.Add(1)
	defer c.now.Add(-1)
	for {
		m := c.most.Load()
		if cur <= m || c.most.CompareAndSwap(m, cur) {
			break
		}
	}
	select {
	case <-time.After(c.delay):
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	c.mu.Lock()
	if n == c.fail {
		c.failing = r.URL.RawQuery
	}
	fail := c.failing != "" && c.failing == r.URL.RawQuery
	c.mu.Unlock()
	if fail {
		return nil, errors.New("injected: connection reset")
	}
	return http.DefaultClient.Do(r)
}

// write stores each of keys as a one-byte file in the server's folder,
// which versitygw lists as an object, returning those written: not a
// key that is also a "directory" of another, as with PUT.
func write(t *testing.T, srv *s3test.Server, bucket string, keys []string) []string {
	t.Helper()
	var ok []string
	for _, k := range keys {
		p := filepath.Join(srv.Dir, bucket, filepath.FromSlash(k))
		if os.MkdirAll(filepath.Dir(p), 0o755) != nil || os.WriteFile(p, []byte{1}, 0o644) != nil {
			continue
		}
		ok = append(ok, k)
	}
	return ok
}

// fillDirs stores dirs directories of per one-byte objects, written as
// files into the server's folder (versitygw's posix backend lists a file
// as an object; a PUT each would take seconds), and returns their keys
// in order.
func fillDirs(t *testing.T, srv *s3test.Server, bucket string, dirs, per int) []string {
	t.Helper()
	var keys []string
	for d := range dirs {
		dir := filepath.Join(srv.Dir, bucket, fmt.Sprintf("d%03d", d))
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for i := range per {
			name := fmt.Sprintf("f%06d.png", d*per+i)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte{1}, 0o644))
			keys = append(keys, fmt.Sprintf("d%03d/%s", d, name))
		}
	}
	return keys
}

// TestParallelListingRunsConcurrently: with 20 ms added to each listing
// request, ListWorkers 8 has several requests in flight at once (1 has
// one, one request a page), and lists the same keys in the same order.
func TestParallelListingRunsConcurrently(t *testing.T) {
	noLeaks(t)
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	keys := fillDirs(t, srv, bucket, 40, 500)

	var seq []string
	var seqTook time.Duration
	for _, w := range []int{1, 8} {
		hc := &inFlight{delay: 20 * time.Millisecond}
		fsys := s3fs.New(srv.ClientVia(hc), bucket, s3fs.Options{ListWorkers: w})
		s3fs.SetPartKeys(fsys, 4000) // parts of 4 pages: 20 pages make 5
		start := time.Now()
		got := paths(t, fsys, storage.ListOptions{})
		took := time.Since(start)
		require.Equal(t, keys, got, "ListWorkers %d", w)
		t.Logf("ListWorkers %d: %d listings, at most %d in flight, %v", w, hc.lists.Load(), hc.most.Load(), took)
		if w == 1 {
			seq, seqTook = got, took
			assert.EqualValues(t, 1, hc.most.Load())
			assert.EqualValues(t, len(keys)/1000, hc.lists.Load(), "one request a page")
			continue
		}
		assert.Equal(t, seq, got)
		assert.Greater(t, hc.most.Load(), int64(2), "listings overlap")
		// Not asserted, on a shared machine where versitygw is short of
		// CPU: examples/bench's T8 measures the speedup.
		t.Logf("ListWorkers 1 took %v, 8 took %v", seqTook, took)
	}
}

// TestParallelListingFailures: a listing request that fails mid-listing
// (whichever part it belongs to) fails ListFiles with that error, after
// entries in order with no gap, and none after an error was seen; fn's
// error and a cancelled context end it too; no goroutine is left.
func TestParallelListingFailures(t *testing.T) {
	noLeaks(t)
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	keys := fillDirs(t, srv, bucket, 10, 400)

	for _, nth := range []int64{2, 3, 5, 8} {
		hc := &inFlight{delay: time.Millisecond, fail: nth}
		fsys := s3fs.New(srv.ClientVia(hc), bucket, s3fs.Options{ListWorkers: 4})
		s3fs.SetPartKeys(fsys, 300) // a part a directory: about 10 requests
		var got []string
		err := fsys.ListFiles(t.Context(), storage.ListOptions{}, func(e storage.Entry) error {
			got = append(got, e.Path)
			return nil
		})
		require.Error(t, err, "listing %d failed", nth)
		assert.ErrorContains(t, err, "injected: connection reset")
		assert.NotErrorIs(t, err, context.Canceled)
		assert.Equal(t, keys[:len(got)], got, "a prefix of the listing, in order")
		assert.Less(t, len(got), len(keys))
	}

	// A server error through the fault proxy, on every listing after the
	// first page.
	p := srv.Proxy(t)
	var calls atomic.Int64
	p.Fail(func(r *http.Request) bool { return s3test.Kind(r) == "list" && calls.Add(1) > 1 }, http.StatusInternalServerError, "InternalError")
	fsys := s3fs.New(p.Client(nil), bucket, s3fs.Options{ListWorkers: 4})
	var got []string
	err := fsys.ListFiles(t.Context(), storage.ListOptions{}, func(e storage.Entry) error {
		got = append(got, e.Path)
		return nil
	})
	assert.ErrorContains(t, err, "InternalError")
	assert.Equal(t, keys[:1000], got, "the first page only")

	// fn's error ends the listing: returned as it is, nothing after.
	fsys = s3fs.New(srv.Client(nil), bucket, s3fs.Options{ListWorkers: 4})
	stop := errors.New("stop")
	for _, at := range []int{10, 1500, 3999} {
		n := 0
		err = fsys.ListFiles(t.Context(), storage.ListOptions{}, func(e storage.Entry) error {
			if n++; n == at {
				return stop
			}
			return nil
		})
		assert.Same(t, stop, err)
		assert.Equal(t, at, n, "no call after fn's error")
	}

	// The caller's context: cancelled mid-listing, ctx.Err() unwrapped.
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err = fsys.ListFiles(ctx, storage.ListOptions{}, func(e storage.Entry) error {
		if n++; n == 1200 {
			cancel()
		}
		return nil
	})
	assert.Equal(t, context.Canceled, err)
	assert.Less(t, n, len(keys))
	ctx, cancel = context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	hc := &inFlight{delay: 50 * time.Millisecond}
	err = s3fs.New(srv.ClientVia(hc), bucket, s3fs.Options{ListWorkers: 4}).ListFiles(ctx, storage.ListOptions{}, func(storage.Entry) error { return nil })
	assert.Equal(t, context.DeadlineExceeded, err)
}

// noLeaks fails t if goroutines started during it are left when it ends
// (after its cleanups, such as a Proxy's), idle connections closed.
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
}
