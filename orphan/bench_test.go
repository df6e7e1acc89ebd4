package orphan_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// BenchmarkFind is the hot path of T3: a plan over 100,000 files on the
// local backend against as many references, half of them to files that
// exist (examples/bench compares it with comm).
func BenchmarkFind(b *testing.B) {
	const files = 100_000
	rfs, err := rootfs.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer rfs.Close()
	old := time.Now().Add(-10 * 24 * time.Hour)
	tree := storagetest.Tree{Files: files, Old: old, New: old}
	if err := tree.Generate(rfs); err != nil {
		b.Fatal(err)
	}
	refs := make([]string, 0, files)
	for i := range files {
		if i%2 == 0 {
			refs = append(refs, tree.Path(i))
		} else {
			refs = append(refs, fmt.Sprintf("gone/%08d.png", i))
		}
	}
	f := orphan.New(rfs, orphan.Paths(refs...), orphan.Options{MaxFraction: -1})
	for b.Loop() {
		plan, err := f.Find(b.Context())
		if err != nil || len(plan.Orphans) != files/2 {
			b.Fatalf("%d orphans, %v", len(plan.Orphans), err)
		}
	}
	b.ReportMetric(float64(files), "files/op")
}
