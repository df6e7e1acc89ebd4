package sweep_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

func benchSweep(b *testing.B, dry bool, newFs func(b *testing.B) afero.Fs) {
	const files = 100_000 // as the issue and examples/bench: 1000 per directory, half old
	for b.Loop() {
		b.StopTimer()
		fsys := newFs(b)
		if err := (storagetest.Tree{Files: files, Old: time.Now().Add(-10 * 24 * time.Hour)}).Generate(fsys); err != nil {
			b.Fatal(err)
		}
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
	rfs, err := rootfs.New(filepath.Clean(dir))
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
