package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// Quarantine on S3, then the original key of one file is uploaded again
// before the restore: the restore (dry and real) puts back the other
// file, keeps the new upload's bytes, leaves the quarantined copy, exits
// 1 and says so. A purge of that run, whose folder also holds an object
// no manifest lists and whose manifest lists a file already restored,
// deletes only the quarantined copy the manifest lists and says so. Its
// report used to count b, restored and no longer in the quarantine, as
// deleted (DeleteObjects answers "deleted" for a key that is not there;
// the dry run did not look).
func TestS16RT2QuarantineRestoreOverReuploadOnS3(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []string{"q/a.png", "q/b.png", "q/ref.png"} {
		storagetest.WriteFile(t, fsys, p, []byte("old bytes of "+p), old)
	}
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte("q/ref.png\n"), 0o644))
	env := srv.Env(t)
	root := []string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style"}
	args := func(more ...string) []string { return append(append([]string{}, root...), more...) }

	out, r := rt2JSON(t, env, args("--check-orphans", "--refs-file", refs, "--qr-age", "0", "--max-fraction", "0", "--quarantine", "trash")...)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotNil(t, out.Orphans.Applied)
	assert.Equal(t, 2, out.Orphans.Applied.Quarantined.Files)
	assert.Zero(t, out.Orphans.Applied.Deleted.Files)
	run := out.Orphans.Applied.QuarantineRun
	require.NotEmpty(t, run)
	qdir := "trash/.mediaclean-quarantine/" + run + "/"
	files := rt2Bytes(t, fsys)
	assert.Equal(t, "old bytes of q/a.png", files[qdir+"q/a.png"])
	assert.NotContains(t, files, "q/a.png")

	// A new upload takes q/a.png.
	_, err := srv.Client(nil).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media/q/a.png"), Body: strings.NewReader("NEW")})
	require.NoError(t, err)

	for _, dry := range []bool{true, false} {
		extra := []string{"--quarantine", "trash", "--restore", run}
		if dry {
			extra = append(extra, "--dry-run")
		}
		out, r = rt2JSON(t, env, args(extra...)...)
		assert.Equal(t, exitError, r.code, "dry %v: %s", dry, r.stderr)
		require.NotNil(t, out.Restored, "dry %v", dry)
		assert.Equal(t, 1, out.Restored.Restored.Files, "dry %v", dry)
		assert.Equal(t, 1, out.Restored.Failed.Files, "dry %v", dry)
		require.NotNil(t, out.Error)
		assert.Equal(t, exitError, out.Error.ExitCode)
		files = rt2Bytes(t, fsys)
		assert.Equal(t, "NEW", files["q/a.png"], "dry %v: the new upload is kept", dry)
		assert.Equal(t, "old bytes of q/a.png", files[qdir+"q/a.png"], "dry %v: the quarantined copy stays", dry)
		assert.Equal(t, "old bytes of q/ref.png", files["q/ref.png"])
	}
	assert.Equal(t, "old bytes of q/b.png", files["q/b.png"], "restored")
	assert.NotContains(t, files, qdir+"q/b.png")

	// Age the run (its manifest's creation time) and put an object no
	// manifest lists into its folder.
	q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
	m, err := q.Manifest(t.Context(), run)
	require.NoError(t, err)
	m.Created = m.Created.Add(-40 * 24 * time.Hour)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, afero.WriteFile(fsys, qdir+"manifest.json", raw, 0o644))
	require.NoError(t, afero.WriteFile(fsys, qdir+"q/unexpected.png", []byte("not listed"), 0o644))

	for _, dry := range []bool{true, false} {
		extra := []string{"--quarantine", "trash", "--purge-after", "30d", "--qr-age", "0"}
		if dry {
			extra = append(extra, "--dry-run")
		}
		out, r = rt2JSON(t, env, args(extra...)...)
		require.Equal(t, 0, r.code, "dry %v: %s", dry, r.stderr)
		require.NotNil(t, out.Purged)
		assert.Equal(t, []string{run}, out.Purged.Runs, "dry %v", dry)
		assert.Equal(t, 1, out.Purged.Deleted.Files, "dry %v: only a's quarantined copy", dry)
	}
	files = rt2Bytes(t, fsys)
	assert.Equal(t, map[string]string{
		"q/a.png": "NEW", "q/b.png": "old bytes of q/b.png", "q/ref.png": "old bytes of q/ref.png",
		qdir + "q/unexpected.png": "not listed",
	}, files)
}
