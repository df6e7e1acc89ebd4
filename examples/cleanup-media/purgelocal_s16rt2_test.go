package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// A purge's report counts only the files its run's manifest lists that
// are still in the quarantine, not those a restore put back: on a local
// disk the dry run said 2 where the real purge deleted 1 (on S3 both said
// 2: TestS16RT2QuarantineRestoreOverReuploadOnS3), before Purge statted
// each file first.
func TestS16RT2PurgeAfterPartialRestoreLocal(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	old := time.Now().Add(-72 * time.Hour)
	for _, p := range []string{"q/a.png", "q/b.png", "q/ref.png"} {
		storagetest.WriteFile(t, fsys, p, []byte("old bytes of "+p), old)
	}
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte("q/ref.png\n"), 0o644))
	out, r := rt2JSON(t, nil, "--root", root, "--check-orphans", "--refs-file", refs, "--qr-age", "0", "--max-fraction", "0", "--quarantine", "trash")
	require.Equal(t, 0, r.code, r.stderr)
	run := out.Orphans.Applied.QuarantineRun
	require.NoError(t, os.WriteFile(filepath.Join(root, "q/a.png"), []byte("NEW"), 0o644))
	out, r = rt2JSON(t, nil, "--root", root, "--quarantine", "trash", "--restore", run)
	assert.Equal(t, exitError, r.code)
	q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
	m, err := q.Manifest(t.Context(), run)
	require.NoError(t, err)
	m.Created = m.Created.Add(-40 * 24 * time.Hour)
	raw, _ := json.Marshal(m)
	require.NoError(t, afero.WriteFile(afero.NewOsFs(), filepath.Join(root, "trash/.mediaclean-quarantine", run, "manifest.json"), raw, 0o644))
	for _, dry := range []bool{true, false} {
		args := []string{"--root", root, "--quarantine", "trash", "--purge-after", "30d", "--qr-age", "0"}
		if dry {
			args = append(args, "--dry-run")
		}
		out, r = rt2JSON(t, nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Equal(t, 1, out.Purged.Deleted.Files, "dry %v", dry)
	}
}
