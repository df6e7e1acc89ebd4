package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/orphan"
)

// syntheticListing is a storage of n objects, "k/%010d.png", that lists
// them in byte order without holding them: a listing too large for this
// machine's memory as a tree. Everything but the listing is an empty
// MemMapFs, which Find does not touch since every entry is measured.
type syntheticListing struct {
	afero.Fs
	n   int
	old time.Time
}

func syntheticKey(i int) string { return fmt.Sprintf("k/%010d.png", i) }

func (s *syntheticListing) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	buf := make([]byte, 0, 32)
	for i := range s.n {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		buf = append(buf[:0], "k/"...)
		buf = appendPadded(buf, i)
		buf = append(buf, ".png"...)
		if err := fn(storage.Entry{Path: string(buf), Size: 1, ModTime: s.old}); err != nil {
			return err
		}
	}
	return nil
}

// appendPadded appends i in ten digits, as %010d does, without fmt.
func appendPadded(b []byte, i int) []byte {
	s := strconv.Itoa(i)
	for range 10 - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// T7: merge mode on a synthetic listing of n keys against n references
// (every key but one in a thousand, in a shuffled order, plus as many
// missing paths), against GNU sort with the same memory (-S 64M) of both
// lists and comm -23; and the peak heap, which must stay under 64 MiB and
// not grow with n. With hash it measures hash mode instead, for the
// memory comparison.
func (b *bench) t7Merge(n int, hash bool) (Result, error) {
	keys := filepath.Join(b.base, "t7-keys.txt")
	refs := filepath.Join(b.base, "t7-refs.txt")
	defer os.Remove(keys)
	defer os.Remove(refs)
	orphans := 0
	if err := writeLines(keys, n, func(i int) string { return syntheticKey(i) }); err != nil {
		return Result{}, err
	}
	// A permutation of 0..n-1, as a database returns rows: i*p mod n for
	// a p coprime with n.
	p := 7919
	for gcd(p, n) != 1 {
		p += 2
	}
	if err := writeLines(refs, n, func(i int) string {
		j := int(uint64(i) * uint64(p) % uint64(n))
		if j%1000 == 999 {
			orphans++
			return fmt.Sprintf("gone/%010d.png", j)
		}
		return syntheticKey(j)
	}); err != nil {
		return Result{}, err
	}
	fsys := &syntheticListing{Fs: afero.NewMemMapFs(), n: n, old: time.Now().Add(-48 * time.Hour)}
	var ours, peer []time.Duration
	var peakHeap uint64
	for range b.runs {
		finder := orphan.New(fsys, orphan.File(refs), orphan.Options{MinAge: -1, MaxFraction: -1, Merge: !hash, TempDir: b.base})
		var plan *orphan.Plan
		d, peak, err := measureHeap(func() (err error) {
			plan, err = finder.Find(context.Background())
			return err
		})
		if err != nil {
			return Result{}, err
		}
		ours = append(ours, d)
		peakHeap = max(peakHeap, peak)
		if len(plan.Orphans) != orphans {
			return Result{}, fmt.Errorf("different work: %d orphans planned, %d made", len(plan.Orphans), orphans)
		}
		d, out, err := timeCmd("sh", "-c", `sort -S 64M -T "$3" "$1" > "$3/t7.a" && sort -S 64M -T "$3" "$2" > "$3/t7.b" && comm -23 "$3/t7.a" "$3/t7.b" | wc -l; rm -f "$3/t7.a" "$3/t7.b"`, "sh", keys, refs, b.base)
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		if got, _ := strconv.Atoi(strings.TrimSpace(string(out))); got != orphans {
			return Result{}, fmt.Errorf("different work: ours found %d orphans, comm %d", orphans, got)
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 1.0, Peer_: "sort -S 64M keys; sort -S 64M refs; comm -23", PeakHeap: peakHeap, Keys: n}, nil
}

// measureHeap runs fn and returns its time and the peak of the live heap
// above where it started (HeapInuse, sampled every 2 ms after a GC).
func measureHeap(fn func() error) (time.Duration, uint64, error) {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	start := time.Now()
	err := fn()
	d := time.Since(start)
	close(stop)
	<-sampled
	p := peak.Load()
	if p < base.HeapInuse {
		p = base.HeapInuse
	}
	return d, p - base.HeapInuse, err
}

func writeLines(name string, n int, line func(i int) string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		w.WriteString(line(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
