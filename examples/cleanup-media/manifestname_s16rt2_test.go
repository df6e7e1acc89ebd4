package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// An orphan named manifest.json at the top of an S3 root would be
// quarantined to RUN/manifest.json, where the run's own manifest is
// (versitygw ignores If-None-Match on CopyObject): it is kept, as taken,
// and the manifest stays the run's, so the restore puts back the rest.
func TestS16RT2QuarantineTopLevelManifestJSON(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	old := time.Now().Add(-72 * time.Hour)
	storagetest.WriteFile(t, fsys, "manifest.json", []byte(`{"user": "file"}`), old)
	storagetest.WriteFile(t, fsys, "a/ref.png", []byte("ref"), old)
	storagetest.WriteFile(t, fsys, "a/orphan.png", []byte("orphan"), old)
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte("a/ref.png\n"), 0o644))
	env := srv.Env(t)
	root := []string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style"}
	out, r := rt2JSON(t, env, append(root, "--check-orphans", "--refs-file", refs, "--qr-age", "0", "--max-fraction", "0", "--quarantine", "trash", "--force")...)
	require.Equal(t, 0, r.code, r.stderr)
	require.NotNil(t, out.Orphans.Applied)
	run := out.Orphans.Applied.QuarantineRun
	assert.Equal(t, 1, out.Orphans.Applied.Quarantined.Files)
	assert.Equal(t, 1, out.Orphans.Applied.Kept[storage.KeptTaken].Files, "manifest.json: its place in the run is the manifest's")
	files := rt2Bytes(t, fsys)
	assert.Equal(t, `{"user": "file"}`, files["manifest.json"], "never moved over the run's manifest")
	q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
	m, err := q.Manifest(t.Context(), run)
	require.NoError(t, err, "the run's manifest is intact")
	require.Len(t, m.Files, 1)
	assert.Equal(t, "a/orphan.png", m.Files[0].Path)

	out, r = rt2JSON(t, env, append(root, "--quarantine", "trash", "--restore", run)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, 1, out.Restored.Restored.Files)
	files = rt2Bytes(t, fsys)
	assert.Equal(t, `{"user": "file"}`, files["manifest.json"])
	assert.Equal(t, "orphan", files["a/orphan.png"])
	assert.Equal(t, "ref", files["a/ref.png"])
}
