package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// --inventory on S3, end to end: keys that need URL encoding ("+",
// "%2B" literally, "%", spaces), hostile reports (a data file changed
// without its checksum, a manifest edited without its checksum, an
// unencoded "+", a report from the future), all refused with nothing
// deleted; then a real run after the bucket changed under the report (an
// object rewritten at the same size and time, one re-uploaded with the
// same bytes, one deleted, one referenced since), in hash mode, merge
// mode and shards: every referenced object keeps its bytes, and the
// report says exactly what went.
func TestS16RT2InventoryEncodedKeysAndChangesSinceReport(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	env := srv.Env(t)
	for _, mode := range [][]string{nil, {"--merge"}, {"shards"}} {
		t.Run(strings.Join(mode, ""), func(t *testing.T) {
			fsys := srv.Fs(t, "media/")
			now := time.Now()
			old := now.Add(-72 * time.Hour).Truncate(time.Second)
			referenced := []string{"inv/c++ x.jpg", "inv/a+b.jpg", "inv/%2B.jpg", "inv/ü+ü.jpg", "inv/ref.jpg"}
			nowRef := "inv/nowref.jpg"
			// A reference "a+b.jpg" may mean "a b.jpg" (a form-encoded
			// space): those are kept, as a live listing keeps them.
			keptByForm := []string{"inv/a b.jpg", "inv/ü ü.jpg"}
			deletable := []string{"inv/d d.jpg", "inv/e+e.jpg", "inv/100%.jpg", "inv/old.jpg", "inv/ö ö+ö.jpg"}
			sameSize, reup, gone := "inv/same-size.jpg", "inv/reup.jpg", "inv/gone.jpg"
			all := slices.Concat(referenced, keptByForm, deletable, []string{nowRef, sameSize, reup, gone})
			for _, p := range all {
				storagetest.WriteFile(t, fsys, p, []byte("bytes of "+p), old)
			}
			var entries []storage.Entry
			require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error { entries = append(entries, e); return nil }))
			require.Len(t, entries, len(all))
			report := inventorytest.Report{SourceBucket: fsys.Bucket, Created: now.Add(-2 * time.Hour), Objects: inventorytest.Objects("media/", entries), DataFiles: 2}

			refs := filepath.Join(t.TempDir(), "refs")
			require.NoError(t, os.WriteFile(refs, []byte(strings.Join(referenced, "\n")+"\n"), 0o644))
			args := func(manifest string, more ...string) []string {
				return append([]string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refs,
					"--qr-age", "0", "--max-fraction", "0", "--inventory", manifest}, more...)
			}
			if len(mode) > 0 && mode[0] == "--merge" {
				inner := args
				args = func(m string, more ...string) []string { return inner(m, append([]string{"--merge"}, more...)...) }
			}
			before := rt2Bytes(t, fsys)

			// Hostile reports: refused, nothing deleted.
			write := func(files inventorytest.Files) string {
				dir := t.TempDir()
				for p, b := range files {
					full := filepath.Join(dir, filepath.FromSlash(p))
					require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
					require.NoError(t, os.WriteFile(full, b, 0o644))
				}
				return filepath.Join(dir, filepath.FromSlash(files.ManifestPath()))
			}
			build := func(r inventorytest.Report) inventorytest.Files {
				files, err := inventorytest.Build("", r)
				require.NoError(t, err)
				return files
			}
			files := build(report)
			files[files.DataFile()] = append(slices.Clone(files[files.DataFile()][:len(files[files.DataFile()])-4]), 0, 0, 0, 0)
			hostile := map[string]string{"data changed": write(files)}
			files = build(report)
			files[files.ManifestPath()] = bytes.Replace(files[files.ManifestPath()], []byte(`"CSV"`), []byte(`"csv"`), 1)
			hostile["manifest edited"] = write(files)
			raw := report
			raw.Row = func(i int, f []string) []string {
				if strings.Contains(f[1], "a%2Bb") {
					f[1] = strings.ReplaceAll(f[1], "%2B", "+") // "a+b": read as "a b", listed twice
				}
				return f
			}
			hostile["unencoded plus"] = write(build(raw))
			future := report
			future.Created = now.Add(time.Hour)
			hostile["future"] = write(build(future))
			if len(mode) > 0 {
				hostile = nil // once is enough
			}
			for name, m := range hostile {
				out, r := rt2JSON(t, env, args(m)...)
				assert.Contains(t, []int{exitError, exitRefused}, r.code, "%s: %s", name, r.stderr)
				require.NotNil(t, out.Error, name)
				assert.Equal(t, r.code, out.Error.ExitCode, name)
				assert.Nil(t, out.Orphans, "%s: no plan from a refused report", name)
				assert.Equal(t, before, rt2Bytes(t, fsys), name)
			}

			m := write(build(report))
			// A dry run plans every unreferenced object the report lists.
			wantPlan := slices.Sorted(slices.Values(slices.Concat(deletable, []string{nowRef, sameSize, reup, gone})))
			out, r := rt2JSON(t, env, args(m, "--dry-run")...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, wantPlan, rt2Paths(out.Orphans))

			// The bucket changes under the report.
			c := srv.Client(nil)
			put := func(p, body string) {
				_, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media/" + p), Body: strings.NewReader(body)})
				require.NoError(t, err)
			}
			same := "BYTES of " + sameSize // same length, other bytes
			put(sameSize, same)
			require.NoError(t, fsys.Chtimes(sameSize, old, old))
			put(reup, "bytes of "+reup) // the same bytes again, now
			_, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media/" + gone)})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(refs, []byte(strings.Join(append(slices.Clone(referenced), nowRef), "\n")+"\n"), 0o644))
			before = rt2Bytes(t, fsys)

			deleted := 0
			kept := storage.KeptTally{}
			runs := [][]string{nil}
			if len(mode) > 0 && mode[0] == "shards" {
				smap := filepath.Join(t.TempDir(), "map.json")
				require.NoError(t, os.WriteFile(smap, []byte(`{"boundaries": ["inv/100%.jpg", "inv/a b.jpg", "inv/a+b.jpg", "inv/old.jpg", "inv/ü ü.jpg"]}`), 0o644))
				runs = nil
				for i := range 6 {
					runs = append(runs, []string{"--shard", strconv.Itoa(i) + "/6", "--shard-map", smap})
				}
			}
			for _, extra := range runs {
				out, r = rt2JSON(t, env, args(m, extra...)...)
				require.Equal(t, 0, r.code, "%v: %s", extra, r.stderr)
				require.NotNil(t, out.Orphans.Applied, extra)
				deleted += out.Orphans.Applied.Deleted.Files
				for k, v := range out.Orphans.Applied.Kept {
					cur := kept[k]
					cur.Files += v.Files
					kept[k] = cur
				}
			}
			left := rt2Bytes(t, fsys)
			for _, p := range slices.Concat(referenced, keptByForm, []string{nowRef, reup}) {
				assert.Equal(t, before[p], left[p], p)
			}
			assert.Equal(t, same, left[sameSize], "rewritten at the same size and time")
			for _, p := range deletable {
				assert.NotContains(t, left, p)
			}
			assert.Equal(t, len(deletable), deleted, "the reports' deletions")
			assert.Equal(t, len(before)-len(deletable), len(left))
			t.Logf("kept: %+v", kept)
			assert.Equal(t, 3, kept[orphan.KeptChanged].Files+kept[storage.KeptGone].Files, "same-size, re-uploaded and deleted objects kept")
			assert.Zero(t, kept[orphan.KeptReferenced].Files, "nowRef is referenced at Find: never planned")
		})
	}
}
