package orphan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// Red team, session 13, scale features: merge mode, key-range shards,
// parallel S3 listing and S3 Inventory as the listing.

// s13sListing is an orphan.Listing over a live afero.Fs, made at created:
// what an inventory report is, in a shuffled order (a report is in no
// order), honouring Dir, From and To as storage.Lister documents.
type s13sListing struct {
	fsys    afero.Fs
	created time.Time
	seed    uint64
	extra   []storage.Entry // rows the live storage does not have
}

func (l *s13sListing) CreatedAt() time.Time { return l.created }

func (l *s13sListing) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	var all []storage.Entry
	o := storage.ListOptions{Dir: opts.Dir, From: opts.From, To: opts.To}
	if err := storage.List(ctx, l.fsys, o, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			all = append(all, e)
		}
		return nil
	}); err != nil {
		return err
	}
	all = append(all, l.extra...)
	rng := rand.New(rand.NewPCG(l.seed, 3))
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, e := range all {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// s13sParts are name parts around '/' in byte order and awkward to
// normalise.
var s13sParts = []string{"a", "a-b", "a.b", "a b", "a+b", "a0", "ab", "a_", "A", "b", "é", "e\u0301", "日本", "z", "q?x", "h#1", "p%20q", "x y"}

// s13sTree writes a random tree below a few top directories; some are
// left with no reference at all (as a missing query leaves them), some
// files are young.
func s13sTree(t *testing.T, fsys afero.Fs, rng *rand.Rand) (files []string, young map[string]bool) {
	t.Helper()
	young = map[string]bool{}
	seen := map[string]bool{}
	tops := []string{"a", "a-b", "a.b", "b", "z", "é", "tmp"}
	for range 40 + rng.IntN(40) {
		parts := []string{tops[rng.IntN(len(tops))]}
		for range rng.IntN(3) {
			parts = append(parts, s13sParts[rng.IntN(len(s13sParts))])
		}
		p := strings.Join(parts, "/") + ".png"
		if rng.IntN(6) == 0 {
			p = s13sParts[rng.IntN(len(s13sParts))] + ".png" // at the root
		}
		clash := false
		for q := range seen {
			if q == p || strings.HasPrefix(q, strings.TrimSuffix(p, ".png")+"/") || strings.HasPrefix(p, strings.TrimSuffix(q, ".png")+"/") {
				clash = true
			}
		}
		if clash {
			continue
		}
		seen[p] = true
		age := 48 * time.Hour
		if rng.IntN(7) == 0 {
			age = time.Minute
			young[p] = true
		}
		storagetest.WriteFile(t, fsys, p, []byte(p), time.Now().Add(-age))
		files = append(files, p)
	}
	slices.Sort(files)
	return files, young
}

// s13sRef writes a reference to p in a form that must keep it.
func s13sRef(rng *rand.Rand, p string) string {
	switch rng.IntN(9) {
	case 0:
		return "/" + p
	case 1:
		return "./" + p
	case 2:
		return (&url.URL{Path: p}).EscapedPath()
	case 3:
		return "https://cdn.example.com/media/" + (&url.URL{Path: p}).EscapedPath() + "?v=2"
	case 4:
		return "/media//" + p
	case 5:
		return norm.NFD.String(p)
	case 6:
		return "x/../" + p
	case 7:
		return p + "#frag"
	}
	return p
}

// s13sRefs references most files of the top directories it does not
// skip, and none of those it skips: a missing query.
func s13sRefs(rng *rand.Rand, files []string) (refs []string, kept map[string]bool) {
	kept = map[string]bool{}
	skip := map[string]bool{}
	for _, d := range []string{"a", "a-b", "a.b", "b", "z", "é", "tmp"} {
		if rng.IntN(5) == 0 {
			skip[d] = true
		}
	}
	for _, p := range files {
		top, _, _ := strings.Cut(p, "/")
		if skip[top] || rng.IntN(3) == 0 {
			continue
		}
		refs = append(refs, s13sRef(rng, p))
		kept[p] = true
	}
	refs = append(refs, "a/missing.png", "zz.png", "resize?src=tmp/none.png")
	return refs, kept
}

func s13sBounds(rng *rand.Rand, files []string) []string {
	var b []string
	for range 1 + rng.IntN(4) {
		switch rng.IntN(5) {
		case 0:
			b = append(b, files[rng.IntN(len(files))]) // a key
		case 1:
			b = append(b, files[rng.IntN(len(files))]+"\x00")
		case 2:
			d, _, _ := strings.Cut(files[rng.IntN(len(files))], "/")
			b = append(b, d+"/") // a directory's first key
		case 3:
			d, _, _ := strings.Cut(files[rng.IntN(len(files))], "/")
			b = append(b, d) // just before its directory and its siblings
		default:
			b = append(b, s13sParts[rng.IntN(len(s13sParts))])
		}
	}
	slices.Sort(b)
	return b
}

// Every combination of the scale features plans alike: hash or merge
// mode, live storage or an earlier listing (in no order), one run or the
// union of shards, with Dirs, Protected, Shapes, Unreferenced, two
// levels of coverage and references in URL forms that straddle the
// boundaries. No plan holds a referenced or young file; the union of the
// shards is the single hash-mode plan; and where the single run's
// coverage guard refuses, every shard refuses.
func TestS13ScaleCombinationsAgree(t *testing.T) {
	for seed := range uint64(16) {
		for _, b := range storagetest.LocalBackends() {
			if b.Name == "OsFs" {
				continue
			}
			t.Run(fmt.Sprintf("%s/%d", b.Name, seed), func(t *testing.T) {
				fsys, _ := b.New(t)
				rng := rand.New(rand.NewPCG(seed, 1313))
				files, young := s13sTree(t, fsys, rng)
				refs, kept := s13sRefs(rng, files)
				rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
				bases := []orphan.Options{
					{MinAge: time.Hour, StripPrefixes: []string{"https://cdn.example.com/media/", "/media/"}},
					{MinAge: time.Hour, StripPrefixes: []string{"https://cdn.example.com/media/", "/media/"}, CoverageDepth: 2, Unreferenced: []string{"tmp/**"}},
					{MinAge: time.Hour, StripPrefixes: []string{"/media/"}, Dirs: []string{"a", "a.b", "é"}, Protected: []string{"**/b.png"}},
					{MinAge: time.Hour, StripPrefixes: []string{"/media/"}, Shapes: []string{"a*/**", "*.png"}, CoverageDepth: 2},
				}
				var dirs []string // top directories that exist
				for _, d := range []string{"a", "a.b", "é"} {
					if slices.ContainsFunc(files, func(p string) bool { return strings.HasPrefix(p, d+"/") }) {
						dirs = append(dirs, d)
					}
				}
				if len(dirs) == 0 {
					dirs = []string{"b"}
					storagetest.WriteFile(t, fsys, "b/keep.png", []byte("x"), time.Now().Add(-48*time.Hour))
					files = append(files, "b/keep.png")
					refs = append(refs, "b/keep.png")
					kept["b/keep.png"] = true
				}
				bases[2].Dirs = dirs
				for bi, base := range bases {
					base.MaxFraction = -1
					ref, err := orphan.New(fsys, orphan.Paths(refs...), base).Find(t.Context())
					require.NoError(t, err)
					for _, o := range ref.Orphans {
						require.False(t, kept[o.Path], "referenced %q planned", o.Path)
						require.False(t, young[o.Path], "young %q planned", o.Path)
					}
					bounds := s13sBounds(rng, files)
					sm := &orphan.ShardMap{Boundaries: bounds}
					if sm.Check() != nil {
						continue
					}
					for _, merge := range []bool{false, true} {
						for _, listed := range []bool{false, true} {
							o := base
							o.Merge, o.TempDir = merge, t.TempDir()
							if listed {
								o.Listing = &s13sListing{fsys: fsys, created: time.Now().Add(-time.Minute), seed: seed}
							}
							what := fmt.Sprintf("base %d merge %v listing %v bounds %q", bi, merge, listed, bounds)
							single, err := orphan.New(fsys, orphan.Paths(refs...), o).Find(t.Context())
							require.NoError(t, err, what)
							require.Equal(t, planPaths(ref), planPaths(single), what)
							require.Equal(t, ref.Uncovered, single.Uncovered, what)
							var union []string
							for i := range sm.Shards() {
								so := o
								so.Range, err = sm.Range(i)
								require.NoError(t, err)
								f := orphan.New(fsys, orphan.Paths(refs...), so)
								p, err := f.Find(t.Context())
								require.NoError(t, err, what)
								for _, x := range planPaths(p) {
									require.True(t, so.Range.Contains(x), "%s: shard %d planned %q outside", what, i, x)
								}
								union = append(union, planPaths(p)...)
								if len(ref.Uncovered) > 0 {
									assert.NotEmpty(t, p.Uncovered, "%s: shard %d %+v passes the coverage guard the single run fails on %q", what, i, so.Range, ref.Uncovered)
									assert.ErrorIs(t, f.Check(p), orphan.ErrUncovered, "%s: shard %d", what, i)
								} else if len(p.Uncovered) > 0 {
									t.Logf("over-refusal (safe): %s shard %d refuses %q, the single run nothing", what, i, p.Uncovered)
								}
							}
							slices.Sort(union)
							require.Equal(t, planPaths(ref), union, what)
						}
					}
				}
				// Every shard applied, in merge mode from an earlier listing,
				// each with a plan saved as JSON and read back: exactly the
				// single hash-mode plan goes, nothing a reference names.
				o := bases[0]
				o.MaxFraction, o.Force, o.Merge, o.TempDir = -1, true, true, t.TempDir()
				o.Listing = &s13sListing{fsys: fsys, created: time.Now().Add(-time.Minute), seed: seed}
				want, err := orphan.New(fsys, orphan.Paths(refs...), orphan.Options{MinAge: time.Hour, MaxFraction: -1, StripPrefixes: o.StripPrefixes}).Find(t.Context())
				require.NoError(t, err)
				sm := &orphan.ShardMap{Boundaries: s13sBounds(rng, files)}
				if sm.Check() != nil {
					return
				}
				deleted := 0
				for i := range sm.Shards() {
					so := o
					so.Range, _ = sm.Range(i)
					p, err := orphan.New(fsys, orphan.Paths(refs...), so).Find(t.Context())
					require.NoError(t, err)
					b, err := json.Marshal(p)
					require.NoError(t, err)
					var saved orphan.Plan
					require.NoError(t, json.Unmarshal(b, &saved))
					rep, err := orphan.New(fsys, orphan.Paths(refs...), so).Apply(t.Context(), &saved)
					require.NoError(t, err)
					deleted += rep.Deleted.Files
				}
				left := storagetest.Files(t, fsys)
				for _, p := range files {
					assert.Equal(t, !slices.Contains(planPaths(want), p), slices.Contains(left, p), "bounds %q: %q", sm.Boundaries, p)
				}
				assert.Equal(t, len(want.Orphans), deleted)
			})
		}
	}
}

// Found in session 13, left (keeps files, never deletes one; the README's
// shard section says so): a file kept only by a reference's reading cut
// at a '#' ("pics/a.png#x/y" keeps "pics/a.png") is not an orphan, so the
// single run's coverage guard never looks at its directory. A shard whose
// range does not hold it looks at the directories outside its range
// through uncoveredElsewhere, which takes every old file of a directory
// no reference's own reading points into as unreferenced, and refuses
// "pics". The shard holding it accepts, and the union of the plans is the
// single plan.
func TestS13ScaleShardCoverageCutReadingOverRefuses(t *testing.T) {
	fsys := afero.NewMemMapFs()
	old := time.Now().Add(-48 * time.Hour)
	for _, p := range []string{"pics/a.png", "other/x/1.png", "other/x/2.png"} {
		storagetest.WriteFile(t, fsys, p, []byte(p), old)
	}
	refs := orphan.Paths("pics/a.png#x/y", "other/x/1.png")
	base := orphan.Options{CoverageDepth: 2, MaxFraction: -1}
	for _, merge := range []bool{false, true} {
		o := base
		o.Merge, o.TempDir = merge, t.TempDir()
		single, err := orphan.New(fsys, refs, o).Find(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"other/x/2.png"}, planPaths(single))
		require.Empty(t, single.Uncovered, "the single run accepts")
		sm := &orphan.ShardMap{Boundaries: []string{"p"}}
		var union []string
		for i := range sm.Shards() {
			so := o
			so.Range, _ = sm.Range(i)
			p, err := orphan.New(fsys, refs, so).Find(t.Context())
			require.NoError(t, err)
			union = append(union, planPaths(p)...)
			want := []string(nil)
			if !so.Range.Contains("pics/a.png") {
				want = []string{"pics"} // refused by this shard: more than the single run
			}
			assert.Equal(t, want, p.Uncovered, "merge %v shard %d %+v", merge, i, so.Range)
		}
		assert.Equal(t, planPaths(single), union)
	}
}

// An inventory report (versioned schema, CSV) with version rows, delete
// markers, keys outside the prefix and a key no longer stored; after the
// report, one object is rewritten (same size, same second: only its ETag
// tells), one deleted and uploaded again, one gains a reference. In hash
// and merge mode, Apply deletes only the true orphan and a file the report
// shows as gone-by-then is kept.
func TestS13ScaleInventoryApplyKeepsWhatChanged(t *testing.T) {
	for _, merge := range []bool{false, true} {
		t.Run(fmt.Sprintf("merge=%v", merge), func(t *testing.T) {
			srv := s3test.Shared(t)
			fsys := srv.Fs(t, "media")
			names := []string{"pics/orphan.jpg", "pics/rewritten.jpg", "pics/reupload.jpg", "pics/laterref.jpg", "pics/ver.jpg", "pics/dm.jpg", "pics/ref.jpg", "pics/a b+c.jpg"}
			for _, p := range names {
				put(t, fsys, p, 10, 10*day)
			}
			client := srv.Client(nil)
			_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media-old/pics/x.jpg"), Body: strings.NewReader("0123456789")})
			require.NoError(t, err)
			objs := inventorytest.Objects("media/", liveEntries(t, fsys))
			const schema = "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag"
			extra := []inventorytest.Object{
				{Key: "media/pics/ver.jpg", Size: 10, ModTime: now.Add(-20 * day)},   // IsLatest false below
				{Key: "media/pics/ghost.jpg", Size: 10, ModTime: now.Add(-20 * day)}, // not stored
				{Key: "media-old/pics/x.jpg", Size: 10, ModTime: now.Add(-20 * day)},
				{Key: "media", Size: 10, ModTime: now.Add(-20 * day)},
			}
			objs = append(objs, extra...)
			row := func(i int, f []string) []string {
				key, _ := url.QueryUnescape(f[1])
				switch {
				case key == "media/pics/ver.jpg" && i < len(objs)-len(extra):
					f[3], f[4] = "true", "true" // the current version is a delete marker
				case key == "media/pics/ver.jpg":
					f[3] = "false"
				case key == "media/pics/dm.jpg":
					f[4] = "TRUE"
				}
				return f
			}
			m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{SourceBucket: fsys.Bucket, Created: now.Add(-2 * time.Hour), Schema: schema, Objects: objs, Row: row, DataFiles: 2})
			require.NoError(t, err)
			rep, err := inventory.Open(t.Context(), m, fsys.Fs, inventory.Options{NoDuplicateCheck: merge})
			require.NoError(t, err)
			refs := []string{"pics/ref.jpg"}
			opts := orphan.Options{Now: clock, MaxFraction: -1, Listing: rep, Merge: merge, TempDir: t.TempDir()}
			f := orphan.New(fsys, orphan.Paths(refs...), opts)
			plan, err := f.Find(t.Context())
			require.NoError(t, err)
			got := planPaths(plan)
			assert.NotContains(t, got, "pics/ver.jpg")
			assert.NotContains(t, got, "pics/dm.jpg")
			assert.NotContains(t, got, "pics/ref.jpg")
			assert.Contains(t, got, "pics/orphan.jpg")

			// After the report: rewritten in place, same size, back-dated
			// to the same time; deleted and uploaded again; referenced.
			old := now.Add(-10 * day)
			storagetest.WriteFile(t, fsys, "pics/rewritten.jpg", []byte("ABCDEFGHIJ"), old)
			require.NoError(t, fsys.Remove("pics/reupload.jpg"))
			storagetest.WriteFile(t, fsys, "pics/reupload.jpg", make([]byte, 10), time.Time{})
			refs = append(refs, "/pics/laterref.jpg")
			res, err := orphan.New(fsys, orphan.Paths(refs...), opts).Apply(t.Context(), plan)
			require.NoError(t, err)
			left := files(t, fsys)
			for _, p := range []string{"pics/rewritten.jpg", "pics/reupload.jpg", "pics/laterref.jpg", "pics/ver.jpg", "pics/dm.jpg", "pics/ref.jpg"} {
				assert.Contains(t, left, p, "deleted though it changed, gained a reference or is not current in the report")
			}
			assert.NotContains(t, left, "pics/orphan.jpg")
			_, err = client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media-old/pics/x.jpg")})
			assert.NoError(t, err, "a key outside the prefix was deleted")
			t.Logf("report: %+v", res.Kept)
		})
	}
}

// Merge mode's external sort failing or cancelled, in Find and in Apply:
// a temporary directory that does not exist, a context cancelled after
// the sort spilled runs (more references than one run holds), and
// providers that swallow the error fn returns. Nothing is deleted, no
// plan is made, and the temporary directory is left empty.
func TestS13ScaleMergeSortFailuresDeleteNothing(t *testing.T) {
	fsys := afero.NewMemMapFs()
	old := time.Now().Add(-48 * time.Hour)
	for i := range 20 {
		storagetest.WriteFile(t, fsys, fmt.Sprintf("pics/%02d.png", i), []byte("x"), old)
	}
	var refs []string
	for i := range 150_000 {
		refs = append(refs, fmt.Sprintf("pics/%06d-ref.png", i))
	}
	refs = append(refs, "pics/00.png", "pics/01.png")
	all := storagetest.Files(t, fsys)
	opts := orphan.Options{MinAge: time.Hour, MaxFraction: -1}
	plan, err := orphan.New(fsys, orphan.Paths(refs...), opts).Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, 18)

	swallow := func(refs []string) orphan.Provider { // ignores fn's errors
		return orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
			for _, r := range refs {
				_ = fn(r)
			}
			return nil
		})
	}
	type tc struct {
		name    string
		tempDir string
		prov    func(cancel context.CancelFunc) orphan.Provider
	}
	tmp := t.TempDir()
	cancelAfter := func(n int, swallowErr bool) func(context.CancelFunc) orphan.Provider {
		return func(cancel context.CancelFunc) orphan.Provider {
			return orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
				for i, r := range refs {
					if i == n {
						cancel()
					}
					if err := fn(r); err != nil && !swallowErr {
						return err
					}
				}
				return nil
			})
		}
	}
	cases := []tc{
		{"no temp dir", tmp + "/nope", func(context.CancelFunc) orphan.Provider { return orphan.Paths(refs...) }},
		{"no temp dir, provider swallows", tmp + "/nope", func(context.CancelFunc) orphan.Provider { return swallow(refs) }},
		{"temp dir is a file", "/dev/null", func(context.CancelFunc) orphan.Provider { return swallow(refs) }},
		{"cancelled after spilling", tmp, cancelAfter(140_000, false)},
		{"cancelled after spilling, provider swallows", tmp, cancelAfter(140_000, true)},
		{"cancelled at the last reference, provider swallows", tmp, cancelAfter(len(refs)-1, true)},
	}
	for _, c := range cases {
		for _, step := range []string{"find", "apply"} {
			ctx, cancel := context.WithCancel(t.Context())
			o := opts
			o.Merge, o.TempDir = true, c.tempDir
			f := orphan.New(fsys, c.prov(cancel), o)
			if step == "find" {
				p, err := f.Find(ctx)
				assert.Error(t, err, c.name)
				assert.Nil(t, p, c.name)
			} else {
				rep, err := f.Apply(ctx, plan)
				assert.Error(t, err, c.name)
				if rep != nil {
					assert.Zero(t, rep.Deleted.Files, c.name)
				}
			}
			cancel()
			assert.Equal(t, all, storagetest.Files(t, fsys), "%s, %s: deleted", c.name, step)
			left, _ := os.ReadDir(tmp)
			assert.Empty(t, left, "%s, %s: temporary files left", c.name, step)
		}
	}
}

// s13sMisorder is a backend whose listing claims byte order (it honours
// ListOptions.Sorted) and breaks it: the entry at position at is held
// back and given after the one at position at+by.
type s13sMisorder struct {
	afero.Fs
	at, by int
}

func (m *s13sMisorder) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	var es []storage.Entry
	opts.Sorted = true
	if err := storage.List(ctx, m.Fs, opts, func(e storage.Entry) error {
		if !e.Type.IsDir() {
			es = append(es, e)
		}
		return nil
	}); err != nil {
		return err
	}
	if m.at+m.by < len(es) {
		held := es[m.at]
		copy(es[m.at:], es[m.at+1:m.at+m.by+1])
		es[m.at+m.by] = held
	}
	for _, e := range es {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// A listing that claims byte order and breaks it fails merge mode's Find
// with storage.ErrUnsorted, whole run, shard or Dirs, and deletes nothing
// (a referenced file held back past other files would otherwise look
// unreferenced once the merge moved past its reference).
func TestS13ScaleMisorderedListingFailsClosed(t *testing.T) {
	mem := afero.NewMemMapFs()
	old := time.Now().Add(-48 * time.Hour)
	var refs []string
	for i, p := range []string{"a/1.png", "a/2.png", "a-b/3.png", "a.b/4.png", "a/x/5.png", "a0/6.png", "b/7.png", "b/8.png"} {
		storagetest.WriteFile(t, mem, p, []byte(p), old)
		if i%2 == 0 {
			refs = append(refs, p)
		}
	}
	all := storagetest.Files(t, mem)
	for at := range 6 {
		for by := 1; by < 3; by++ {
			fsys := &s13sMisorder{Fs: mem, at: at, by: by}
			for _, o := range []orphan.Options{
				{},
				{Range: orphan.KeyRange{Start: "a-b", End: "b/8.png"}},
				{Dirs: []string{"a", "a-b", "a.b", "a0"}},
			} {
				o.MinAge, o.MaxFraction, o.Force, o.Merge, o.TempDir = time.Hour, -1, true, true, t.TempDir()
				f := orphan.New(fsys, orphan.Paths(refs...), o)
				p, err := f.Find(t.Context())
				if err == nil {
					// The swap fell outside what this run lists.
					for _, x := range planPaths(p) {
						assert.NotContains(t, refs, x, "at %d by %d %+v", at, by, o)
					}
					continue
				}
				assert.ErrorIs(t, err, storage.ErrUnsorted, "at %d by %d", at, by)
				assert.Nil(t, p)
			}
		}
	}
	assert.Equal(t, all, storagetest.Files(t, mem))
}
