package filefield_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

var benchBody = append(append([]byte(nil), pngBytes...), bytes.Repeat([]byte{7}, 100<<10)...)

// BenchmarkReplaceCommit is T4's ours: Replace then Commit of a 100 kB file
// on the local os.Root backend.
func BenchmarkReplaceCommit(b *testing.B) {
	dir := b.TempDir()
	rfs, err := rootfs.New(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer rfs.Close()
	f := filefield.New("pics", rfs, filefield.Options{Dir: "pics"})
	ch, err := f.Save(b.Context(), filefield.Upload{Body: bytes.NewReader(benchBody), Name: "a.png"})
	if err != nil {
		b.Fatal(err)
	}
	cur := ch.New
	for b.Loop() {
		ch, err := f.Replace(b.Context(), cur, filefield.Upload{Body: bytes.NewReader(benchBody), Name: "a.png"})
		if err != nil {
			b.Fatal(err)
		}
		ch.Commit(b.Context())
		cur = ch.New
	}
}

// BenchmarkPlainWriteSyncRename is T4's peer: the same bytes written with
// a plain write, sync, close, rename, directory sync, and the old file
// removed.
func BenchmarkPlainWriteSyncRename(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "pics")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	i := 0
	cur := ""
	for b.Loop() {
		i++
		tmp := filepath.Join(dir, "tmp")
		final := filepath.Join(dir, "f"+string(rune('a'+i%26))+".png")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(benchBody)
		f.Sync()
		f.Close()
		if err := os.Rename(tmp, final); err != nil {
			b.Fatal(err)
		}
		d, _ := os.Open(dir)
		d.Sync()
		d.Close()
		if cur != "" && cur != final {
			os.Remove(cur)
		}
		cur = final
	}
}
