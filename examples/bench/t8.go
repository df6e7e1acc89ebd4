package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// latency is an s3.HTTPClient that holds every request for delay before
// sending it: a server delay away on the network, on a loopback port.
type latency struct {
	delay    time.Duration
	requests atomic.Int64
	replay   *replay // answers from memory, when set
}

func (l *latency) Do(r *http.Request) (*http.Response, error) {
	l.requests.Add(1)
	select {
	case <-time.After(l.delay):
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	if l.replay != nil {
		return l.replay.do(r)
	}
	return http.DefaultClient.Do(r)
}

// replay answers a request the server answered before, by its URL, from
// memory: the server's CPU then no longer shares this machine's cores
// with the client, as a remote S3 does not. It asks the server, and
// keeps the answer, for a request it has not seen.
type replay struct {
	mu     sync.Mutex
	seen   map[string]recorded
	misses atomic.Int64
}

type recorded struct {
	status int
	header http.Header
	body   []byte
}

func (p *replay) do(r *http.Request) (*http.Response, error) {
	key := r.Method + " " + r.URL.String()
	p.mu.Lock()
	rec, ok := p.seen[key]
	p.mu.Unlock()
	if !ok {
		p.misses.Add(1)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		rec = recorded{status: resp.StatusCode, header: resp.Header.Clone(), body: body}
		p.mu.Lock()
		p.seen[key] = rec
		p.mu.Unlock()
	}
	return &http.Response{
		StatusCode: rec.status, Status: http.StatusText(rec.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header.Clone(), Body: io.NopCloser(bytes.NewReader(rec.body)), ContentLength: int64(len(rec.body)), Request: r,
	}, nil
}

// T8: a whole listing on versitygw, with 20 ms (-t8-latency) added to
// each request by the client before it sends it (the latency a loopback
// proxy would add, without a proxy's CPU on this machine), with
// ListWorkers 8 vs 1 (ours vs peer; speedup is peer/ours), each checked
// to list every key once, in the same order. The objects are written as
// files into the server's posix folder (one folder per bucket, a file
// per key), which versitygw lists as objects: a PUT each would take
// longer than the runs.
func (b *bench) t8ParallelList(objects, perDir int, delay time.Duration) (Result, error) {
	srv, err := s3test.Start()
	if err != nil {
		return Result{}, err
	}
	defer srv.Stop()
	ctx := context.Background()
	const bucket = "t8-list"
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		return Result{}, err
	}
	want := make([]string, 0, objects)
	for i := range objects {
		k := fmt.Sprintf("d%04d/f%07d.png", i/perDir, i)
		p := filepath.Join(srv.Dir, bucket, filepath.FromSlash(k))
		if i%perDir == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return Result{}, err
			}
		}
		if err := os.WriteFile(p, []byte{1}, 0o644); err != nil {
			return Result{}, err
		}
		want = append(want, k)
	}
	list := func(workers int, rp *replay) (time.Duration, int64, error) {
		l := &latency{delay: delay, replay: rp}
		fsys := s3fs.New(srv.ClientVia(l), bucket, s3fs.Options{ListWorkers: workers})
		got := make([]string, 0, objects)
		start := time.Now()
		err := fsys.ListFiles(ctx, storage.ListOptions{}, func(e storage.Entry) error {
			got = append(got, e.Path)
			return nil
		})
		took := time.Since(start)
		if err == nil && !slices.Equal(got, want) {
			err = fmt.Errorf("ListWorkers %d listed %d keys, not the %d there are in order", workers, len(got), len(want))
		}
		return took, l.requests.Load(), err
	}
	var par, seq, rpar, rseq []time.Duration
	var speedups, rspeedups []float64
	var parReq, seqReq int64
	rp := &replay{seen: map[string]recorded{}}
	for _, w := range []int{1, 8} { // record the answers both listings get
		if _, _, err := list(w, rp); err != nil {
			return Result{}, err
		}
	}
	recorded := rp.misses.Load()
	for range b.runs {
		s, n, err := list(1, nil)
		if err != nil {
			return Result{}, err
		}
		seq, seqReq = append(seq, s), n
		p, n, err := list(8, nil)
		if err != nil {
			return Result{}, err
		}
		par, parReq = append(par, p), n
		speedups = append(speedups, s.Seconds()/p.Seconds())
		if s, _, err = list(1, rp); err != nil {
			return Result{}, err
		}
		if p, _, err = list(8, rp); err != nil {
			return Result{}, err
		}
		rseq, rpar = append(rseq, s), append(rpar, p)
		rspeedups = append(rspeedups, s.Seconds()/p.Seconds())
	}
	if m := rp.misses.Load(); m != recorded {
		return Result{}, fmt.Errorf("T8: %d requests the replay had not recorded (the listings' requests differ from run to run)", m-recorded)
	}
	slices.Sort(speedups)
	slices.Sort(rspeedups)
	return Result{
		Ours: median(par), Peer: median(seq), Target: 1.0 / 6,
		Peer_:   fmt.Sprintf("ListWorkers 1 (%d req) vs 8 (%d req)", seqReq, parReq),
		Speedup: median(seq) / median(par), SpeedupMin: speedups[0], SpeedupMax: speedups[len(speedups)-1],
		ClientSpeedup: median(rseq) / median(rpar), ClientSpeedupMin: rspeedups[0], ClientSpeedupMax: rspeedups[len(rspeedups)-1],
	}, nil
}
