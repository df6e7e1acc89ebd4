package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
}

func (l *latency) Do(r *http.Request) (*http.Response, error) {
	l.requests.Add(1)
	select {
	case <-time.After(l.delay):
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	return http.DefaultClient.Do(r)
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
	list := func(workers int) (time.Duration, int64, error) {
		l := &latency{delay: delay}
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
	var par, seq []time.Duration
	var speedups []float64
	var parReq, seqReq int64
	for range b.runs {
		s, n, err := list(1)
		if err != nil {
			return Result{}, err
		}
		seq, seqReq = append(seq, s), n
		p, n, err := list(8)
		if err != nil {
			return Result{}, err
		}
		par, parReq = append(par, p), n
		speedups = append(speedups, s.Seconds()/p.Seconds())
	}
	slices.Sort(speedups)
	return Result{
		Ours: median(par), Peer: median(seq), Target: 1.0 / 6,
		Peer_:   fmt.Sprintf("ListWorkers 1 (%d req) vs 8 (%d req)", seqReq, parReq),
		Speedup: median(seq) / median(par), SpeedupMin: speedups[0], SpeedupMax: speedups[len(speedups)-1],
	}, nil
}
