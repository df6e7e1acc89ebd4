package sweep_test

// Found by a second red-team pass: each test asserts the safe behaviour.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// CheckOptions promises to refuse "a rule that can never apply because an
// earlier rule matches every path it matches". "**/*" and "**/**" match
// every path exactly as "**" does (namesFirst even treats "**/*" as
// "everything"), and "*/**" every path below a top-level directory; a
// later "receipts/**" rule therefore never applies, and receipts meant to
// be kept ten years go after 30 days.
func TestRuleShadowedByEverythingGlobIsRefused(t *testing.T) {
	t.Parallel()
	for _, first := range []string{"**/*", "**/**", "*/**"} {
		opts := sweep.Options{Rules: []sweep.Rule{
			{Glob: first, MaxAge: 30 * day},
			{Glob: "receipts/**", MaxAge: 3650 * day},
		}}
		assert.Error(t, sweep.CheckOptions(opts), "%q then %q: the second rule never applies", first, "receipts/**")
	}
	// What that does, on disk: a 60-day-old receipt is deleted.
	storagetest.ForEachBackend(t, storagetest.LocalBackends()[:1], func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "receipts/2024/a.pdf", 10, 60*day)
		defer func() {
			if r := recover(); r != nil {
				t.Logf("New refused (good): %v", r)
			}
		}()
		s := sweep.New(fsys, sweep.Options{Now: clock, Rules: []sweep.Rule{
			{Glob: "**/*", MaxAge: 30 * day},
			{Glob: "receipts/**", MaxAge: 3650 * day},
		}})
		_, err := s.Sweep(context.Background())
		require.NoError(t, err)
		assert.Contains(t, files(t, fsys), "receipts/2024/a.pdf", "a 60-day receipt under a 3650-day rule was deleted")
	})
}

// Globs are matched against stored paths, which never start with "/" or
// "./" and never end in "/". A protected glob spelled "/defaults/**",
// "./defaults/**" or "defaults/" matched nothing, and the files it was
// meant to protect were deleted: such globs are refused.
func TestProtectedGlobThatCannotMatchIsRefused(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"/defaults/**", "./defaults/**", "defaults/"} {
		t.Run(g, func(t *testing.T) {
			t.Parallel()
			storagetest.ForEachBackend(t, storagetest.LocalBackends(), func(t *testing.T, fsys afero.Fs, _ string) {
				put(t, fsys, "defaults/logo.png", 10, 60*day)
				put(t, fsys, "tmp/x.bin", 10, 60*day)
				opts := sweep.Options{Now: clock, Protected: []string{g},
					Rules: []sweep.Rule{{Glob: "**", MaxAge: 30 * day, Exclude: []string{g}}}}
				require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob)
				opts.Rules[0].Exclude = nil
				require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob, "as a protected glob")
				opts.Protected, opts.Rules[0].Exclude = nil, []string{g}
				require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob, "as an exclude")
				opts.Rules[0].Exclude, opts.Rules[0].Glob = nil, g
				require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob, "as a rule")
				assert.Contains(t, files(t, fsys), "defaults/logo.png")
			})
		})
	}
}

// A file rewritten between the listing and its removal (a QR code
// regenerated in place under the same name) is young when it is removed:
// it is kept, as changed.
func TestFileRewrittenBeforeRemovalIsKept(t *testing.T) {
	t.Parallel()
	rfs, dirOnDisk := storagetest.LocalBackends()[0].New(t) // RootFs
	put(t, rfs, "qr_codes/1/qr.png", 10, 30*day)
	fresh := []byte("a new QR code, written just now")
	rewrite := refsFunc(func(p string) {
		full := filepath.Join(dirOnDisk, filepath.FromSlash(p))
		require.NoError(t, os.WriteFile(full, fresh, 0o644))
		require.NoError(t, os.Chtimes(full, now, now))
	})
	s := sweep.New(rfs, sweep.Options{Now: clock, Refs: rewrite,
		Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}})
	rep, err := s.Sweep(context.Background())
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dirOnDisk, "qr_codes", "1", "qr.png"))
	assert.NoError(t, err, "the rewritten (young) file was deleted; report: deleted %d, kept %v", rep.Deleted.Files, rep.Kept)
	assert.Equal(t, fresh, got)
	assert.Equal(t, 1, rep.Kept[sweep.KeptChanged].Files)
}

// refsFunc is a RefChecker that runs fn on each path it is asked about,
// just before the deletion, and says it is unreferenced.
type refsFunc func(p string)

func (f refsFunc) IsReferenced(_ context.Context, p string) (bool, error) { f(p); return false, nil }

// Found by a third red-team pass: a protected glob pasted from a macOS
// file name arrives decomposed (NFD), and one written with Windows
// separators escapes its letters; stored paths are NFC with "/". Both
// protected nothing. CheckOptions refuses them, and storage.Protects
// still matches the NFC form where options were not checked.
func TestProtectedGlobNFDOrBackslashIsRefused(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"tmp/me\u0301dias/**", `tmp\keep\**`, "tmp/keep /**"} {
		opts := sweep.Options{Now: clock, Protected: []string{g}, Rules: []sweep.Rule{{Glob: "tmp/**", MaxAge: 30 * day}}}
		require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob, "%q", g)
		opts.Protected, opts.Rules[0].Exclude = nil, []string{g}
		require.ErrorIs(t, sweep.CheckOptions(opts), storage.ErrBadGlob, "%q as an exclude", g)
	}
	assert.True(t, storage.Protects([]string{"tmp/me\u0301dias/**"}, "tmp/m\u00e9dias/a.png"))
	assert.True(t, storage.Protects([]string{"tmp/keep/**"}, "tmp/KEEP/a.png"))
}

// The shadowed-rule check reads brace alternatives: "*/*" does not cover
// "{a,b/c}" (it misses "a"), while "*" covers "{a,b}" and "**/*" covers
// anything; it refused the first and accepted the second before.
func TestRuleShadowingReadsBraces(t *testing.T) {
	t.Parallel()
	check := func(first, second string) error {
		return sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: first, MaxAge: day}, {Glob: second, MaxAge: 2 * day}}})
	}
	assert.NoError(t, check("*/*", "{a,b/c}"))
	assert.NoError(t, check("a/**", "{a/x,b}"))
	assert.Error(t, check("*", "{a,b}"))
	assert.Error(t, check("**/*", "{a,b/c}"))
	assert.Error(t, check("a/**", "{a/x,a/y/*}"))
	assert.Error(t, check("*", "x{a,{b,c}}"))
}

// On a store known not to honour conditional deletes (MinIO; here
// versitygw with the condition turned off), an object rewritten after the
// listing is found by the re-check listing just before its batch, and
// kept: the sweep sets Check on such targets.
func TestS3RewriteOnStoreWithoutConditionsIsKept(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	bucket := srv.NewBucket(t)
	client := srv.Client(nil)
	fsys := s3fs.New(client, bucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalOff})
	require.Equal(t, "none", fsys.Features().ConditionalDeletes)
	for i := range 5 {
		key := fmt.Sprintf("qr_codes/%02d.png", i)
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader(make([]byte, 10))})
		require.NoError(t, err)
		old := now.Add(-8 * day)
		require.NoError(t, os.Chtimes(filepath.Join(srv.Dir, bucket, filepath.FromSlash(key)), old, old))
	}
	rewrite := refsFunc(func(p string) {
		if p == "qr_codes/03.png" {
			_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(p), Body: bytes.NewReader([]byte("a new code, longer"))})
			require.NoError(t, err)
		}
	})
	rep, err := sweep.New(fsys, sweep.Options{Now: clock, Refs: rewrite, Rules: []sweep.Rule{{Glob: "qr_codes/*.png", MaxAge: 7 * day}}}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Deleted.Files)
	assert.Equal(t, 1, rep.Kept[sweep.KeptChanged].Files)
	_, err = client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("qr_codes/03.png")})
	assert.NoError(t, err, "the rewritten object was deleted")
}
