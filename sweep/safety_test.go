package sweep_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// A sweep of everything on a real directory holding an old regular file,
// a link to a file outside the root and a hostile name removes the
// regular file only, and nothing outside the root.
func TestSweepRemovesOnlyRegularFilesWithValidNames(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		if !b.OnDisk() {
			continue // links and control characters need a real directory
		}
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := b.New(t)
			outside := filepath.Join(t.TempDir(), "outside.png")
			require.NoError(t, os.WriteFile(outside, []byte("x"), 0o644))
			for _, p := range []string{"old.png", "bad\x01name.png"} {
				require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644))
			}
			require.NoError(t, os.Symlink(outside, filepath.Join(dir, "link.png")))
			future := func() time.Time { return time.Now().Add(24 * time.Hour) }
			rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "**", MaxAge: time.Hour}}, Now: future}).Sweep(t.Context())
			require.NoError(t, err)
			assert.Equal(t, 1, rep.Deleted.Files)
			for _, p := range []string{"bad\x01name.png", "link.png"} {
				_, err := os.Lstat(filepath.Join(dir, p))
				assert.NoError(t, err, "%q must be kept", p)
			}
			_, err = os.Lstat(filepath.Join(dir, "old.png"))
			assert.ErrorIs(t, err, os.ErrNotExist)
			_, err = os.Stat(outside)
			assert.NoError(t, err, "the file outside the root")
			assert.Equal(t, 1, rep.Kept[sweep.KeptNotRegular].Files)
			assert.Equal(t, 1, rep.Kept[sweep.KeptUnsafe].Files)
		})
	}
}

// An OnEvent callback that panics while files are being deleted panics in
// the goroutine that called Sweep, where the caller can recover it (an
// HTTP server does), not on a worker, where it would end the process.
func TestEventPanicDuringDeletionReachesTheCaller(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	for i := range 3000 {
		put(t, fsys, "qr/"+string(rune('a'+i%26))+"/"+string(rune('a'+i/26%26))+string(rune('a'+i/676))+".png", 1, 30*day)
	}
	s := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: day}}, Now: clock, Concurrency: 4,
		OnEvent: func(e sweep.Event) {
			if e.Action == sweep.ActionDelete {
				panic("callback failed")
			}
		}})
	assert.PanicsWithValue(t, "callback failed", func() { _, _ = s.Sweep(t.Context()) })
	// The sweeper is usable afterwards: its lock was released.
	s = sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: day}}, Now: clock})
	_, err := s.Sweep(t.Context())
	require.NoError(t, err)
}

// The first matching rule decides a file, so a rule that an earlier rule
// covers can never apply (the README once had one: "qr_codes/**" before
// "qr_codes/*/*.png" with KeepLatest). New refuses it; CheckOptions says
// why.
func TestShadowedRulesAreRefused(t *testing.T) {
	t.Parallel()
	for _, rules := range [][]sweep.Rule{
		{{Glob: "qr_codes/**", MaxAge: 7 * day}, {Glob: "qr_codes/*/*.png", KeepLatest: 1}},
		{{Glob: "**", MaxAge: 7 * day}, {Glob: "tmp/**", MaxAge: day}},
		{{Glob: "a/*.png", MaxAge: day}, {Glob: "a/*.png", MaxAge: 2 * day}},
	} {
		assert.ErrorContains(t, sweep.CheckOptions(sweep.Options{Rules: rules}), "never applies")
		assert.Panics(t, func() { sweep.New(afero.NewMemMapFs(), sweep.Options{Rules: rules}) })
	}
	// The narrower rule first is fine, and does what the README says.
	fsys := afero.NewMemMapFs()
	put(t, fsys, "qr_codes/1/a.png", 1, 3*day)
	put(t, fsys, "qr_codes/1/b.png", 1, 2*day)
	put(t, fsys, "qr_codes/1/notes.txt", 1, 8*day)
	put(t, fsys, "qr_codes/2/c.png", 1, 9*day)
	rules := []sweep.Rule{
		{Glob: "qr_codes/*/*.png", KeepLatest: 1, MaxAge: day},
		{Glob: "qr_codes/**", MaxAge: 7 * day},
	}
	require.NoError(t, sweep.CheckOptions(sweep.Options{Rules: rules}))
	_, err := sweep.New(fsys, sweep.Options{Rules: rules, Now: clock}).Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"qr_codes/1/b.png", "qr_codes/2/c.png"}, files(t, fsys))
	for _, bad := range []sweep.Options{
		{Rules: []sweep.Rule{{Glob: "[", MaxAge: day}}},
		{Rules: []sweep.Rule{{Glob: "a/**", MaxAge: day, Exclude: []string{"{"}}}},
		{Rules: []sweep.Rule{{Glob: "a/**"}}},
		{Rules: []sweep.Rule{{Glob: "a/**", MaxAge: day}}, Dir: "../x"},
		{Rules: []sweep.Rule{{Glob: "a/**", MaxAge: day}}, Protected: []string{"["}},
	} {
		assert.Error(t, sweep.CheckOptions(bad))
	}
}

// With Options.Refs, a file a row still references is never swept, and a
// failing check keeps the file too.
func TestSweepKeepsReferencedFiles(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr_codes/1/used.png", 1, 30*day)
		put(t, fsys, "qr_codes/1/stale.png", 1, 30*day)
		put(t, fsys, "qr_codes/2/unknown.png", 1, 30*day)
		refs := filefield.RefCheckerFunc(func(_ context.Context, p string) (bool, error) {
			if p == "qr_codes/2/unknown.png" {
				return false, errors.New("database gone")
			}
			return p == "qr_codes/1/used.png", nil
		})
		rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}, Now: clock, Refs: refs}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files)
		assert.Equal(t, 1, rep.Kept[sweep.KeptReferenced].Files)
		assert.Equal(t, 1, rep.Kept[sweep.KeptCheckFailed].Files)
		assert.Equal(t, []string{"qr_codes/1/used.png", "qr_codes/2/unknown.png"}, files(t, fsys))
	})
}

// A later rule that some path reaches is accepted: the shadow check
// refuses only rules every witness of which an earlier rule takes, and a
// witness the earlier rule does not match proves the later one applies.
// Each pair below has such a path, named in the comment.
func TestRulesThatApplyAreNotRefusedAsShadowed(t *testing.T) {
	t.Parallel()
	for _, c := range [][2]string{
		{"**/*.pdf", "receipts/*"},                // receipts/a.png
		{"**/*.pdf", "receipts/**/*.PDF"},         // receipts/a.PDF
		{"*/*.png", "avatars/**"},                 // avatars/x/a.png
		{"qr_codes/*/*.png", "qr_codes/**/*.png"}, // qr_codes/a.png
		{"tmp/**", "tmp2/**"},                     // tmp2/a
		{"**/*.jpg", "**/*.jpeg"},                 // a.jpeg
		{"a/[0-4]*", "a/[5-9]*"},                  // a/5
		{"a/?", "a/??"},                           // a/ab
		{"a/?*", "a/*.png"},                       // none but a/.png... which ?* takes too: see below
		{"{tmp,cache}/**", "temp/**"},             // temp/a
		{"media/*/x/**", "media/**"},              // media/a
		{"uploads/*/*.jpg", "uploads/*/*"},        // uploads/1/a.png
		{"*.png", "**/*.png"},                     // a/b.png
	} {
		if c[0] == "a/?*" {
			// Every path "a/*.png" matches has a name of at least one
			// character, which "a/?*" takes: refused, rightly.
			assert.Error(t, sweep.CheckOptions(sweep.Options{Rules: []sweep.Rule{{Glob: c[0], MaxAge: day}, {Glob: c[1], MaxAge: 2 * day}}}))
			continue
		}
		opts := sweep.Options{Rules: []sweep.Rule{{Glob: c[0], MaxAge: day}, {Glob: c[1], MaxAge: 2 * day}}}
		assert.NoError(t, sweep.CheckOptions(opts), "%q then %q", c[0], c[1])
	}
}
