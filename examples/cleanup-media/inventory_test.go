package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// --inventory on the S3 server: the orphan check plans from the bucket's
// inventory report (read from the bucket by s3:// URL, or from disk)
// instead of listing it, deletes the orphan the report shows, and keeps
// an object rewritten since the report (re-checked live) and one the
// report does not list. A report older than --min-age is refused (3), one
// of another bucket is an error (1), and --inventory without an s3://
// root is a usage error (2); none deletes anything.
func TestInventoryFlag(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	now := time.Now()
	for _, p := range []string{"profile_pics/ref.jpg", "profile_pics/orphan one.jpg", "profile_pics/c++ rewritten.jpg"} {
		storagetest.WriteFile(t, fsys, p, []byte(p), now.Add(-72*time.Hour))
	}
	storagetest.WriteFile(t, fsys, "profile_pics/young.jpg", []byte("y"), now.Add(-time.Hour))
	var entries []storage.Entry
	require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error { entries = append(entries, e); return nil }))
	report := func(created time.Time, bucket string) inventorytest.Report {
		return inventorytest.Report{SourceBucket: bucket, Created: created, Objects: inventorytest.Objects("media/", entries)}
	}
	dest := srv.NewBucket(t)
	key, err := inventorytest.Put(t.Context(), srv.Client(nil), dest, "inventory/", report(now.Add(-2*time.Hour), fsys.Bucket))
	require.NoError(t, err)
	// After the report: one object rewritten (still old), one new and old.
	_, err = srv.Client(nil).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media/profile_pics/c++ rewritten.jpg"), Body: bytes.NewReader([]byte("rewritten, longer"))})
	require.NoError(t, err)
	require.NoError(t, fsys.Chtimes("profile_pics/c++ rewritten.jpg", now.Add(-72*time.Hour), now.Add(-72*time.Hour)))
	storagetest.WriteFile(t, fsys, "profile_pics/not in report.jpg", []byte("n"), now.Add(-72*time.Hour))

	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte("profile_pics/ref.jpg\n"), 0o644))
	env := srv.Env(t)
	args := func(manifest string, more ...string) []string {
		return append([]string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refs,
			"--qr-age", "0", "--max-fraction", "0", "--inventory", manifest}, more...)
	}
	all := []string{"profile_pics/c++ rewritten.jpg", "profile_pics/not in report.jpg", "profile_pics/orphan one.jpg", "profile_pics/ref.jpg", "profile_pics/young.jpg"}

	// Refusals first: nothing deleted.
	stale := filepath.Join(t.TempDir(), "stale")
	m, err := inventorytest.Write(afero.NewOsFs(), stale, report(now.Add(-25*time.Hour), fsys.Bucket))
	require.NoError(t, err)
	r := runEnv(t, env, args(m)...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Contains(t, r.stderr, "grace period")
	other := filepath.Join(t.TempDir(), "other")
	m, err = inventorytest.Write(afero.NewOsFs(), other, report(now.Add(-time.Hour), "another-bucket"))
	require.NoError(t, err)
	r = runEnv(t, env, args(m)...)
	assert.Equal(t, exitError, r.code, r.stderr)
	assert.Contains(t, r.stderr, `"another-bucket"`)
	r = runCmd(t, "--root", t.TempDir(), "--check-orphans", "--refs-file", refs, "--inventory", m)
	assert.Equal(t, exitUsage, r.code, r.stderr)
	assert.Equal(t, all, storagetest.Files(t, fsys))

	// A dry run from a copy on disk plans from the report.
	local := filepath.Join(t.TempDir(), "local")
	m, err = inventorytest.Write(afero.NewOsFs(), local, report(now.Add(-2*time.Hour), fsys.Bucket))
	require.NoError(t, err)
	r = runEnv(t, env, args(m, "--dry-run", "--verbose")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^would_delete .* profile_pics/orphan one\.jpg$`, r.stdout)
	assert.Regexp(t, `(?m)^would_delete .* profile_pics/c\+\+ rewritten\.jpg$`, r.stdout)
	assert.NotContains(t, r.stdout, "not in report")
	assert.Equal(t, all, storagetest.Files(t, fsys))
	// --merge sorts the report on disk and plans the same.
	tmp := t.TempDir()
	merged := runEnv(t, env, args(m, "--dry-run", "--verbose", "--merge", "--temp-dir", tmp)...)
	require.Equal(t, 0, merged.code, merged.stderr)
	wouldDelete := regexp.MustCompile(`(?m)^would_delete .*$`)
	assert.Equal(t, wouldDelete.FindAllString(r.stdout, -1), wouldDelete.FindAllString(merged.stdout, -1))
	assert.Len(t, wouldDelete.FindAllString(merged.stdout, -1), 2)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "sort files left behind")
	assert.Equal(t, all, storagetest.Files(t, fsys))
	// A Parquet report of the same bucket plans the same, in both modes,
	// its data files copied to --temp-dir while read and gone after.
	pqReport := report(now.Add(-2*time.Hour), fsys.Bucket)
	pqReport.Parquet = true
	pqm, err := inventorytest.Write(afero.NewOsFs(), filepath.Join(t.TempDir(), "parquet"), pqReport)
	require.NoError(t, err)
	for _, more := range [][]string{nil, {"--merge"}} {
		pq := runEnv(t, env, args(pqm, append([]string{"--dry-run", "--verbose", "--temp-dir", tmp}, more...)...)...)
		require.Equal(t, 0, pq.code, pq.stderr)
		assert.Equal(t, wouldDelete.FindAllString(r.stdout, -1), wouldDelete.FindAllString(pq.stdout, -1), "Parquet %v", more)
		left, err := os.ReadDir(tmp)
		require.NoError(t, err)
		assert.Empty(t, left, "files left behind")
	}
	assert.Equal(t, all, storagetest.Files(t, fsys))

	// The real run, from the report in the bucket.
	r = runEnv(t, env, args("s3://"+dest+"/"+key, "--json")...)
	require.Equal(t, 0, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.NotNil(t, out.Orphans.Plan.Listed)
	assert.Equal(t, 1, out.Orphans.Applied.Deleted.Files)
	assert.Equal(t, 1, out.Orphans.Applied.Kept[storage.KeptChanged].Files)
	assert.Equal(t, []string{"profile_pics/c++ rewritten.jpg", "profile_pics/not in report.jpg", "profile_pics/ref.jpg", "profile_pics/young.jpg"}, storagetest.Files(t, fsys))
}
