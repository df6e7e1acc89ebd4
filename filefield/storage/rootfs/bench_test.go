package rootfs_test

import (
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

const benchFiles = 10_000

// benchTree is a Fs over benchFiles files, 1000 per directory, and
// their paths in listing order.
func benchTree(b *testing.B) (*rootfs.Fs, []string) {
	b.Helper()
	rfs, err := rootfs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rfs.Close() })
	old := time.Now().Add(-10 * 24 * time.Hour)
	if err := (storagetest.Tree{Files: benchFiles, Old: old, New: old}).Generate(rfs); err != nil {
		b.Fatal(err)
	}
	var paths []string
	if err := rfs.ListFiles(b.Context(), storage.ListOptions{Measure: measureNone}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
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
		if err := rfs.ListFiles(b.Context(), storage.ListOptions{Dir: ""}, func(e storage.Entry) error {
			if e.Type.IsRegular() && !e.ModTime.IsZero() {
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
		if err := rfs.ListFiles(b.Context(), storage.ListOptions{Measure: measureNone}, func(e storage.Entry) error {
			if e.Type.IsRegular() {
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
			if e.Type.IsRegular() && e.Size > 0 {
				n++
			}
			return nil
		}); err != nil || n != benchFiles {
			b.Fatalf("%d files stat'ed, %v", n, err)
		}
	}
	b.ReportMetric(benchFiles, "files/op")
}

// measureNone lists names only.
func measureNone(string) bool { return false }

// plain hides a backend's fast paths: storage.List walks it.
type plain struct{ afero.Fs }
