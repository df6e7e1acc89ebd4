package s3fs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// putKeys puts one 4-byte object per key, "v1" plus a digit each.
func putKeys(t *testing.T, client *s3.Client, bucket string, keys []string) {
	t.Helper()
	for _, k := range keys {
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(k), Body: bytes.NewReader([]byte("v1-" + k[len(k)-1:]))})
		require.NoError(t, err)
	}
}

// planOf lists fsys as an orphan plan would, into targets to check again
// before deleting, with or without the listed ETags.
func planOf(t *testing.T, fsys *s3fs.Fs, withETags bool) []storage.Target {
	t.Helper()
	var targets []storage.Target
	require.NoError(t, storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error {
		tg := storage.Target{Path: e.Path, Size: e.Size, ModTime: e.ModTime, Check: true}
		if withETags {
			tg.ETag = e.ETag
		}
		targets = append(targets, tg)
		return nil
	}))
	return targets
}

// deleteOutcomes runs storage.Delete and returns the outcomes by path.
func deleteOutcomes(t *testing.T, fsys *s3fs.Fs, targets []storage.Target) map[string]storage.Outcome {
	t.Helper()
	out := map[string]storage.Outcome{}
	require.NoError(t, storage.Delete(t.Context(), fsys, targets, storage.DeleteOptions{OnOutcome: func(o storage.Outcome) { out[o.Path] = o }}))
	require.Len(t, out, len(targets))
	return out
}

// An object rewritten (same size, same second) after the re-check listing
// and before its delete request is kept when the bucket's conditional
// deletes are on: on versitygw the probe finds that only single deletes
// honour an ETag, so each object goes with If-Match. With them off, the
// same rewrite is deleted: the window this closes. Plans over 100 files
// are re-checked by listing, whose ETag the delete is conditional on when
// the plan has none.
func TestRewriteAfterRecheckIsKept(t *testing.T) {
	srv := s3test.Shared(t)
	for _, tc := range []struct {
		opt, mode string
		planETags bool
		kept      bool
	}{
		{s3fs.ConditionalAuto, "single", true, true},
		{s3fs.ConditionalAuto, "single", false, true},
		{s3fs.ConditionalOff, "none", true, false},
		// versitygw's posix backend ignores the ETags of DeleteObjects:
		// forcing that way loses the guarantee, as Options says.
		{s3fs.ConditionalBatch, "batch", true, false},
	} {
		t.Run(fmt.Sprintf("%s/planETags=%v", tc.opt, tc.planETags), func(t *testing.T) {
			bucket := srv.NewBucket(t)
			client := srv.Client(nil)
			var keys []string
			for i := range 150 {
				keys = append(keys, fmt.Sprintf("d/f%03d.png", i))
			}
			putKeys(t, client, bucket, keys)
			fsys := s3fs.New(client, bucket, s3fs.Options{ConditionalDeletes: tc.opt})
			targets := planOf(t, fsys, tc.planETags)
			const victim = "d/f042.png"
			s3fs.SetBeforeDelete(fsys, func([]storage.Target) {
				_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(victim), Body: bytes.NewReader([]byte("v2-2"))})
				require.NoError(t, err)
			})
			out := deleteOutcomes(t, fsys, targets)
			assert.Equal(t, tc.mode, fsys.Features().ConditionalDeletes)
			got, err := fsys.Stat(victim)
			if tc.kept {
				require.NoError(t, err, "the rewritten object is kept")
				assert.Equal(t, int64(4), got.Size())
				assert.Equal(t, storage.KeptChanged, out[victim].Reason)
			} else {
				assert.ErrorIs(t, err, fs.ErrNotExist, "without a condition the rewrite is deleted")
				assert.Equal(t, storage.ActionDelete, out[victim].Action)
			}
			deleted := 0
			for _, o := range out {
				if o.Action == storage.ActionDelete {
					deleted++
				}
			}
			assert.Equal(t, map[bool]int{true: 149, false: 150}[tc.kept], deleted)
		})
	}
}

// The probe runs once per Fs, on the first deletion that carries an
// ETag (not before: filefield's own deletions carry none), and leaves no
// object behind; a copy from WithContext shares what it found.
func TestProbeRunsOnceAndCleansUp(t *testing.T) {
	srv := s3test.Shared(t)
	var count s3test.Counter
	bucket := srv.NewBucket(t)
	client := srv.Client(&count)
	putKeys(t, client, bucket, []string{"a1", "a2", "a3"})
	fsys := s3fs.New(client, bucket, s3fs.Options{Prefix: ""})
	count.Reset()

	errs := fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "a1"}})
	assert.NoError(t, errs[0])
	assert.Zero(t, count.Get("put"), "no probe for deletions without an ETag")
	assert.Empty(t, fsys.Features().ConditionalDeletes)

	head, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("a2")})
	require.NoError(t, err)
	errs = fsys.WithContext(t.Context()).(*s3fs.Fs).RemoveFiles(t.Context(), []storage.Target{{Path: "a2", ETag: aws.ToString(head.ETag)}, {Path: "a3", ETag: `"0123"`}})
	assert.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], storage.ErrChanged)
	assert.Equal(t, "single", fsys.Features().ConditionalDeletes, "the copy's probe is the original's")
	assert.Equal(t, 2, count.Get("put"), "one probe object for each way")

	count.Reset()
	errs = fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "a3", ETag: `"0123"`}})
	assert.ErrorIs(t, errs[0], storage.ErrChanged)
	assert.Zero(t, count.Get("put"), "the way is remembered")

	all, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket})
	require.NoError(t, err)
	var left []string
	for _, o := range all.Contents {
		left = append(left, aws.ToString(o.Key))
	}
	assert.Equal(t, []string{"a3"}, left, "the probe objects are gone")
}

// What versitygw v1.8.0 does with conditional deletes, as measured: a
// single delete honours If-Match (412 on a wrong ETag) and answers 204
// for a missing key even with If-Match (AWS answers 404), while
// DeleteObjects ignores per-object ETags. If an upgrade changes this,
// the README's list of servers must change with it.
func TestVersitygwConditionalDeletes(t *testing.T) {
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(nil)
	putKeys(t, client, bucket, []string{"k1", "k2"})
	fsys := s3fs.New(client, bucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalSingle})
	errs := fsys.RemoveFiles(t.Context(), []storage.Target{{Path: "k1", ETag: `"0123"`}, {Path: "gone", ETag: `"0123"`}})
	assert.ErrorIs(t, errs[0], storage.ErrChanged, "412 on a wrong ETag")
	assert.NoError(t, errs[1], "204 for a missing key: reported as deleted")
	batch := s3fs.New(client, bucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalBatch})
	errs = batch.RemoveFiles(t.Context(), []storage.Target{{Path: "k2", ETag: `"0123"`}})
	assert.NoError(t, errs[0], "the batch ETag is ignored")
	_, err := fsys.Stat("k2")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
