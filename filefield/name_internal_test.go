package filefield

import (
	"bytes"
	"encoding/hex"
	"path"
	"testing"
	"unicode/utf8"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

func TestRandomNamesDoNotCollide(t *testing.T) {
	t.Parallel()
	const n = 1_000_000
	seen := make(map[[16]byte]struct{}, n)
	for range n {
		name := randomName()
		if len(name) != 32 {
			t.Fatalf("name %q is not 128 bits in hex", name)
		}
		var k [16]byte
		if _, err := hex.Decode(k[:], []byte(name)); err != nil {
			t.Fatal(err)
		}
		if _, dup := seen[k]; dup {
			t.Fatalf("collision after %d names", len(seen))
		}
		seen[k] = struct{}{}
	}
}

// FuzzUploadName: whatever the client calls its file, the stored name is a
// valid stored path in the field's directory, with an allowlisted
// extension (P4).
func FuzzUploadName(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", "．．/．．/x.png", "COM1 .txt", ".htaccess", "a\x00.png", "a\x1b[31m.png",
		"evil\u202egnp.exe", "cafe\u0301.PNG", string(bytes.Repeat([]byte("a"), 10000)) + ".png", "x.PnG", "x.php.png", "x.png.php", `C:\x\y.png`, ""} {
		f.Add(s, []byte("\x89PNG\r\n\x1a\n"))
	}
	f.Add("a.txt", []byte("plain text"))
	f.Add("a.pdf", []byte("%PDF-1.4"))
	fsys := afero.NewMemMapFs()
	field := New("pics", fsys, Options{Dir: "pics", AllowedTypes: []string{"image/png", "application/pdf", "*"}})
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		ch, err := field.Save(t.Context(), Upload{Body: bytes.NewReader(body), Name: name})
		if err != nil {
			return
		}
		defer ch.Rollback(t.Context())
		if err := storage.ValidPath(ch.New); err != nil {
			t.Fatalf("client name %q gave invalid stored path %q: %v", name, ch.New, err)
		}
		if path.Dir(ch.New) != "pics" || !utf8.ValidString(ch.New) {
			t.Fatalf("client name %q gave %q outside the field's directory", name, ch.New)
		}
		ext := ch.New[len("pics/")+32:]
		if !field.exts[ext] {
			t.Fatalf("client name %q gave extension %q not in the allowlist", name, ext)
		}
	})
}
