package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/sweep"
)

const week = 7 * 24 * time.Hour

func (b *bench) tree() storagetest.Tree {
	return storagetest.Tree{Files: b.files, Old: time.Now().Add(-10 * 24 * time.Hour)}
}

// fresh generates a new tree in a new directory and returns its path.
func (b *bench) fresh() (string, error) {
	dir, err := os.MkdirTemp(b.base, "tree-")
	if err != nil {
		return "", err
	}
	rfs, err := rootfs.New(dir)
	if err != nil {
		return "", err
	}
	defer rfs.Close()
	return dir, b.tree().Generate(rfs)
}

// remaining lists the files left in dir, sorted, to compare both sides.
func remaining(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p[len(dir)+1:])
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

func timeCmd(name string, args ...string) (time.Duration, []byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	err := cmd.Run()
	return time.Since(start), out.Bytes(), err
}

func sweeper(fsys afero.Fs, dry bool) *sweep.Sweeper {
	return sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: week}}, DryRun: dry})
}

// sweepFresh sweeps a freshly generated tree on the local backend and
// returns the report, the sweep's time and the files left.
func (b *bench) sweepFresh() (*sweep.Report, time.Duration, []string, error) {
	dir, err := b.fresh()
	if err != nil {
		return nil, 0, nil, err
	}
	defer os.RemoveAll(dir)
	rfs, err := rootfs.New(dir)
	if err != nil {
		return nil, 0, nil, err
	}
	start := time.Now()
	rep, err := sweeper(rfs, false).Sweep(context.Background())
	took := time.Since(start)
	rfs.Close()
	if err != nil {
		return nil, 0, nil, err
	}
	left, err := remaining(dir)
	return rep, took, left, err
}

// T1: sweep vs find -type f -mtime +7 -delete, each on a fresh tree.
func (b *bench) t1Sweep() (Result, error) {
	return b.sweepAgainst("find -type f -mtime +7 -delete", 0.75, func(dir string) (time.Duration, error) {
		d, _, err := timeCmd("find", dir, "-type", "f", "-mtime", "+7", "-delete")
		return d, err
	})
}

// sweepAgainst times a sweep and the peer (a command deleting the files
// older than 7 days from dir), each on a fresh tree, and checks that both
// left the same files.
func (b *bench) sweepAgainst(peerName string, target float64, runPeer func(dir string) (time.Duration, error)) (Result, error) {
	var ours, peer []time.Duration
	for range b.runs {
		rep, took, oursLeft, err := b.sweepFresh()
		if err != nil {
			return Result{}, err
		}
		ours = append(ours, took)

		dir, err := b.fresh()
		if err != nil {
			return Result{}, err
		}
		d, err := runPeer(dir)
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		peerLeft, err := remaining(dir)
		os.RemoveAll(dir)
		if err != nil {
			return Result{}, err
		}
		if !slices.Equal(oursLeft, peerLeft) || rep.Deleted.Files != b.files/2+b.files%2 {
			return Result{}, fmt.Errorf("different work: ours left %d files (deleted %d), %s left %d", len(oursLeft), rep.Deleted.Files, peerName, len(peerLeft))
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: target, Peer_: peerName}, nil
}

// T2: dry run vs find -type f -mtime +7 | wc -l, on one tree.
func (b *bench) t2DryRun() (Result, error) {
	dir, err := b.fresh()
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	rfs, err := rootfs.New(dir)
	if err != nil {
		return Result{}, err
	}
	defer rfs.Close()
	var ours, peer []time.Duration
	for range b.runs {
		start := time.Now()
		rep, err := sweeper(rfs, true).Sweep(context.Background())
		ours = append(ours, time.Since(start))
		if err != nil {
			return Result{}, err
		}
		d, out, err := timeCmd("sh", "-c", `find "$1" -type f -mtime +7 | wc -l`, "sh", dir)
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if n != rep.Deleted.Files {
			return Result{}, fmt.Errorf("different work: ours would delete %d, find counted %d", rep.Deleted.Files, n)
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 0.8, Peer_: "find -type f -mtime +7 | wc -l"}, nil
}

// T3: orphan plan vs comm -23 of sorted find output against sorted
// references. The references name every other file plus as many paths
// that do not exist, so there are as many references as files.
func (b *bench) t3Orphans() (Result, error) {
	tr := storagetest.Tree{Files: b.files, Old: time.Now().Add(-10 * 24 * time.Hour), New: time.Now().Add(-10 * 24 * time.Hour)}
	dir, err := os.MkdirTemp(b.base, "tree-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	rfs, err := rootfs.New(dir)
	if err != nil {
		return Result{}, err
	}
	defer rfs.Close()
	if err := tr.Generate(rfs); err != nil {
		return Result{}, err
	}
	refs := filepath.Join(b.base, "refs.txt")
	f, err := os.Create(refs)
	if err != nil {
		return Result{}, err
	}
	w := bufio.NewWriter(f)
	// Written in a shuffled order, as a database would return them.
	for i := b.files - 1; i >= 0; i-- {
		if i%2 == 0 {
			fmt.Fprintln(w, tr.Path(i))
		} else {
			fmt.Fprintf(w, "gone/%08d.png\n", i)
		}
	}
	if err := w.Flush(); err != nil {
		return Result{}, err
	}
	f.Close()
	defer os.Remove(refs)

	var ours, peer, floor, same []time.Duration
	var bytesPerRef, liveBytesPerRef float64
	for range b.runs {
		finder := orphan.New(rfs, orphan.File(refs), orphan.Options{MinAge: -1, MaxFraction: -1})
		var plan *orphan.Plan
		d, peak, err := measureHeap(func() (err error) {
			plan, err = finder.Find(context.Background())
			return err
		})
		ours = append(ours, d)
		if err != nil {
			return Result{}, err
		}
		bytesPerRef, liveBytesPerRef = float64(peak.inUse)/float64(b.files), float64(peak.live)/float64(b.files)
		d, err = storageFloor(rfs, plan)
		if err != nil {
			return Result{}, err
		}
		floor = append(floor, d)
		d, out, err := timeCmd("sh", "-c", `find "$1" -type f -printf '%P\n' | sort > "$3.a" && sort "$2" > "$3.b" && comm -23 "$3.a" "$3.b" | wc -l; rm -f "$3.a" "$3.b"`, "sh", dir, refs, filepath.Join(b.base, "comm"))
		if err != nil {
			return Result{}, err
		}
		peer = append(peer, d)
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if n != len(plan.Orphans) {
			return Result{}, fmt.Errorf("different work: ours found %d orphans, comm %d", len(plan.Orphans), n)
		}
		// The pipeline that makes what a plan holds: each orphan's size
		// and mtime, the grace filter (none here, as in ours: MinAge -1)
		// and the total bytes.
		d, out, err = timeCmd("sh", "-c", `T="$(printf '\t')"
find "$1" -type f -printf '%P\t%s\t%T@\n' | sort -t "$T" -k1,1 > "$3.a" && sort "$2" > "$3.b" &&
join -t "$T" -v1 "$3.a" "$3.b" | awk -F "$T" -v cut="$4" '$3 <= cut { n++; b += $2 } END { printf "%d %d\n", n, b }'
rm -f "$3.a" "$3.b"`, "sh", dir, refs, filepath.Join(b.base, "join"), strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
		if err != nil {
			return Result{}, err
		}
		same = append(same, d)
		var files, bytes int64
		fmt.Sscan(string(out), &files, &bytes)
		if files != int64(len(plan.Orphans)) || bytes != plan.Total.Bytes {
			return Result{}, fmt.Errorf("different work: ours planned %d orphans of %d bytes, join %d of %d", len(plan.Orphans), plan.Total.Bytes, files, bytes)
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 0.8, Peer_: "find | sort; sort refs; comm -23", BytesPerRef: bytesPerRef, LiveBytesPerRef: liveBytesPerRef, Floor: median(floor), SameWork: median(same)}, nil
}

// storageFloor times what any plan with orphan sizes and times must do on
// storage: list the names, then stat the orphans.
func storageFloor(rfs *rootfs.Fs, plan *orphan.Plan) (time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	files := 0
	if err := rfs.ListFiles(ctx, storage.ListOptions{Measure: func(string) bool { return false }}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			files++
		}
		return nil
	}); err != nil {
		return 0, err
	}
	paths := make([]string, len(plan.Orphans))
	for i, o := range plan.Orphans {
		paths[i] = o.Path
	}
	stats := 0
	if err := rfs.StatFiles(ctx, paths, func(int, storage.Entry) error { stats++; return nil }); err != nil {
		return 0, err
	}
	d := time.Since(start)
	if stats != len(paths) || files < stats {
		return 0, fmt.Errorf("floor: %d files listed, %d of %d orphans stat'ed", files, stats, len(paths))
	}
	return d, nil
}

// T4: Replace+Commit vs a plain write, sync, close, rename, directory sync
// and removal of the old file, of the same 100 kB, 200 times each.
func (b *bench) t4Replace() (Result, error) {
	const n = 200
	body := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 100<<10)...)
	var ours, peer []time.Duration
	for range b.runs {
		dir, err := os.MkdirTemp(b.diskBase, "t4-")
		if err != nil {
			return Result{}, err
		}
		rfs, err := rootfs.New(dir)
		if err != nil {
			return Result{}, err
		}
		f := filefield.New("pics", rfs, filefield.Options{Dir: "pics"})
		cur := ""
		start := time.Now()
		for range n {
			ch, err := f.Replace(context.Background(), cur, filefield.Upload{Body: bytes.NewReader(body), Name: "a.png"})
			if err != nil {
				return Result{}, err
			}
			if res := ch.Commit(context.Background()); len(res.Failed) > 0 {
				return Result{}, fmt.Errorf("commit: %v", res.Failed)
			}
			cur = ch.New
		}
		ours = append(ours, time.Since(start))
		rfs.Close()

		pics := filepath.Join(dir, "plain")
		if err := os.MkdirAll(pics, 0o755); err != nil {
			return Result{}, err
		}
		start = time.Now()
		prev := ""
		for i := range n {
			tmp := filepath.Join(pics, ".tmp")
			final := filepath.Join(pics, fmt.Sprintf("%d.png", i))
			fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return Result{}, err
			}
			if _, err := fh.Write(body); err != nil {
				return Result{}, err
			}
			if err := fh.Sync(); err != nil {
				return Result{}, err
			}
			fh.Close()
			if err := os.Rename(tmp, final); err != nil {
				return Result{}, err
			}
			d, _ := os.Open(pics)
			d.Sync()
			d.Close()
			if prev != "" {
				os.Remove(prev)
			}
			prev = final
		}
		peer = append(peer, time.Since(start))
		left, _ := remaining(dir)
		os.RemoveAll(dir)
		if len(left) != 2 {
			return Result{}, fmt.Errorf("different work: %d files left, want one per side", len(left))
		}
	}
	return Result{Ours: median(ours), Peer: median(peer), Target: 1.2, Peer_: "write, sync, close, rename, dirsync, remove"}, nil
}

// T6: the same sweep on MemMapFs vs on the local backend.
func (b *bench) t6MemMapFs() (Result, error) {
	var mem, disk []time.Duration
	for range b.runs {
		m := afero.NewMemMapFs()
		if err := b.tree().Generate(m); err != nil {
			return Result{}, err
		}
		start := time.Now()
		rep, err := sweeper(m, false).Sweep(context.Background())
		mem = append(mem, time.Since(start))
		if err != nil || rep.Deleted.Files != b.files/2+b.files%2 {
			return Result{}, fmt.Errorf("MemMapFs sweep deleted %d: %v", rep.Deleted.Files, err)
		}
		rep2, took, _, err := b.sweepFresh()
		if err != nil {
			return Result{}, err
		}
		disk = append(disk, took)
		if rep2.Deleted.Files != rep.Deleted.Files {
			return Result{}, fmt.Errorf("different work: MemMapFs deleted %d, disk %d", rep.Deleted.Files, rep2.Deleted.Files)
		}
	}
	return Result{Ours: median(mem), Peer: median(disk), Target: 2, Peer_: "the same sweep on the local backend"}, nil
}
