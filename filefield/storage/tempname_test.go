package storage_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// IsTempName: "TempPrefix and 32 lowercase hex digits". A name of the same
// length that does not start with TempPrefix is a user's file.
func TestIsTempNameChecksThePrefix(t *testing.T) {
	t.Parallel()
	const hex32 = "3f9c1e0e5b8a4d2c9e7f6a1b0c3d2e4f"
	for _, p := range []string{
		"avatars/profile-picture-" + hex32,
		"0123456789abcdef" + hex32,
		"uploads/xmediaclean-tmp-" + hex32,
	} {
		assert.False(t, storage.IsTempName(p), "%q is not a careful write's temp name", p)
		assert.NoError(t, storage.ValidPath(p), "%q is a valid stored path", p)
	}
}

// QuoteGlob's glob matches the name itself, whatever glob characters it
// holds, and only it.
func TestQuoteGlobMatchesTheNameLiterally(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"trash", "trash[1", "a{b", "x*y", "q?", `b\s`, "[abc]", "{a,b}", "*"} {
		g := storage.QuoteGlob(n)
		assert.NoError(t, storage.CheckGlobs(g+"/**"), "%q", g)
		assert.True(t, storage.Protects([]string{g + "/**"}, n+"/f.png"), "%q protects %q", g, n)
		assert.False(t, storage.Protects([]string{g + "/**"}, "trash1/f.png"), "%q protects only its own folder", g)
	}
}

// A protected glob that names a directory protects what is in it: an
// operator's "--exclude receipts" means the folder.
func TestProtectedGlobCoversWhatIsInTheDirectoryItMatches(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"receipts", "receipts/2024/a.pdf", true},
		{"receipts", "receipts", true},
		{"RECEIPTS", "receipts/a.pdf", true},
		{"users/*", "users/42/avatar.png", true},
		{"*.keep", "x.keep/a.png", true},
		{"receipts", "receipts-old/a.pdf", false},
		{"receipts", "old/receipts.pdf", false},
		{"users/*/tmp", "users/42/a.png", false},
		{"a/b", "a/bc/d", false},
		{"{receipts,bills}", "bills/2024/x.pdf", true},
		{"[rb]ills", "bills/x.pdf", true},
		{"**/tmp", "users/42/tmp/a.bin", true},
		{"**/tmp", "users/42/tmpx/a.bin", false},
		{"a/*/c", "a/b/c/d/e", true},
		{"a/*/c", "a/b/d/c", false},
	} {
		assert.Equal(t, c.want, storage.Protects([]string{c.glob}, c.path), "%q protects %q", c.glob, c.path)
	}
	assert.False(t, storage.Protects(nil, "a/b"))
}

// A careful write that makes its directory syncs every directory above
// it too, so that a crash cannot take the new directory, and the file
// with it, after the row naming the file committed; a write into an
// existing directory syncs that directory alone.
func TestCarefulWriteSyncsTheDirectoriesItMade(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	spy := storagetest.NewSpyFs(rfs)
	write := func(name string) []string {
		spy.Reset(storagetest.Fault{})
		pf, err := storage.Create(t.Context(), spy, name, storage.WriteOptions{})
		require.NoError(t, err)
		_, err = pf.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, pf.Commit(name))
		var synced []string
		for _, op := range spy.Ops() {
			if op.Kind == storagetest.OpSync && !strings.Contains(op.Path, storage.TempPrefix) {
				synced = append(synced, op.Path)
			}
		}
		return synced
	}
	assert.Equal(t, []string{"a/b/c", "a/b", "a", "."}, write("a/b/c/x.png"))
	assert.Equal(t, []string{"a/b/c"}, write("a/b/c/y.png"))
}
