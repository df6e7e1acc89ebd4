package sweep_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/sweep"
)

// genTree writes files files, 1000 per directory, half older than 7 days.
func genTree(b *testing.B, fsys afero.Fs, files int) {
	b.Helper()
	data := make([]byte, 1024)
	oldT := time.Now().Add(-10 * 24 * time.Hour)
	for i := range files {
		dir := fmt.Sprintf("d%04d", i/1000)
		if i%1000 == 0 {
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		p := fmt.Sprintf("%s/f%06d.png", dir, i)
		if err := afero.WriteFile(fsys, p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if err := fsys.Chtimes(p, oldT, oldT); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchSweep(b *testing.B, dry bool, newFs func(b *testing.B) afero.Fs) {
	const files = 20_000
	for b.Loop() {
		b.StopTimer()
		fsys := newFs(b)
		genTree(b, fsys, files)
		s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: 7 * 24 * time.Hour}}, DryRun: dry})
		b.StartTimer()
		rep, err := s.Sweep(b.Context())
		if err != nil || rep.Deleted.Files != files/2 {
			b.Fatalf("deleted %d, err %v", rep.Deleted.Files, err)
		}
	}
}

func rootFs(b *testing.B) afero.Fs {
	dir, err := os.MkdirTemp(b.TempDir(), "tree")
	if err != nil {
		b.Fatal(err)
	}
	rfs, err := storage.NewRootFs(filepath.Clean(dir))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rfs.Close() })
	return rfs
}

func BenchmarkSweepRootFs(b *testing.B)  { benchSweep(b, false, rootFs) }
func BenchmarkDryRunRootFs(b *testing.B) { benchSweep(b, true, rootFs) }
func BenchmarkSweepMemMapFs(b *testing.B) {
	benchSweep(b, false, func(*testing.B) afero.Fs { return afero.NewMemMapFs() })
}
