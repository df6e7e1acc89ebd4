//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// oldTree makes a media folder holding paths, three days old.
func oldTree(t *testing.T, paths ...string) string {
	root := filepath.Join(t.TempDir(), "media")
	require.NoError(t, os.MkdirAll(root, 0o755))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	for _, p := range paths {
		storagetest.WriteFile(t, fsys, p, []byte(p), time.Now().Add(-72*time.Hour))
	}
	return root
}

// A file whose name holds '?' or '#', referenced as a URL with a
// cache-busting query, is kept by a real run in both modes; the orphan
// beside it goes. (The query was once cut at the first '?'.)
func TestQueryCharactersInNamesAreKept(t *testing.T) {
	for _, merge := range []bool{false, true} {
		root := oldTree(t, "pics/what?.png", "pics/a#1.png", "pics/b.png", "pics/orphan.png")
		refs := filepath.Join(t.TempDir(), "refs.txt")
		require.NoError(t, os.WriteFile(refs, []byte("/media/pics/what?.png?v=3\n/media/pics/a#1.png#top\n/media/pics/b.png\n"), 0o644))
		args := []string{"--root", root, "--check-orphans", "--refs-file", refs, "--strip-prefix", "/media/", "--qr-age", "0", "--yes"}
		if merge {
			args = append(args, "--merge", "--temp-dir", t.TempDir())
		}
		res := runCmd(t, args...)
		require.Equal(t, 0, res.code, "merge %v: %s%s", merge, res.stdout, res.stderr)
		for _, p := range []string{"pics/what?.png", "pics/a#1.png", "pics/b.png"} {
			_, err := os.Stat(filepath.Join(root, p))
			assert.NoError(t, err, "merge %v: referenced %s deleted", merge, p)
		}
		_, err := os.Stat(filepath.Join(root, "pics/orphan.png"))
		assert.ErrorIs(t, err, os.ErrNotExist, "merge %v", merge)
	}
}

// --make-shard-map over references with no valid path refuses to write a
// map: its boundaries would be empty, which a range reads as "no upper
// bound", and every shard would act on the whole key space.
func TestShardMapFromNoReferencesIsRefused(t *testing.T) {
	root := oldTree(t, "a/1.png", "m/2.png", "z/3.png")
	dir := t.TempDir()
	refs := filepath.Join(dir, "refs.txt")
	require.NoError(t, os.WriteFile(refs, []byte("https://elsewhere/x.png\n"), 0o644))
	smap := filepath.Join(dir, "shards.json")
	res := runCmd(t, "--root", root, "--refs-file", refs, "--make-shard-map", "--shards", "3", "--shard-map", smap)
	assert.Equal(t, 1, res.code, "%s%s", res.stdout, res.stderr)
	assert.Contains(t, res.stderr, "cannot split the key space into 3 shards")
	_, err := os.Stat(smap)
	assert.ErrorIs(t, err, os.ErrNotExist, "no map written")
}
