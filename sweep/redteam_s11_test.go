package sweep_test

// Found by a red-team pass: each test failed before its fix.

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

// New "panics on ... a rule that can never apply because an earlier rule
// matches every path it matches" (CheckOptions returns it). The check
// once recognised only a few shapes of the earlier glob ("**", "*/**",
// "P/**" with P literal), so ordinary shadowings went through: the later
// (narrower, longer-lived) rule never applied and its files were deleted
// at the earlier rule's age.
func TestRuleShadowedByAWildcardPrefixIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ first, later string }{
		{"**/*.pdf", "receipts/*.pdf"},           // "old PDFs go, receipts stay ten years"
		{"**/*.pdf", "receipts/**/*.pdf"},        // the same, any depth
		{"media/*/**", "media/keep/**"},          // a wildcard segment before "/**"
		{"{tmp,cache}/**", "tmp/keep/**"},        // braces in the earlier rule
		{"*/*.png", "avatars/*.png"},             // a wildcard segment, fixed depth
		{"qr_codes/*/*.png", "qr_codes/1/*.png"}, // the README's own rule shape
	} {
		opts := sweep.Options{Rules: []sweep.Rule{
			{Glob: c.first, MaxAge: 30 * day},
			{Glob: c.later, MaxAge: 3650 * day},
		}}
		assert.Error(t, sweep.CheckOptions(opts), "%q then %q: the second rule never applies", c.first, c.later)
	}
}

// The sweep's Caveats: "a file without an entity tag (a local disk) [is
// re-checked] for its size and modification time too: one rewritten under
// the same name since it was listed is kept, as changed". On RootFs the
// re-check (unlinkFile's fstatat, storage.Changed) compared times to the
// second only, although the disk and the listing have nanoseconds. With
// KeepLatest and no MaxAge ("one QR code per user"), a file planned for
// deletion can be seconds old: rewritten within the same second at the
// same size (a regenerated QR code of fixed size), it is now the newest of
// its group, and it is deleted anyway.
func TestFileRewrittenWithinTheSameSecondIsKept(t *testing.T) {
	t.Parallel()
	rfs, dirOnDisk := storagetest.LocalBackends()[0].New(t)
	base := now.Add(-time.Minute).Truncate(time.Second)
	storagetest.WriteFile(t, rfs, "qr_codes/1/a.png", make([]byte, 100), base.Add(100*time.Millisecond))
	storagetest.WriteFile(t, rfs, "qr_codes/1/b.png", make([]byte, 100), base.Add(200*time.Millisecond))
	fresh := make([]byte, 100)
	for i := range fresh {
		fresh[i] = 'n'
	}
	rewritten := base.Add(700 * time.Millisecond) // written after b.png: the newest
	rewrite := refsFunc(func(p string) {
		full := filepath.Join(dirOnDisk, filepath.FromSlash(p))
		require.NoError(t, os.WriteFile(full, fresh, 0o644))
		require.NoError(t, os.Chtimes(full, rewritten, rewritten))
	})
	s := sweep.New(rfs, sweep.Options{Now: clock, Refs: rewrite,
		Rules: []sweep.Rule{{Glob: "qr_codes/*/*.png", KeepLatest: 1}}})
	rep, err := s.Sweep(context.Background())
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dirOnDisk, "qr_codes", "1", "a.png"))
	assert.NoError(t, err, "a.png, rewritten after it was listed (now the newest QR code), was deleted; report: deleted %d, kept %v", rep.Deleted.Files, rep.Kept)
}

// hex32 is 32 lowercase hex digits: an md5, or uuid4().hex.
const hex32 = "3f9c1e0e5b8a4d2c9e7f6a1b0c3d2e4f"

// storage.IsTempName promises "TempPrefix and 32 lowercase hex digits",
// but validTempName checked only the length (16+32) and the last 32
// characters: the prefix was not compared (it was, with HasPrefix, before
// the deletion pipeline was unified). Any 48-character name ending in 32
// hex digits is then a "filefield temp file", such as
// "profile-picture-"+uuid4().hex, or secrets.token_hex(24). A sweep
// deletes such a file once it is older than TempMaxAge (one day by
// default), although no rule matches it, and without asking Options.Refs:
// here an avatar a row references, under a sweep whose only rule is
// "qr_codes/**".
func TestUserFileWithATempLengthNameIsKept(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"profile-picture-" + hex32, // a 16-character prefix and a uuid4().hex
		"0123456789abcdef" + hex32, // secrets.token_hex(24)
	} {
		rfs, _ := storagetest.LocalBackends()[0].New(t)
		avatar := "avatars/" + name
		put(t, rfs, avatar, 10, 2*day)
		put(t, rfs, "qr_codes/1/old.png", 10, 30*day)
		referenced := refsSet{avatar: true}
		var events []sweep.Event
		s := sweep.New(rfs, sweep.Options{Now: clock, Refs: referenced,
			OnEvent: func(e sweep.Event) { events = append(events, e) },
			Rules:   []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * day}}})
		rep, err := s.Sweep(context.Background())
		require.NoError(t, err)
		assert.Contains(t, files(t, rfs), avatar,
			"a referenced avatar no rule matches was deleted as a filefield temp file; deleted %d, events %v", rep.Deleted.Files, events)
	}
}

// refsSet is a RefChecker over a fixed set of referenced paths.
type refsSet map[string]bool

func (r refsSet) IsReferenced(_ context.Context, p string) (bool, error) { return r[p], nil }

// doc.go: "A path that ... matches Options.Protected is never removed".
// RemoveEmptyDirs removes a directory whose own path a protected glob
// matches: storage.Delete's refuse() checks Protected for files and moves,
// never for a Dir target, and apply passes RemoveEmptyDirs no Protected
// at all. Here "uploads/*" protects the uploads' first level (its
// per-user folders among them), and the per-user folder "uploads/42" is
// removed once a rule for "uploads/*/tmp/**" has emptied it.
func TestProtectedDirectoryIsNotRemovedWhenEmpty(t *testing.T) {
	t.Parallel()
	rfs, dirOnDisk := storagetest.LocalBackends()[0].New(t)
	put(t, rfs, "uploads/42/tmp/old.bin", 10, 30*day)
	s := sweep.New(rfs, sweep.Options{Now: clock, RemoveEmptyDirs: true,
		Protected: []string{"uploads/*"},
		Rules:     []sweep.Rule{{Glob: "uploads/*/tmp/**", MaxAge: day}}})
	rep, err := s.Sweep(context.Background())
	require.NoError(t, err)
	_, err = os.Lstat(filepath.Join(dirOnDisk, "uploads", "42"))
	assert.NoError(t, err, "the protected directory uploads/42 was removed (dirs removed: %d)", rep.DirsRemoved)
}
