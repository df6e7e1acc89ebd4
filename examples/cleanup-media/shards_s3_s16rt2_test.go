package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// rt2JSON runs the command with --json and decodes its document.
func rt2JSON(t *testing.T, env []string, args ...string) (Output, result) {
	t.Helper()
	r := runEnv(t, env, append(args, "--json")...)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "stdout %q stderr %q", r.stdout, r.stderr)
	return out, r
}

func rt2Paths(p *OrphanOutput) []string {
	if p == nil || p.Plan == nil {
		return nil
	}
	var out []string
	for _, o := range p.Plan.Orphans {
		out = append(out, o.Path)
	}
	return out
}

// rt2Bytes reads every file of fsys with its bytes.
func rt2Bytes(t *testing.T, fsys *s3test.BackdatingFs) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range storagetest.Files(t, fsys) {
		b, err := afero.ReadFile(fsys, p)
		require.NoError(t, err)
		out[p] = string(b)
	}
	return out
}

// Shards on S3 with a map whose boundaries are awkward: an empty first
// shard, a repeated boundary (an empty shard between), boundaries equal
// to keys, "a" vs "a-b" vs "a/x", "a/" itself, non-ASCII. A real run of
// every shard, one of which fails midway on one delete (exit 1, the
// report counting what went) and is run again alone: the union of the
// shards' plans equals the single run's plan (merge mode's:
// TestS16RT2MergeShardsReadingsAcrossBoundaries).
// After each step every referenced key is there with its bytes, and the
// reports say exactly what went.
func TestS16RT2ShardsOnS3OddBoundaries(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	now := time.Now()
	referenced := []string{"k/a/x", "k/é", "pics/1.png", "k/a+"}
	orphans := []string{"k/a-b", "k/a.b", "k/a b", "k/+", "k/日本/x", "k/z", "pics/2.png", "k/a/y", "k/éa"}
	young := []string{"k/a-c", "pics/3.png"}
	for _, p := range append(slices.Clone(referenced), orphans...) {
		storagetest.WriteFile(t, fsys, p, []byte("bytes of "+p), now.Add(-72*time.Hour))
	}
	for _, p := range young {
		storagetest.WriteFile(t, fsys, p, []byte("young "+p), now.Add(-time.Hour))
	}
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte(strings.Join(referenced, "\n")+"\n"), 0o644))
	smap := filepath.Join(t.TempDir(), "shards.json")
	bounds := []string{"0", "k/a", "k/a", "k/a-b", "k/a/", "k/a/x", "k/é", "k/日本/x", "zz"}
	b, err := json.Marshal(map[string]any{"boundaries": bounds})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(smap, b, 0o644))
	n := len(bounds) + 1
	env := srv.Env(t)
	base := []string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refs,
		"--qr-age", "0", "--max-fraction", "0"}
	before := rt2Bytes(t, fsys)

	single, r := rt2JSON(t, env, append(base, "--dry-run")...)
	require.Equal(t, 0, r.code, r.stderr)
	want := slices.Sorted(slices.Values(orphans))
	require.Equal(t, want, rt2Paths(single.Orphans))

	assert.Equal(t, before, rt2Bytes(t, fsys), "dry runs")

	// The real run, shard by shard; the shard holding k/z fails on k/z's
	// delete request.
	sm := orphan.ShardMap{Boundaries: bounds}
	failing, inFailing := -1, 0
	for i := range n {
		rng, err := sm.Range(i)
		require.NoError(t, err)
		if rng.Contains("k/z") {
			failing = i
			for _, p := range orphans {
				if rng.Contains(p) {
					inFailing++
				}
			}
		}
	}
	require.Equal(t, 6, failing)
	proxy := srv.Proxy(t)
	proxy.Fail(func(r *http.Request) bool {
		return r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/media/k/z")
	}, http.StatusInternalServerError, "InternalError")
	penv := append(slices.Clone(env), "AWS_ENDPOINT_URL_S3="+proxy.Endpoint)
	deleted := 0
	var union []string
	for i := range n {
		out, r := rt2JSON(t, penv, append(slices.Clone(base), "--shard", itoa(i)+"/"+itoa(n), "--shard-map", smap)...)
		files := rt2Bytes(t, fsys)
		for _, p := range append(slices.Clone(referenced), young...) {
			assert.Equal(t, before[p], files[p], "shard %d: %s", i, p)
		}
		if i == failing {
			assert.Equal(t, exitError, r.code, "shard %d: %s", i, r.stderr)
			require.NotNil(t, out.Orphans.Applied)
			assert.Equal(t, inFailing-1, out.Orphans.Applied.Deleted.Files, r.stdout)
			assert.Equal(t, 1, out.Orphans.Applied.Failed.Files, r.stdout)
			assert.Contains(t, files, "k/z")
			assert.NotContains(t, files, "k/a/y")
			require.NotNil(t, out.Error)
			assert.Equal(t, exitError, out.Error.ExitCode)
		} else {
			require.Equal(t, 0, r.code, "shard %d: %s", i, r.stderr)
		}
		if out.Orphans != nil && out.Orphans.Applied != nil {
			deleted += out.Orphans.Applied.Deleted.Files
		}
		union = append(union, rt2Paths(out.Orphans)...)
	}
	slices.Sort(union)
	assert.Equal(t, want, union, "hash mode: the union of the shards' plans")
	// The failed shard again, alone, straight to the server.
	out, r := rt2JSON(t, env, append(slices.Clone(base), "--shard", itoa(failing)+"/"+itoa(n), "--shard-map", smap)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, []string{"k/z"}, rt2Paths(out.Orphans))
	assert.Equal(t, 1, out.Orphans.Applied.Deleted.Files)
	deleted += out.Orphans.Applied.Deleted.Files
	assert.Equal(t, len(orphans), deleted, "the reports' deletions add up to the orphans")
	files := rt2Bytes(t, fsys)
	wantLeft := map[string]string{}
	for _, p := range append(slices.Clone(referenced), young...) {
		wantLeft[p] = before[p]
	}
	assert.Equal(t, wantLeft, files)
}

func itoa(i int) string { return strconv.Itoa(i) }
