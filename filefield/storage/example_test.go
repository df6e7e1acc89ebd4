package storage_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// ValidPath decides which stored paths any mediaclean component may
// touch; a row holding any other path never leads to a deletion.
func ExampleValidPath() {
	for _, p := range []string{
		"profile_pics/3f9c1e.jpg",
		"../etc/passwd",
		"/etc/passwd",
		"pics/.htaccess",
		`C:\boot.ini`,
		"pics/CON.jpg",
		"pics/a\u202egpj.exe",
	} {
		err := storage.ValidPath(p)
		fmt.Printf("%-26q valid=%t unsafe=%t\n", p, err == nil, errors.Is(err, storage.ErrUnsafePath))
	}
	// Output:
	// "profile_pics/3f9c1e.jpg"  valid=true unsafe=false
	// "../etc/passwd"            valid=false unsafe=true
	// "/etc/passwd"              valid=false unsafe=true
	// "pics/.htaccess"           valid=false unsafe=true
	// "C:\\boot.ini"             valid=false unsafe=true
	// "pics/CON.jpg"             valid=false unsafe=true
	// "pics/a\u202egpj.exe"      valid=false unsafe=true
}

// Delete is the one deletion pipeline: each target gets exactly one
// outcome, and anything unsafe, protected or changed is kept.
func ExampleDelete() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []string{"qr/a.png", "qr/b.png", "qr/default.png"} {
		_ = afero.WriteFile(fsys, p, []byte("png"), 0o644)
		_ = fsys.Chtimes(p, old, old)
	}
	_ = afero.WriteFile(fsys, "qr/b.png", []byte("new bytes"), 0o644) // changed since it was listed

	targets := []storage.Target{
		{Path: "qr/a.png", Size: 3, ModTime: old, Check: true},
		{Path: "qr/b.png", Size: 3, ModTime: old, Check: true},
		{Path: "qr/default.png"},
		{Path: "../secrets.txt"},
		{Path: "qr/gone.png"},
	}
	outcomes := make([]storage.Outcome, len(targets))
	for i := range targets {
		targets[i].Index = i
	}
	err := storage.Delete(ctx, fsys, targets, storage.DeleteOptions{
		Protected: []string{"qr/default.png"},
		OnOutcome: func(o storage.Outcome) { outcomes[o.Index] = o },
	})
	fmt.Println("error:", err)
	for _, o := range outcomes {
		if o.Reason != "" {
			fmt.Printf("%s: %s (%s)\n", o.Path, o.Action, o.Reason)
		} else {
			fmt.Printf("%s: %s\n", o.Path, o.Action)
		}
	}
	// Output:
	// error: <nil>
	// qr/a.png: delete
	// qr/b.png: keep (changed)
	// qr/default.png: keep (protected)
	// ../secrets.txt: keep (unsafe_path)
	// qr/gone.png: keep (already_gone)
}

// A careful write: the file appears under its name only at Commit, whole;
// Abort (or a failed write) leaves nothing behind.
func ExampleCreate() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	w, err := storage.Create(ctx, fsys, "receipts/2026/r1.pdf", storage.WriteOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Abort() // does nothing after a successful Commit
	if _, err := w.Write([]byte("%PDF-1.7 ...")); err != nil {
		fmt.Println(err)
		return
	}
	_, err = fsys.Stat("receipts/2026/r1.pdf")
	fmt.Println("before commit, exists:", err == nil)
	if err := w.Commit("receipts/2026/r1.pdf"); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := afero.ReadFile(fsys, "receipts/2026/r1.pdf")
	fmt.Printf("after commit: %q\n", b)
	// Output:
	// before commit, exists: false
	// after commit: "%PDF-1.7 ..."
}

// List visits every file once, with the strategy the backend does best,
// and never descends into a quarantine area.
func ExampleList() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	for _, p := range []string{"pics/b.jpg", "pics/a.jpg", "pics/2026/c.jpg", "other/d.jpg", "pics/.mediaclean-quarantine/run/x.jpg"} {
		_ = afero.WriteFile(fsys, p, []byte("jpg"), 0o644)
	}
	var paths []string
	err := storage.List(ctx, fsys, storage.ListOptions{Dir: "pics"}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			paths = append(paths, e.Path)
		}
		return nil
	})
	slices.Sort(paths)
	fmt.Println(paths, err)
	// Output:
	// [pics/2026/c.jpg pics/a.jpg pics/b.jpg] <nil>
}
