// Command bench measures mediaclean against GNU find and comm on the same
// tree in the same run, alternating ours and the peer's, and prints a
// table of medians and ratios (or, with -json, one JSON object).
//
//	go run ./examples/bench -files 100000
//	go run ./examples/bench -files 1000000 -only T1,T3 -json
//
// Each destructive run gets a freshly generated tree. Every comparison
// checks that both sides did the same work (same files deleted, same
// orphans found) and fails if not. The targets, as ratios of our time to
// the GNU tools' on the same tree: T1 <= 0.75,
// T2 <= 0.8, T3 <= 0.8 and <= 120 bytes per reference, T4 <= 1.2, T5 <= 1.5
// (on versitygw, installed with go install on first use), T6 <= 2; T7
// (merge mode on a synthetic listing of -t7-keys keys, not in the default
// -only) <= 1.0 against sort -S 64M and comm, with a peak heap <= 64 MiB.
// T8 (not in the default set: it writes -t8-objects files) lists a bucket
// on versitygw with 20 ms added to each request, with s3fs ListWorkers 8
// against 1, and reports the speedup; its target is a speedup >= 6 (a
// ratio <= 1/6).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Result is one comparison: medians in seconds and ours/peer.
type Result struct {
	Ours   float64 `json:"ours_s"`
	Peer   float64 `json:"peer_s"`
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
	Peer_  string  `json:"peer"`
	// BytesPerRef (T3) is the peak heap in use per reference, garbage
	// included, which moves with the collector's timing; LiveBytesPerRef
	// the peak live heap the collector marked, which does not.
	BytesPerRef     float64 `json:"bytes_per_ref,omitempty"`
	LiveBytesPerRef float64 `json:"live_bytes_per_ref,omitempty"`
	// Floor (T3) is the time of the two storage passes a plan cannot skip,
	// alone: listing names and statting the orphans found, for their sizes
	// and times. The comm pipeline makes neither.
	Floor float64 `json:"floor_s,omitempty"`
	// SameWork (T3) is the time of the pipeline that makes what a plan
	// holds (find -printf with sizes and times | sort, sort refs, join -v1,
	// awk for the grace filter and the bytes); the ratios are ours over it
	// and over Floor.
	SameWork      float64 `json:"same_work_s,omitempty"`
	SameWorkRatio float64 `json:"same_work_ratio,omitempty"`
	FloorRatio    float64 `json:"floor_ratio,omitempty"`
	// PeakHeap (T7) is the most heap in use (garbage included) the run
	// held above where it started, sampled; PeakLiveHeap the most live
	// heap the collector marked; Keys the keys and references it had.
	PeakHeap     uint64 `json:"peak_heap_bytes,omitempty"`
	PeakLiveHeap uint64 `json:"peak_live_heap_bytes,omitempty"`
	Keys         int    `json:"keys,omitempty"`
	// Speedup (T8) is the peer's median over ours, with the least and the
	// most of the runs' own ratios.
	Speedup    float64 `json:"speedup,omitempty"`
	SpeedupMin float64 `json:"speedup_min,omitempty"`
	SpeedupMax float64 `json:"speedup_max,omitempty"`
	// ClientSpeedup (T8) is the same speedup with the server's answers
	// replayed from memory (the latency kept): the client alone, as on a
	// machine that does not share its cores with the server.
	ClientSpeedup    float64 `json:"client_speedup,omitempty"`
	ClientSpeedupMin float64 `json:"client_speedup_min,omitempty"`
	ClientSpeedupMax float64 `json:"client_speedup_max,omitempty"`
}

// Output is what -json prints.
type Output struct {
	Files   int               `json:"files"`
	Runs    int               `json:"runs"`
	Dir     string            `json:"dir"`
	Results map[string]Result `json:"results"`
}

type bench struct {
	files    int
	runs     int
	base     string // trees (tmpfs by default)
	diskBase string // T4's directory, on a local disk
}

func main() {
	files := flag.Int("files", 100000, "files in the generated tree")
	runs := flag.Int("runs", 3, "runs of each side (medians are reported)")
	jsonOut := flag.Bool("json", false, "print one JSON object instead of a table")
	only := flag.String("only", "T1,T2,T3,T4,T5,T6,T9,T9-S3", "comma-separated targets to run (T7 and T8 also exist)")
	t7Keys := flag.Int("t7-keys", 10_000_000, "keys of T7's synthetic listing, and as many references")
	t7Hash := flag.Bool("t7-hash", false, "run T7 in hash mode instead of merge mode, to compare their memory")
	t7Curve := flag.String("t7-curve", "", "instead of the targets, measure the peak heap of T7 in merge and hash mode at these comma-separated key counts, and draw it")
	t7SVG := flag.String("t7-svg", "memory.svg", "where -t7-curve writes its chart")
	s3Objects := flag.Int("s3-objects", 10000, "objects for T5 on the S3-compatible server (versitygw, installed on first use)")
	t8Objects := flag.Int("t8-objects", 100000, "objects for T8 (written as files into versitygw's folder)")
	t8PerDir := flag.Int("t8-per-dir", 500, "objects per directory in T8's bucket")
	t8Latency := flag.Duration("t8-latency", 20*time.Millisecond, "time T8 adds to each request")
	diskDir := flag.String("disk-dir", os.TempDir(), "a directory on a local disk for T4, whose target is defined there (fsync costs nothing on tmpfs)")
	dir := flag.String("dir", "", "directory for the trees (default: /dev/shm if present, else the temp dir)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	base := *dir
	if base == "" {
		base = os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			base = "/dev/shm"
		}
	}
	work, err := os.MkdirTemp(base, "mediaclean-bench-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	for _, tool := range []string{"find", "sort", "comm", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			fatal(fmt.Errorf("%s is needed for the comparison: %w", tool, err))
		}
	}

	t4work, err := os.MkdirTemp(*diskDir, "mediaclean-bench-t4-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(t4work)
	b := &bench{files: *files, runs: *runs, base: work, diskBase: t4work}
	out := Output{Files: *files, Runs: *runs, Dir: base, Results: map[string]Result{}}
	targets := map[string]func() (Result, error){
		"T1": b.t1Sweep, "T2": b.t2DryRun, "T3": b.t3Orphans, "T4": b.t4Replace, "T6": b.t6MemMapFs,
		"T5":    func() (Result, error) { return b.t5S3(*s3Objects) },
		"T7":    func() (Result, error) { return b.t7Merge(*t7Keys, *t7Hash) },
		"T8":    func() (Result, error) { return b.t8ParallelList(*t8Objects, *t8PerDir, *t8Latency) },
		"T9":    b.t9Local,
		"T9-S3": func() (Result, error) { return b.t9S3(*s3Objects) },
	}
	if *t7Curve != "" {
		var sizes []int
		for _, f := range strings.Split(*t7Curve, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1000 {
				fatal(fmt.Errorf("-t7-curve: %q is not a key count of at least 1000", f))
			}
			sizes = append(sizes, n)
		}
		if err := b.memoryCurve(sizes, *t7SVG); err != nil {
			fatal(err)
		}
		return
	}
	want := strings.Split(*only, ",")
	for _, name := range []string{"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T9-S3"} {
		if !slices.Contains(want, name) {
			continue
		}
		run := targets[name]
		if !*jsonOut {
			fmt.Fprintf(os.Stderr, "running %s...\n", name)
		}
		r, err := run()
		if err != nil {
			fatal(fmt.Errorf("%s: %w", name, err))
		}
		r.Ratio = r.Ours / r.Peer
		if r.SameWork > 0 {
			r.SameWorkRatio = r.Ours / r.SameWork
		}
		if r.Floor > 0 {
			r.FloorRatio = r.Ours / r.Floor
		}
		r.Met = r.Ratio <= r.Target && (r.BytesPerRef == 0 || r.BytesPerRef <= 120) && r.PeakHeap <= 64<<20
		out.Results[name] = r
	}
	if *jsonOut {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(out); err != nil {
			fatal(err)
		}
		return
	}
	printTable(out)
}

func printTable(out Output) {
	fmt.Printf("mediaclean vs peers: %d files, %d runs each, trees in %s\n\n", out.Files, out.Runs, out.Dir)
	fmt.Printf("%-5s %-44s %10s %10s %7s %7s  %s\n", "", "peer", "ours (s)", "peer (s)", "ratio", "target", "met")
	for _, name := range []string{"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T9-S3"} {
		r, ok := out.Results[name]
		if !ok {
			continue
		}
		extra := ""
		if r.BytesPerRef > 0 {
			extra = fmt.Sprintf("  (%.0f bytes/ref in use, %.0f live)", r.BytesPerRef, r.LiveBytesPerRef)
		}
		if r.PeakHeap > 0 {
			extra += fmt.Sprintf("  (%d keys, peak heap %.1f MiB in use, %.1f MiB live)", r.Keys, float64(r.PeakHeap)/(1<<20), float64(r.PeakLiveHeap)/(1<<20))
		}
		if r.Floor > 0 {
			extra += fmt.Sprintf("  (names + orphan stats alone: %.2f of peer; ours / that floor %.2f)", r.Floor/r.Peer, r.FloorRatio)
		}
		if r.SameWork > 0 {
			extra += fmt.Sprintf("  (ours / find|sort|join|awk with sizes and times: %.2f)", r.SameWorkRatio)
		}
		if r.Speedup > 0 {
			extra += fmt.Sprintf("  (speedup %.2f, runs %.2f-%.2f)", r.Speedup, r.SpeedupMin, r.SpeedupMax)
		}
		if r.ClientSpeedup > 0 {
			extra += fmt.Sprintf("  (client alone, answers replayed: %.2f, runs %.2f-%.2f)", r.ClientSpeedup, r.ClientSpeedupMin, r.ClientSpeedupMax)
		}
		fmt.Printf("%-5s %-44s %10.3f %10.3f %7.2f %7.2f  %v%s\n", name, r.Peer_, r.Ours, r.Peer, r.Ratio, r.Target, r.Met, extra)
	}
}

func median(xs []time.Duration) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2].Seconds()
}

func fatal(err error) {
	pprof.StopCPUProfile()
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
