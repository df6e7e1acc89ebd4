package sweep

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// sweepLinkTree sweeps a tree holding one old regular file, a symbolic
// link to a file outside the root, and a file whose name is not a valid
// stored path, and returns which of them are left.
func sweepLinkTree(t *testing.T) (left map[string]bool) {
	t.Helper()
	base := t.TempDir()
	media := filepath.Join(base, "media")
	outside := filepath.Join(base, "outside.png")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(media, "old.png"), filepath.Join(media, "bad\x01name.png"), outside} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(media, "link.png")); err != nil {
		t.Fatal(err)
	}
	rfs, err := storage.NewRootFs(media)
	if err != nil {
		t.Fatal(err)
	}
	defer rfs.Close()
	future := func() time.Time { return time.Now().Add(24 * time.Hour) }
	if _, err := New(rfs, Options{Rules: []Rule{{Glob: "**", MaxAge: time.Hour}}, Now: future}).Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	left = map[string]bool{}
	for _, p := range []string{"old.png", "bad\x01name.png", "link.png"} {
		if _, err := os.Lstat(filepath.Join(media, p)); err == nil {
			left[p] = true
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the file outside the root is gone: %v", err)
	}
	return left
}

// TestGuardsAreLoadBearing (P8): with every guard on, only the regular
// file with a valid name goes; with the symlink guard off the link is
// removed, and with the path guard off the hostile name is removed.
func TestGuardsAreLoadBearing(t *testing.T) {
	left := sweepLinkTree(t)
	if left["old.png"] || !left["link.png"] || !left["bad\x01name.png"] {
		t.Fatalf("with all guards: left %v, want link.png and the bad name kept, old.png removed", left)
	}

	guards.regularOnly = false
	left = sweepLinkTree(t)
	guards.regularOnly = true
	if left["link.png"] {
		t.Fatal("without the regular-file guard the link survived: the guard is not load-bearing")
	}

	guards.validPath = false
	left = sweepLinkTree(t)
	guards.validPath = true
	if left["bad\x01name.png"] {
		t.Fatal("without the path guard the hostile name survived: the guard is not load-bearing")
	}
}
