package storage

import (
	"context"
	"slices"
	"testing"

	"github.com/spf13/afero"
)

// removeRecorder records Remove calls.
type removeRecorder struct {
	afero.Fs
	removed []string
}

func (r *removeRecorder) Remove(name string) error {
	r.removed = append(r.removed, name)
	return r.Fs.Remove(name)
}

// TestRootGuardIsLoadBearing (P8): with the root check, emptying a tree
// removes its folders and never tries the root; without it, the root is
// removed too.
func TestRootGuardIsLoadBearing(t *testing.T) {
	run := func() []string {
		rec := &removeRecorder{Fs: afero.NewMemMapFs()}
		if err := rec.MkdirAll("a/b", 0o755); err != nil {
			t.Fatal(err)
		}
		RemoveEmptyDirs(context.Background(), rec, []string{"a/b"}, "")
		return rec.removed
	}
	if got := run(); !slices.Equal(got, []string{"a/b", "a"}) {
		t.Fatalf("with the guard: removed %q, want a/b then a", got)
	}
	guardRoot = false
	defer func() { guardRoot = true }()
	if got := run(); !slices.Contains(got, ".") {
		t.Fatalf("without the root check the root should be removed too (the guard would not be load-bearing): %q", got)
	}
}
