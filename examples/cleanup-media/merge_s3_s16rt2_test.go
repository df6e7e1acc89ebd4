package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Merge mode and shards on S3 with a --refs-file that is in no order,
// repeats lines, ends lines in CRLF and names files only through other
// readings (a %-escape, a query, a fragment, a CDN URL, mojibake), with
// shard boundaries between a reference as written and the file it
// reads as. Every mode and every split plans the same orphans, none of
// them a referenced file; the real sharded merge run deletes exactly
// them.
func TestS16RT2MergeShardsReadingsAcrossBoundaries(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	old := time.Now().Add(-72 * time.Hour)
	refd := map[string]string{ // file: the only reference that names it
		"m/a b.png":  "m/a%20b.png",
		"m/x.png":    "https://cdn.example.com/media/m/x.png?v=2",
		"m/y.png":    "m/y.png#frag",
		"m/é.png":    "m/Ã©.png",
		"m/c+d.png":  "m/c%2Bd.png",
		"m/a-b.png":  "m/a-b.png",
		"n/日本.png":   "/media/n/%E6%97%A5%E6%9C%AC.png",
		"n/zz/q.png": "n/zz/q.png",
	}
	orphans := []string{"m/a.png", "m/b.png", "m/z.png", "m/é2.png", "n/a.png", "n/zz/r.png"}
	for p := range refd {
		storagetest.WriteFile(t, fsys, p, []byte("ref "+p), old)
	}
	for _, p := range orphans {
		storagetest.WriteFile(t, fsys, p, []byte("orphan "+p), old)
	}
	var lines []string
	for _, r := range refd {
		lines = append(lines, r, r)
	}
	slices.Sort(lines)
	slices.Reverse(lines)
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o644))
	smap := filepath.Join(t.TempDir(), "map.json")
	require.NoError(t, os.WriteFile(smap, []byte(`{"boundaries": ["m/a%", "m/a-b.png", "m/c+", "m/x.png?", "m/y.png#", "m/Ã", "m/é", "n/%", "n/zz/q.png", "n/日"]}`), 0o644))
	n := 11
	env := srv.Env(t)
	base := []string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refs,
		"--qr-age", "0", "--max-fraction", "0", "--strip-prefix", "https://cdn.example.com/media/", "--strip-prefix", "/media/"}
	before := rt2Bytes(t, fsys)

	single, r := rt2JSON(t, env, append(slices.Clone(base), "--dry-run")...)
	require.Equal(t, 0, r.code, r.stderr)
	want := rt2Paths(single.Orphans)
	for p := range refd {
		assert.NotContains(t, want, p, "a referenced file planned")
	}
	t.Logf("single plan: %q", want)
	out, r := rt2JSON(t, env, append(slices.Clone(base), "--merge", "--list-workers", "3", "--dry-run")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, want, rt2Paths(out.Orphans), "--merge single")
	assert.Equal(t, before, rt2Bytes(t, fsys))

	deleted := 0
	var union []string
	for i := range n {
		out, r := rt2JSON(t, env, append(slices.Clone(base), "--merge", "--shard", strconv.Itoa(i)+"/"+strconv.Itoa(n), "--shard-map", smap)...)
		require.Equal(t, 0, r.code, "shard %d: %s", i, r.stderr)
		if out.Orphans.Applied != nil {
			deleted += out.Orphans.Applied.Deleted.Files
		}
		union = append(union, rt2Paths(out.Orphans)...)
	}
	slices.Sort(union)
	assert.Equal(t, want, union, "--merge: the union of the shards' plans")
	left := rt2Bytes(t, fsys)
	for p := range refd {
		assert.Equal(t, before[p], left[p], p)
	}
	assert.Equal(t, len(want), deleted)
	assert.Len(t, left, len(before)-len(want))
}
