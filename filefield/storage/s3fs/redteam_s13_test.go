package s3fs_test

import (
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// Red team, session 13 (scale): orphan's merge mode and key-range shards
// over a parallel listing of many small parts (s3fs.SetPartKeys), on a
// tree of awkward names over several pages, against the single
// hash-mode plan of a sequential listing; then every shard applied in
// merge mode over the parallel listing (whose re-check of over 100 files
// is itself a parallel range listing) deletes exactly the single plan.
func TestS13ScaleParallelShardsMergeApply(t *testing.T) {
	srv := s3test.Shared(t)
	client := srv.Client(nil)
	bucket := srv.NewBucket(t)
	rng := rand.New(rand.NewPCG(13, 13))
	old := time.Now().Add(-72 * time.Hour)
	keys := randomTree(rng, "media/", 2600)
	// Keys just outside the prefix: never listed, never deleted.
	keys = append(keys, "medi", "media-x/a", "media.b", "media0/a")
	stored := write(t, srv, bucket, keys)
	young := map[string]bool{}
	for i, k := range stored {
		mt := old
		if i%17 == 0 {
			mt = time.Now().Add(-time.Minute)
			young[strings.TrimPrefix(k, "media/")] = true
		}
		require.NoError(t, os.Chtimes(filepath.Join(srv.Dir, bucket, filepath.FromSlash(k)), mt, mt))
	}
	var files []string
	for _, k := range stored {
		if p, ok := strings.CutPrefix(k, "media/"); ok {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	require.Greater(t, len(files), 2000)
	var refs []string
	kept := map[string]bool{}
	for _, p := range files {
		if rng.IntN(3) == 0 {
			continue
		}
		kept[p] = true
		switch rng.IntN(5) {
		case 0:
			refs = append(refs, "https://cdn.example.com/media/"+(&url.URL{Path: p}).EscapedPath()+"?v=1")
		case 1:
			refs = append(refs, "/"+p)
		case 2:
			refs = append(refs, (&url.URL{Path: p}).EscapedPath())
		default:
			refs = append(refs, p)
		}
	}
	refs = append(refs, "missing.png", "big/zzz")
	base := orphan.Options{MinAge: time.Hour, MaxFraction: -1, StripPrefixes: []string{"https://cdn.example.com/media/"}}

	seq := s3fs.New(client, bucket, s3fs.Options{Prefix: "media"})
	single, err := orphan.New(seq, orphan.Paths(refs...), base).Find(t.Context())
	require.NoError(t, err)
	want := planPathsS13(single)
	require.NotEmpty(t, want)
	for _, p := range want {
		require.False(t, kept[p] || young[p], "%q planned", p)
	}

	par := s3fs.New(client, bucket, s3fs.Options{Prefix: "media", ListWorkers: 4})
	s3fs.SetPartKeys(par, 150)
	var bounds []string
	for range 4 {
		switch rng.IntN(3) {
		case 0:
			bounds = append(bounds, files[rng.IntN(len(files))])
		case 1:
			d, _, _ := strings.Cut(files[rng.IntN(len(files))], "/")
			bounds = append(bounds, d+"/")
		default:
			bounds = append(bounds, awkward[rng.IntN(len(awkward))])
		}
	}
	slices.Sort(bounds)
	sm := &orphan.ShardMap{Boundaries: bounds}
	require.NoError(t, sm.Check())
	for _, merge := range []bool{false, true} {
		o := base
		o.Merge, o.TempDir = merge, t.TempDir()
		p, err := orphan.New(par, orphan.Paths(refs...), o).Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, want, planPathsS13(p), "parallel listing, merge %v", merge)
		var union []string
		for i := range sm.Shards() {
			so := o
			so.Range, err = sm.Range(i)
			require.NoError(t, err)
			sp, err := orphan.New(par, orphan.Paths(refs...), so).Find(t.Context())
			require.NoError(t, err)
			union = append(union, planPathsS13(sp)...)
		}
		slices.Sort(union)
		assert.Equal(t, want, union, "merge %v, boundaries %q", merge, bounds)
	}

	// Apply each shard in merge mode over the parallel listing.
	o := base
	o.Merge, o.TempDir, o.Force = true, t.TempDir(), true // many small directories: the coverage guard is not probed here
	deleted := 0
	for i := range sm.Shards() {
		so := o
		so.Range, err = sm.Range(i)
		require.NoError(t, err)
		f := orphan.New(par, orphan.Paths(refs...), so)
		sp, err := f.Find(t.Context())
		require.NoError(t, err)
		rep, err := f.Apply(t.Context(), sp)
		require.NoError(t, err)
		deleted += rep.Deleted.Files
	}
	assert.Equal(t, len(want), deleted)
	var left []string
	require.NoError(t, storage.List(t.Context(), seq, storage.ListOptions{}, func(e storage.Entry) error {
		left = append(left, e.Path)
		return nil
	}))
	for _, p := range files {
		assert.Equal(t, !slices.Contains(want, p), slices.Contains(left, p), "%q", p)
	}
	// Outside the prefix: untouched.
	for _, k := range []string{"medi", "media-x/a", "media.b", "media0/a"} {
		_, err := os.Stat(filepath.Join(srv.Dir, bucket, filepath.FromSlash(k)))
		assert.NoError(t, err, k)
	}
}

func planPathsS13(p *orphan.Plan) []string {
	out := []string{}
	for _, o := range p.Orphans {
		out = append(out, o.Path)
	}
	return out
}
