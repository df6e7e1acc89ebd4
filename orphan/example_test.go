package orphan_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/orphan"
)

// The seed's monthly audit: how many orphaned files, how much storage,
// which directories.
func ExampleFinder_Find() {
	fsys := afero.NewMemMapFs()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, p := range []string{"profile_pics/a.jpg", "profile_pics/b.jpg", "forum_images/c.png"} {
		afero.WriteFile(fsys, p, []byte("12345"), 0o644)
		fsys.Chtimes(p, old, old)
	}
	f := orphan.New(fsys, orphan.Paths("profile_pics/a.jpg", "/media/forum_images/c.png"), orphan.Options{StripPrefixes: []string{"/media/"}})
	plan, err := f.Find(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Total.Files, "orphaned files,", plan.Total.Bytes, "bytes, most in", plan.Dirs[0].Dir)
	// Output: 1 orphaned files, 5 bytes, most in profile_pics
}

// Quarantine instead of delete, then change your mind.
func ExampleQuarantine_Restore() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, p := range []string{"pics/kept.jpg", "pics/orphan.jpg"} {
		afero.WriteFile(fsys, p, []byte(p), 0o644)
		fsys.Chtimes(p, old, old)
	}
	f := orphan.New(fsys, orphan.Paths("pics/kept.jpg"), orphan.Options{Quarantine: "trash"})
	plan, _ := f.Find(ctx)
	rep, err := f.Apply(ctx, plan)
	if err != nil {
		panic(err)
	}
	_, gone := fsys.Stat("pics/orphan.jpg")
	fmt.Println("quarantined:", rep.Quarantined.Files, "gone from its path:", gone != nil)

	q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
	restored, err := q.Restore(ctx, rep.QuarantineRun)
	if err != nil {
		panic(err)
	}
	back, _ := afero.ReadFile(fsys, "pics/orphan.jpg")
	fmt.Println("restored:", restored.Restored.Files, string(back))
	// Output:
	// quarantined: 1 gone from its path: true
	// restored: 1 pics/orphan.jpg
}

// On a local disk Find lists names and measures only the files that can be
// orphans; Options.MeasureAll measures every scanned file.
func ExampleFinder_Find_localDisk() {
	dir, _ := os.MkdirTemp("", "media-")
	defer os.RemoveAll(dir)
	fsys, _ := rootfs.New(dir)
	defer fsys.Close()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg"} {
		fsys.MkdirAll("pics", 0o755)
		afero.WriteFile(fsys, p, []byte("12345"), 0o644)
		fsys.Chtimes(p, old, old)
	}
	refs := orphan.Paths("pics/a.jpg", "pics/b.jpg")
	for _, all := range []bool{false, true} {
		plan, err := orphan.New(fsys, refs, orphan.Options{MeasureAll: all}).Find(context.Background())
		if err != nil {
			panic(err)
		}
		fmt.Printf("MeasureAll %v: %d orphan (%d bytes); scanned %d files, %d bytes, %d unmeasured\n",
			all, plan.Total.Files, plan.Total.Bytes, plan.Scanned.Files, plan.Scanned.Bytes, plan.Unmeasured)
	}
	// Output:
	// MeasureAll false: 1 orphan (5 bytes); scanned 3 files, 5 bytes, 2 unmeasured
	// MeasureAll true: 1 orphan (5 bytes); scanned 3 files, 15 bytes, 0 unmeasured
}
