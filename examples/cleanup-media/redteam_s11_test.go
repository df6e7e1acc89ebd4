package main

// From a red-team pass on the operator's command: each test asserts the safe,
// documented behaviour.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// s11SharedDir writes 20 avatars and 2 forum images, all in uploads/
// (two columns sharing one folder, so the coverage guard has nothing to
// say), plus one true orphan; it returns the root and the users' refs.
func s11SharedDir(t *testing.T) (root, users string) {
	t.Helper()
	root, d := t.TempDir(), t.TempDir()
	var b strings.Builder
	for i := range 20 {
		p := fmt.Sprintf("uploads/avatar%d.png", i)
		writeOld(t, root, p)
		b.WriteString(p + "\n")
	}
	writeOld(t, root, "uploads/forum1.png", "uploads/forum2.png", "uploads/orphan.png")
	users = filepath.Join(d, "users.txt")
	require.NoError(t, os.WriteFile(users, []byte(b.String()), 0o644))
	return root, users
}

// README: "an empty file is refused, exit 3: the mark of a failed
// export". A failed export is not always 0 bytes: `echo "$(psql ...)"`
// leaves "\n", a Windows tool "\r\n", PowerShell's Out-File -Encoding
// utf8 of nothing a byte-order mark (and CRLF). Such a file holds no
// reference at all, exactly like an empty one, yet it is accepted: beside
// the users' export, the forum's files look unreferenced and go, exit 0.
func TestBlankRefsFileIsRefusedLikeAnEmptyOne(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"LF": "\n", "CRLF": "\r\n", "BOM": "\ufeff", "BOM+CRLF": "\ufeff\r\n", "blank lines": "\n\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root, users := s11SharedDir(t)
			forum := filepath.Join(t.TempDir(), "forum.txt")
			require.NoError(t, os.WriteFile(forum, []byte(content), 0o644))
			r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", users, "--refs-file", forum)
			assert.Equal(t, exitRefused, r.code, "a references file with no reference in it was accepted:\n%s%s", r.stdout, r.stderr)
			for _, p := range []string{"uploads/forum1.png", "uploads/forum2.png"} {
				_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
				assert.NoError(t, err, "%s deleted: the forum's export held no reference (%q)", p, content)
			}
		})
	}
}

// orphan's tests: "No valid stored path ends with a control character,
// so the reference can only mean pics/a.jpg" (CR, LF, tab are dropped).
// NUL is one too, and the one a fixed-width binary column pads with
// (MySQL BINARY(n), a C program binding its whole buffer); a DOS file
// ends with ^Z (0x1A). Such a reference keeps nothing, and the file it
// names is deleted, exit 0.
func TestReferencePaddedWithNULKeepsItsFile(t *testing.T) {
	t.Parallel()
	root, users := s11SharedDir(t)
	dbPath := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", dbPath)
	require.NoError(t, err)
	// forum.image as BINARY(24): 'uploads/forum1.png' and six NULs.
	_, err = db.Exec(`CREATE TABLE forum (image BLOB);
		INSERT INTO forum VALUES (CAST('uploads/forum1.png' AS BLOB) || zeroblob(6));`)
	require.NoError(t, err)
	db.Close()
	legacy := filepath.Join(t.TempDir(), "legacy.txt")
	require.NoError(t, os.WriteFile(legacy, []byte("uploads/forum2.png\x1a"), 0o644))
	r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", users, "--refs-file", legacy,
		"--db", "sqlite:"+dbPath, "--refs-sql", "SELECT image FROM forum", "--verbose")
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	for _, p := range []string{"uploads/forum1.png", "uploads/forum2.png"} {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		assert.NoError(t, err, "%s deleted though a reference names it, padded with a control character (exit %d)", p, r.code)
	}
}

// s11Many writes n referenced and n orphaned old files; it returns the
// root and a refs file naming the referenced ones.
func s11Many(t *testing.T, n int) (root, refs string) {
	t.Helper()
	root = t.TempDir()
	var b strings.Builder
	var all []string
	for i := range n {
		all = append(all, fmt.Sprintf("pics/ref%05d.png", i), fmt.Sprintf("pics/orphan%05d.png", i))
		fmt.Fprintf(&b, "pics/ref%05d.png\n", i)
	}
	writeOld(t, root, all...)
	refs = filepath.Join(t.TempDir(), "refs.txt")
	require.NoError(t, os.WriteFile(refs, []byte(b.String()), 0o644))
	return root, refs
}

func s11Count(t *testing.T, root, prefix string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasPrefix(d.Name(), prefix) {
			n++
		}
		return err
	}))
	return n
}

// A SIGINT while the orphans go (here: the run's context is cancelled at
// the first deletion): the run exits 1, its JSON report counts exactly
// the files that are gone, no referenced file is touched, and running
// it again finishes the job with exit 0.
func TestInterruptedApplyReportsWhatWentAndResumes(t *testing.T) {
	t.Parallel()
	const n = 2500
	root, refs := s11Many(t, n)
	args := []string{"--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", refs, "--max-fraction", "0", "--json", "--verbose", "--yes"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errw := &hookWriter{trigger: "delete", fn: cancel}
	var out strings.Builder
	code := run(ctx, args, strings.NewReader(""), &out, errw)
	assert.Equal(t, exitError, code)
	var doc Output
	require.NoError(t, json.Unmarshal([]byte(out.String()), &doc), out.String())
	require.NotNil(t, doc.Orphans)
	require.NotNil(t, doc.Orphans.Applied, "the report of what was deleted before the stop is missing")
	gone := n - s11Count(t, root, "orphan")
	assert.Equal(t, gone, doc.Orphans.Applied.Deleted.Files, "the report's deleted count is not what went")
	assert.Equal(t, n, s11Count(t, root, "ref"))
	r := runCmd(t, args...)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, 0, s11Count(t, root, "orphan"))
	assert.Equal(t, n, s11Count(t, root, "ref"))
}

// The same stop during a quarantine run, then --restore of that run:
// every orphan is back, nothing is reported lost.
func TestInterruptedQuarantineRestoresWhole(t *testing.T) {
	t.Parallel()
	const n = 2500
	root, refs := s11Many(t, n)
	args := []string{"--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", refs, "--max-fraction", "0", "--json", "--verbose", "--yes", "--quarantine", "trash"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errw := &hookWriter{trigger: "move", fn: cancel}
	var out strings.Builder
	code := run(ctx, args, strings.NewReader(""), &out, errw)
	assert.Equal(t, exitError, code)
	var doc Output
	require.NoError(t, json.Unmarshal([]byte(out.String()), &doc), out.String())
	require.NotNil(t, doc.Orphans.Applied)
	runID := doc.Orphans.Applied.QuarantineRun
	require.NotEmpty(t, runID, "a stopped quarantine run must name its run, or it cannot be restored: %s", out.String())
	moved := doc.Orphans.Applied.Quarantined.Files
	assert.Equal(t, n-s11Count(t, filepath.Join(root, "pics"), "orphan"), moved)
	r := runCmd(t, "--root", root, "--quarantine", "trash", "--restore", runID, "--json")
	assert.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Equal(t, n, s11Count(t, filepath.Join(root, "pics"), "orphan"), "orphans not back at their paths")
}

// Two runs at once on one root (a cron job overlapping a manual run),
// both quarantining: no referenced file moves, every orphan ends in one
// run or the other, and restoring both runs puts every orphan back.
// The root is given once through a symbolic link with a trailing slash.
func TestTwoRunsAtOnceThenRestoreBoth(t *testing.T) {
	t.Parallel()
	const n = 1500
	root, refs := s11Many(t, n)
	link := filepath.Join(t.TempDir(), "media")
	require.NoError(t, os.Symlink(root, link))
	args := func(r string) []string {
		return []string{"--root", r, "--qr-age", "0", "--check-orphans", "--refs-file", refs, "--max-fraction", "0", "--json", "--quarantine", "trash"}
	}
	res := make([]result, 2)
	done := make(chan int, 2)
	go func() { res[0] = runCmd(t, args(root)...); done <- 0 }()
	go func() { res[1] = runCmd(t, args(link+"/")...); done <- 1 }()
	<-done
	<-done
	var runs []string
	total := 0
	for i, r := range res {
		assert.Equal(t, exitOK, r.code, "run %d: %s", i, r.stderr)
		var doc Output
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
		if a := doc.Orphans.Applied; a != nil {
			total += a.Quarantined.Files
			if a.QuarantineRun != "" {
				runs = append(runs, a.QuarantineRun)
			}
		}
	}
	assert.Equal(t, n, total, "the two runs' reports do not add up to the orphans moved")
	assert.Equal(t, n, s11Count(t, filepath.Join(root, "pics"), "ref"))
	assert.Equal(t, 0, s11Count(t, filepath.Join(root, "pics"), "orphan"))
	for _, run := range runs {
		r := runCmd(t, "--root", root, "--quarantine", "trash", "--restore", run)
		assert.Equal(t, exitOK, r.code, "restore %s: %s%s", run, r.stdout, r.stderr)
	}
	assert.Equal(t, n, s11Count(t, filepath.Join(root, "pics"), "orphan"))
}

// A references file exported in Latin-1 (mysql -B from a latin1 table,
// a Windows tool's "ANSI"): its lines with an accented name are not
// UTF-8, so they named no stored path, and the files they mean (stored
// in UTF-8) were deleted with exit 0 while the ASCII lines kept theirs.
// A UTF-16 file is refused (TestRedteamUTF16RefsFileIsRefused) only
// because none of its lines is valid; this one is half valid. The finder
// now also reads such a line as Windows-1252, and keeps the files.
func TestLatin1RefsFileKeepsAccentedNames(t *testing.T) {
	t.Parallel()
	root, users := s11SharedDir(t)
	writeOld(t, root, "uploads/café.png", "uploads/naïve.png")
	extra := filepath.Join(t.TempDir(), "forum.txt")
	require.NoError(t, os.WriteFile(extra, []byte("uploads/forum1.png\nuploads/forum2.png\nuploads/caf\xe9.png\nuploads/na\xefve.png\n"), 0o644))
	r := runCmd(t, "--root", root, "--qr-age", "0", "--check-orphans", "--refs-file", users, "--refs-file", extra, "--verbose")
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	for _, p := range []string{"uploads/café.png", "uploads/naïve.png"} {
		_, err := os.Stat(filepath.Join(root, p))
		assert.NoError(t, err, "%s deleted though a (Latin-1) reference names it", p)
	}
}

// The empty-value check exists because "--quarantine $QDIR" with QDIR
// unset turns the quarantine off (flags.go). The same unset variable in
// the usual spelling of a root, --root "$MEDIA_ROOT/", gives "/", which
// is accepted: the whole filesystem becomes the media root, so
// --rule 'tmp/**=1d' sweeps the host's /tmp and --qr-age (on by default)
// sweeps /qr_codes. (Run as an unprivileged user the listing fails on
// /proc and nothing goes; as root in a container it need not.) The
// references file given here does not exist, so that today's code stops
// before it lists anything; the root must be refused first, as a usage
// error naming it.
func TestFilesystemRootIsRefused(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nothing.txt")
	unset := "" // $MEDIA_ROOT
	r := runCmd(t, "--root", unset+"/", "--rule", "tmp/**=1d", "--check-orphans", "--refs-file", missing, "--dry-run")
	assert.Equal(t, exitUsage, r.code, "--root / (an unset $MEDIA_ROOT) must be refused: %s", r.stderr)
	assert.Contains(t, r.stderr, "--root")
}

// A reference query that fails after some rows (a function error on a
// later row): the run is refused (exit 3) and nothing is deleted. And
// --refs-sql returning NULLs and numbers beside real paths keeps every
// referenced file.
func TestQueryFailingHalfwayAndOddValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	db, err := sql.Open("sqlite", f.db)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE odd (v); INSERT INTO odd VALUES (NULL), (42), (3.5), (''), ('profile_pics/ref.jpg');`)
	require.NoError(t, err)
	db.Close()
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--refs-sql",
		"SELECT CASE WHEN n < 4 THEN p ELSE json('x{') END FROM (SELECT 1 AS n, picture AS p FROM users UNION ALL SELECT 2, picture FROM users UNION ALL SELECT 5, picture FROM users)")...)
	assert.Equal(t, exitRefused, r.code, "%s%s", r.stdout, r.stderr)
	assert.Equal(t, before, f.files(t))
	r = runCmd(t, f.orphanArgs("--qr-age", "0", "--refs-sql", "SELECT v FROM odd")...)
	assert.Equal(t, exitOK, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, f.files(t), "profile_pics/ref.jpg")
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")
}

// --restore into a path a new file took meanwhile: that file is not
// replaced, the quarantined one stays in the quarantine, and the run says
// so with exit 1 (not 0, not "restored").
func TestRestoreOntoNewFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", "trash", "--json")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var doc Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	run := doc.Orphans.Applied.QuarantineRun
	require.NotEmpty(t, run)
	newFile := filepath.Join(f.root, "profile_pics", "orphan.jpg")
	require.NoError(t, os.WriteFile(newFile, []byte("new upload"), 0o644))
	r = runCmd(t, "--root", f.root, "--quarantine", "trash", "--restore", run)
	t.Logf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	assert.Equal(t, exitError, r.code)
	assert.NotContains(t, r.stdout, "Restored 1 ")
	got, err := os.ReadFile(newFile)
	require.NoError(t, err)
	assert.Equal(t, "new upload", string(got))
}
