package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// hostilePaths are refused by ValidPath and by Clean: every form P3, P4 and
// F7 name, and their relatives.
var hostilePaths = []string{
	"",
	"../x",
	"..",
	".",
	"a/../../b",
	"a/../b",
	"a/./b",
	"/etc/passwd",
	"//server/share/x",
	`C:\x`,
	"C:/x",
	"c:x",
	`\\server\share\x`,
	`\??\C:\x`,
	`a\b`,
	"a\x00b",
	"a/b\x00",
	"a\nb.jpg",
	"a\rb.jpg",
	"a\x1bb.jpg",
	"a\x7fb.jpg",
	"a\u0085b.jpg",
	"evil\u202egpj.exe",
	"zero\u200bwidth.jpg",
	"bom\ufeff.jpg",
	"a//b",
	"a/",
	".htaccess",
	"..a",
	"uploads/.htaccess",
	".mediaclean-tmp-123",
	"COM1 .txt",
	"com1.txt",
	"NUL",
	"uploads/con.jpg",
	"lpt9.png",
	"COM¹.txt",
	"trailing.",
	"trailing ",
	"\uff0e\uff0e/etc/passwd",
	"a/\uff0e\uff0e/b",
	"\xff\xfe.jpg",
	"cafe\u0301.jpg", // NFD
	"a:stream.jpg",
	strings.Repeat("a", 256) + ".jpg",
	strings.Repeat("a/", 600) + "b",
}

var validPaths = []string{
	"a.jpg",
	"profile_pics/3f9c1e.jpg",
	"qr_codes/user-42/2026/11/25/abc.png",
	"with space.jpg",
	"a+b.jpg",
	"100%.jpg",
	"café.jpg",
	"日本語/写真.png",
	"a..b.jpg",
	"conrad.jpg",
	"com10.txt",
	strings.Repeat("a", 255),
}

func TestValidPath(t *testing.T) {
	t.Parallel()
	for _, p := range hostilePaths {
		err := storage.ValidPath(p)
		require.Errorf(t, err, "ValidPath(%q) accepted a hostile path", p)
		assert.ErrorIs(t, err, storage.ErrUnsafePath, p)
		var pe *storage.PathError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, p, pe.Path)
		assert.NotContains(t, err.Error(), "\x00", "error text must quote the path")
	}
	for _, p := range validPaths {
		assert.NoErrorf(t, storage.ValidPath(p), "ValidPath(%q)", p)
	}
}

func TestClean(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a.jpg", "a.jpg"},
		{"/media/a.jpg", "media/a.jpg"},
		{"./a.jpg", "a.jpg"},
		{"././a/./b.jpg", "a/b.jpg"},
		{`profile_pics\a.jpg`, "profile_pics/a.jpg"},
		{"a//b///c.jpg", "a/b/c.jpg"},
		{"///a.jpg", "a.jpg"},
		{"cafe\u0301.jpg", "café.jpg"},
	}
	for _, tt := range tests {
		got, err := storage.Clean(tt.in, false)
		require.NoErrorf(t, err, "Clean(%q)", tt.in)
		assert.Equalf(t, tt.want, got, "Clean(%q)", tt.in)
	}
	for _, p := range []string{"../x", "a/../../b", "a/../b", `..\..\etc\passwd`, "/../etc/passwd", "C:/x", "a\x00b", "", "/", ".htaccess"} {
		_, err := storage.Clean(p, false)
		assert.ErrorIsf(t, err, storage.ErrUnsafePath, "Clean(%q)", p)
	}
}

func TestIsTempName(t *testing.T) {
	t.Parallel()
	hex32 := "0123456789abcdef0123456789abcdef"
	assert.True(t, storage.IsTempName(storage.TempPrefix+hex32))
	assert.True(t, storage.IsTempName("a/b/"+storage.TempPrefix+hex32))
	assert.False(t, storage.IsTempName("a/"+storage.TempPrefix+hex32+"/abc"))
	assert.False(t, storage.IsTempName(storage.TempPrefix+"abc"), "only names a careful write makes")
	assert.False(t, storage.IsTempName(storage.TempPrefix+"0123456789ABCDEF0123456789abcdef"))
	assert.False(t, storage.IsTempName(storage.TempPrefix+hex32+"0"))
	assert.False(t, storage.IsTempName("abc.jpg"))
	assert.Error(t, storage.ValidPath("a/"+storage.TempPrefix+"abc"), "temp names are never valid stored paths")
}

func FuzzValidPath(f *testing.F) {
	for _, p := range append(hostilePaths, validPaths...) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := storage.ValidPath(p)
		if err != nil {
			if !errors.Is(err, storage.ErrUnsafePath) {
				t.Fatalf("ValidPath(%q) = %v, not ErrUnsafePath", p, err)
			}
		} else {
			// Whatever is accepted is local, relative and free of traversal.
			for _, seg := range strings.Split(p, "/") {
				if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
					t.Fatalf("ValidPath accepted %q with segment %q", p, seg)
				}
			}
			if strings.ContainsAny(p, "\\:\x00") || strings.HasPrefix(p, "/") {
				t.Fatalf("ValidPath accepted %q", p)
			}
		}
		c, err := storage.Clean(p, false)
		if err == nil {
			if verr := storage.ValidPath(c); verr != nil {
				t.Fatalf("Clean(%q) = %q, which ValidPath refuses: %v", p, c, verr)
			}
			if c2, err := storage.Clean(c, false); err != nil || c2 != c {
				t.Fatalf("Clean is not idempotent: %q -> %q -> (%q, %v)", p, c, c2, err)
			}
			if strings.Contains(p, "..") && !strings.Contains(c, "..") && hasDotDotSeg(p) {
				t.Fatalf("Clean(%q) resolved a .. segment to %q", p, c)
			}
		}
	})
}

func hasDotDotSeg(p string) bool {
	for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return true
		}
	}
	return false
}

// BenchmarkValidPath and BenchmarkClean: both run once per file and once
// per reference in an orphan plan (T3), so they must stay cheap for the
// common ASCII key.
func BenchmarkValidPath(b *testing.B) {
	for b.Loop() {
		if storage.ValidPath("forum_images/2026/11/00042137-3f9c1e0b.png") != nil {
			b.Fatal("refused")
		}
	}
}

func BenchmarkClean(b *testing.B) {
	for b.Loop() {
		if _, err := storage.Clean("forum_images/2026/11/00042137-3f9c1e0b.png", false); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCleanDir(t *testing.T) {
	t.Parallel()
	// Directories in options are cleaned as leniently as references;
	// the root is "".
	for in, want := range map[string]string{"": "", ".": "", "/": "", "//": "", "qr": "qr", "/qr/": "qr", "a/b/": "a/b", "a//b": "a/b", `a\b`: "a/b", "a/./b": "a/b", "./qr": "qr"} {
		got, err := storage.Clean(in, true)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"../x", "a/../../x", "C:", ".hidden", "a/.mediaclean-quarantine"} {
		_, err := storage.Clean(bad, true)
		assert.ErrorIs(t, err, storage.ErrUnsafePath, bad)
	}
}
