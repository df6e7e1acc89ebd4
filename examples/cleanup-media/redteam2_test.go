package main

// Found by a second red-team pass: each test asserts the safe behaviour.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeOld writes files aged 60 days under root.
func writeOld(t *testing.T, root string, paths ...string) {
	t.Helper()
	old := time.Now().Add(-60 * 24 * time.Hour)
	for _, p := range paths {
		full := filepath.Join(root, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte("x"), 0o644))
		require.NoError(t, os.Chtimes(full, old, old))
	}
}

// --refs-sql is repeatable (one query per column) and so are
// --strip-prefix and --exclude, but --refs-file is a plain string flag:
// given twice (one export per table, or two "<(psql ...)" pipes), the
// first file is silently dropped. Every file only it references looks
// unreferenced; when they are few next to the rest of their directory,
// neither the coverage guard nor the fraction guard notices, and the run
// deletes them with exit 0.
func TestRefsFileGivenTwice(t *testing.T) {
	t.Parallel()
	root, d := t.TempDir(), t.TempDir()
	var users strings.Builder
	for i := range 20 {
		p := fmt.Sprintf("uploads/avatar%d.png", i)
		writeOld(t, root, p)
		users.WriteString(p + "\n")
	}
	writeOld(t, root, "uploads/forum1.png", "uploads/orphan.png")
	forumRefs, userRefs := filepath.Join(d, "forum.txt"), filepath.Join(d, "users.txt")
	require.NoError(t, os.WriteFile(forumRefs, []byte("uploads/forum1.png\n"), 0o644))
	require.NoError(t, os.WriteFile(userRefs, []byte(users.String()), 0o644))

	r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans",
		"--refs-file", forumRefs, "--refs-file", userRefs, "--verbose")
	require.Equal(t, exitOK, r.code, "%s%s", r.stdout, r.stderr)
	_, err := os.Stat(filepath.Join(root, "uploads", "forum1.png"))
	assert.NoError(t, err, "a file the first --refs-file references was deleted:\n%s%s", r.stdout, r.stderr)
	_, err = os.Stat(filepath.Join(root, "uploads", "orphan.png"))
	assert.True(t, os.IsNotExist(err), "the orphan is still there")
}

// A flag that takes one value, given twice, is a usage error: the last
// value used to win silently (a second --root, a larger --max-delete).
func TestSingleValuedFlagGivenTwice(t *testing.T) {
	t.Parallel()
	root, other := t.TempDir(), t.TempDir()
	writeOld(t, root, "qr_codes/1/old.png")
	writeOld(t, other, "qr_codes/1/old.png")
	for _, args := range [][]string{
		{"--root", root, "--root", other},
		{"--root", root, "--qr-age", "30d", "--qr-age", "1d"},
		{"--root", root, "--check-orphans", "--refs-file", "/dev/null", "--max-delete", "1", "--max-delete", "100"},
		{"--root", root, "--check-orphans", "--refs-file", "/dev/null", "--min-age", "7d", "--min-age", "0"},
	} {
		r := runCmd(t, args...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "given twice", "%q", args)
	}
	for _, dir := range []string{root, other} {
		_, err := os.Stat(filepath.Join(dir, "qr_codes", "1", "old.png"))
		assert.NoError(t, err)
	}
}

// An --exclude glob spelled as an absolute or "./" path, or with a
// trailing slash, can never match a stored path (relative, no trailing
// slash), yet it is accepted: the files it names are deleted by the age
// rules (and by the orphan check) with exit 0.
func TestExcludeThatCannotMatchIsRefused(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"/defaults/**", "./defaults/**", "defaults/"} {
		t.Run(g, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeOld(t, root, "defaults/logo.png", "tmp/x.bin")
			r := runCmd(t, "--root", root, "--qr-age", "0", "--rule", "**=30d", "--exclude", g)
			assert.Equal(t, exitUsage, r.code, "%s", r.stderr)
			assert.Contains(t, r.stderr, `did you mean "defaults/**"`)
			_, err := os.Stat(filepath.Join(root, "defaults", "logo.png"))
			assert.NoError(t, err, "--exclude %q: the excluded file was deleted (exit %d)", g, r.code)
		})
	}
}

// The rule-shadowing check refuses --rule '**=30d' --rule
// 'receipts/**=3650d' (the second never applies) but not the same with
// '**/*' or '*/**': receipts meant to be kept ten years are deleted after
// 30 days, exit 0.
func TestRuleShadowedByEverythingGlob(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"**/*", "*/**"} {
		t.Run(g, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeOld(t, root, "receipts/2024/a.pdf")
			r := runCmd(t, "--root", root, "--qr-age", "0", "--rule", g+"=30d", "--rule", "receipts/**=3650d")
			assert.Equal(t, exitUsage, r.code, "%s", r.stderr)
			_, err := os.Stat(filepath.Join(root, "receipts", "2024", "a.pdf"))
			assert.NoError(t, err, "a 60-day receipt under a 3650-day rule was deleted (exit %d): %s", r.code, r.stdout)
		})
	}
}

// hookWriter calls fn once, when a line containing trigger is written.
type hookWriter struct {
	buf     strings.Builder
	trigger string
	fn      func()
	done    bool
}

func (w *hookWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && strings.Contains(string(p), w.trigger) {
		w.done = true
		w.fn()
	}
	return len(p), nil
}

// main.go: "Nothing is deleted on exit codes 2 and 3". The orphan check
// reads the references again in Apply, after the sweep has deleted; when
// that read is refused (here the references file is emptied in between,
// as a re-export or a truncated table would; a failing query gives
// ErrProvider the same way), the run exits 3, the code of a guard that
// deleted nothing, although the sweep's deletions already happened.
func TestExit3AfterSweepDeleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	refs := filepath.Join(t.TempDir(), "refs.txt")
	require.NoError(t, os.WriteFile(refs, []byte("profile_pics/ref.jpg\nqr_codes/1/new.png\nforum_images/a.png\n"), 0o644))
	out := &hookWriter{trigger: "qr_codes/1/old.png", fn: func() {
		require.NoError(t, os.WriteFile(refs, nil, 0o644)) // emptied after the sweep deleted, before Apply
	}}
	var errb strings.Builder
	code := run(t.Context(), []string{"--root", f.root, "--check-orphans", "--refs-file", refs, "--verbose", "--yes"},
		strings.NewReader(""), out, &errb)
	_, err := os.Stat(filepath.Join(f.root, "qr_codes", "1", "old.png"))
	require.True(t, os.IsNotExist(err), "the sweep did not run first:\n%s%s", out.buf.String(), errb.String())
	assert.Equal(t, exitError, code, "exit 3 promises nothing was deleted, but the sweep deleted qr_codes/1/old.png:\n%s%s", out.buf.String(), errb.String())
	assert.Contains(t, errb.String(), "after the sweep deleted 1 files")
}

// Found by a third red-team pass: beside other references, an empty
// --refs-file (a "<(psql ...)" whose command failed) hid its column's
// files from the check, and only a guard could notice. It is refused.
func TestEmptyRefsFileIsRefused(t *testing.T) {
	t.Parallel()
	root, d := t.TempDir(), t.TempDir()
	writeOld(t, root, "uploads/a.png", "forum/b.png")
	users, forum := filepath.Join(d, "users.txt"), filepath.Join(d, "forum.txt")
	require.NoError(t, os.WriteFile(users, []byte("uploads/a.png\n"), 0o644))
	require.NoError(t, os.WriteFile(forum, nil, 0o644))
	r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", users, "--refs-file", forum, "--force")
	assert.Equal(t, exitRefused, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "empty")
	for _, p := range []string{"uploads/a.png", "forum/b.png"} {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		assert.NoError(t, err, p)
	}
}
