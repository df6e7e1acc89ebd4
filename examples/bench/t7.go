package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
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
	keys, refs, orphans, err := b.t7Files(n)
	defer os.Remove(keys)
	defer os.Remove(refs)
	if err != nil {
		return Result{}, err
	}
	var ours, peer []time.Duration
	var peakHeap, peakLive uint64
	for range b.runs {
		d, peak, err := b.t7Find(n, refs, orphans, hash)
		if err != nil {
			return Result{}, err
		}
		ours = append(ours, d)
		peakHeap, peakLive = max(peakHeap, peak.inUse), max(peakLive, peak.live)
		d, out, err := timeCmd("sh", "-c", `sort -S 64M -T "$3" "$1" > "$3/t7.a" && sort -S 64M -T "$3" "$2" > "$3/t7.b" && comm -23 "$3/t7.a" "$3/t7.b" | wc -l; rm -f "$3/t7.a" "$3/t7.b"`, "sh", keys, refs, b.base)
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		if got, _ := strconv.Atoi(strings.TrimSpace(string(out))); got != orphans {
			return Result{}, fmt.Errorf("different work: ours found %d orphans, comm %d", orphans, got)
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 1.0, Peer_: "sort -S 64M keys; sort -S 64M refs; comm -23", PeakHeap: peakHeap, PeakLiveHeap: peakLive, Keys: n}, nil
}

// t7Ours is one run of T7's Find alone, for the memory curve.
func (b *bench) t7Ours(n int, hash bool) (Result, error) {
	keys, refs, orphans, err := b.t7Files(n)
	os.Remove(keys)
	defer os.Remove(refs)
	if err != nil {
		return Result{}, err
	}
	d, peak, err := b.t7Find(n, refs, orphans, hash)
	return Result{Ours: d.Seconds(), PeakHeap: peak.inUse, PeakLiveHeap: peak.live, Keys: n}, err
}

// t7Files writes T7's listing, in byte order, and its references: every
// key but one in a thousand, in a shuffled order (i*p mod n, for a p
// coprime with n, as a database returns rows), the others replaced by
// paths that do not exist. It returns their names and the orphans made.
func (b *bench) t7Files(n int) (keys, refs string, orphans int, err error) {
	keys = filepath.Join(b.base, "t7-keys.txt")
	refs = filepath.Join(b.base, "t7-refs.txt")
	if err := writeLines(keys, n, func(i int) string { return syntheticKey(i) }); err != nil {
		return keys, refs, 0, err
	}
	p := 7919
	for gcd(p, n) != 1 {
		p += 2
	}
	err = writeLines(refs, n, func(i int) string {
		j := int(uint64(i) * uint64(p) % uint64(n))
		if j%1000 == 999 {
			orphans++
			return fmt.Sprintf("gone/%010d.png", j)
		}
		return syntheticKey(j)
	})
	return keys, refs, orphans, err
}

// t7Find plans the synthetic listing of n keys against refs and checks
// the orphans found; it returns its time and peak heap.
func (b *bench) t7Find(n int, refs string, orphans int, hash bool) (time.Duration, heapPeak, error) {
	fsys := &syntheticListing{Fs: afero.NewMemMapFs(), n: n, old: time.Now().Add(-48 * time.Hour)}
	finder := orphan.New(fsys, orphan.File(refs), orphan.Options{MinAge: -1, MaxFraction: -1, Merge: !hash, TempDir: b.base})
	var plan *orphan.Plan
	d, peak, err := measureHeap(func() (err error) {
		plan, err = finder.Find(context.Background())
		return err
	})
	if err == nil && len(plan.Orphans) != orphans {
		err = fmt.Errorf("different work: %d orphans planned, %d made", len(plan.Orphans), orphans)
	}
	return d, peak, err
}

// measureHeap runs fn and returns its time and the peak of the heap in
// use above where it started (HeapInuse, sampled every 2 ms after a GC:
// live objects and the garbage not yet collected, which the collector
// lets grow to about the live heap again). It also logs the peak of the
// live heap the collector found, to stderr.
func measureHeap(fn func() error) (time.Duration, heapPeak, error) {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peakLive uint64
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
			metrics.Read(live)
			peakLive = max(peakLive, live[0].Value.Uint64())
		}
	}()
	start := time.Now()
	err := fn()
	d := time.Since(start)
	close(stop)
	<-sampled
	fmt.Fprintf(os.Stderr, "peak live heap %.1f MiB (base %.1f MiB)\n", float64(peakLive)/(1<<20), float64(base.HeapAlloc)/(1<<20))
	p := max(peak.Load(), base.HeapInuse)
	return d, heapPeak{inUse: p - base.HeapInuse, live: max(peakLive, base.HeapAlloc) - base.HeapAlloc}, err
}

// heapPeak is what measureHeap found above where the run started: the
// peak of the heap in use (garbage included) and of the live heap the
// collector marked.
type heapPeak struct {
	inUse, live uint64
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

// memoryCurve runs T7 once per size in each mode, without the peer, and
// writes the peak heaps as an SVG chart (log-log) to svgPath, and a line
// per point to stderr.
func (b *bench) memoryCurve(sizes []int, svgPath string) error {
	type point struct {
		keys int
		heap uint64
	}
	curves := map[string][]point{}
	for _, mode := range []string{"merge", "hash"} {
		for _, n := range sizes {
			r, err := b.t7Ours(n, mode == "hash")
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "%s mode, %d keys: peak heap %.1f MiB in %.1f s\n", mode, n, float64(r.PeakHeap)/(1<<20), r.Ours)
			curves[mode] = append(curves[mode], point{n, r.PeakHeap})
		}
	}
	const w, h, left, bottom, top, right = 640.0, 400.0, 70.0, 50.0, 20.0, 110.0
	lx := func(n int) float64 {
		lo, hi := math.Log10(float64(sizes[0])), math.Log10(float64(sizes[len(sizes)-1]))
		if hi == lo {
			hi = lo + 1
		}
		return left + (math.Log10(float64(n))-lo)/(hi-lo)*(w-left-right)
	}
	const minMiB, maxMiB = 1.0, 100000.0
	ly := func(bytes uint64) float64 {
		mib := math.Max(float64(bytes)/(1<<20), minMiB)
		return h - bottom - (math.Log10(mib)-math.Log10(minMiB))/(math.Log10(maxMiB)-math.Log10(minMiB))*(h-bottom-top)
	}
	var s strings.Builder
	// The view starts 20 to the left of 0, for the widest label.
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="-20 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w+20, h, w+20, h)
	fmt.Fprintf(&s, `<rect x="-20" width="%.0f" height="%.0f" fill="white"/>`+"\n", w+20, h)
	fmt.Fprintf(&s, `<text x="%.0f" y="14" font-weight="bold">Peak heap in use while Find plans (log scales)</text>`+"\n", left)
	for mib := minMiB; mib <= maxMiB; mib *= 10 {
		y := ly(uint64(mib * (1 << 20)))
		fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%g MiB</text>`+"\n", left, y, w-right, y, left-6, y+4, mib)
	}
	for _, n := range sizes {
		x := lx(n)
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, top, x, h-bottom, x, h-bottom+16, humanKeys(n))
	}
	fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" text-anchor="middle">keys listed, and as many references</text>`+"\n", (left+w-right)/2, h-12)
	y64 := ly(64 << 20)
	// The target's label sits under its line at the left, clear of the
	// curves' labels at the right.
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#c00" stroke-dasharray="4 3"/><text x="%.0f" y="%.1f" fill="#c00">64 MiB target</text>`+"\n", left, y64, w-right, y64, left+4, y64+14)
	colors := map[string]string{"merge": "#1a7f37", "hash": "#0b5cad"}
	for _, mode := range []string{"merge", "hash"} {
		var pts []string
		for _, p := range curves[mode] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(p.keys), ly(p.heap)))
		}
		fmt.Fprintf(&s, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colors[mode], strings.Join(pts, " "))
		last := curves[mode][len(curves[mode])-1]
		fmt.Fprintf(&s, `<text x="%.1f" y="%.1f" fill="%s">%s mode</text>`+"\n", lx(last.keys)+6, ly(last.heap)+4, colors[mode], mode)
	}
	s.WriteString("</svg>\n")
	return os.WriteFile(svgPath, []byte(s.String()), 0o644)
}

func humanKeys(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
