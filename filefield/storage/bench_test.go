package storage_test

import (
	"testing"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

const benchFiles = 10_000

// benchTree is a RootFs over benchFiles files, 1000 per directory, and
// their paths in listing order.
func benchTree(b *testing.B) (*storage.RootFs, []string) {
	b.Helper()
	rfs, err := storage.NewRootFs(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rfs.Close() })
	old := time.Now().Add(-10 * 24 * time.Hour)
	if err := (storagetest.Tree{Files: benchFiles, Old: old, New: old}).Generate(rfs); err != nil {
		b.Fatal(err)
	}
	var paths []string
	if err := rfs.ListNames(b.Context(), "", nil, func(e storage.Entry) error {
		if e.IsRegular() {
			paths = append(paths, e.Path)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return rfs, paths
}

// BenchmarkListTree, BenchmarkListNames and BenchmarkStatFiles are the
// pieces of a sweep (a listing with sizes) and of an orphan plan (names,
// then stats of the files that can be orphans).
func BenchmarkListTree(b *testing.B) {
	rfs, _ := benchTree(b)
	for b.Loop() {
		n := 0
		if err := rfs.ListTree(b.Context(), "", func(e storage.Entry) error {
			if e.IsRegular() && !e.ModTime.IsZero() {
				n++
			}
			return nil
		}); err != nil || n != benchFiles {
			b.Fatalf("%d files measured, %v", n, err)
		}
	}
	b.ReportMetric(benchFiles, "files/op")
}

func BenchmarkListNames(b *testing.B) {
	rfs, _ := benchTree(b)
	for b.Loop() {
		n := 0
		if err := rfs.ListNames(b.Context(), "", nil, func(e storage.Entry) error {
			if e.IsRegular() {
				n++
			}
			return nil
		}); err != nil || n != benchFiles {
			b.Fatalf("%d files, %v", n, err)
		}
	}
	b.ReportMetric(benchFiles, "files/op")
}

func BenchmarkStatFiles(b *testing.B) {
	rfs, paths := benchTree(b)
	for b.Loop() {
		n := 0
		if err := rfs.StatFiles(b.Context(), paths, func(_ int, e storage.Entry) error {
			if e.IsRegular() && e.Size > 0 {
				n++
			}
			return nil
		}); err != nil || n != benchFiles {
			b.Fatalf("%d files stat'ed, %v", n, err)
		}
	}
	b.ReportMetric(benchFiles, "files/op")
}
