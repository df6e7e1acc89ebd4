package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

var binary string

// TestMain builds the command once; the tests run it as a subprocess.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cleanup-media-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cleanup-media")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build: %v\n%s", err, out))
	}
	code := m.Run()
	s3test.StopShared()
	sqltest.StopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(t *testing.T, args ...string) result {
	t.Helper()
	return runEnv(t, nil, args...)
}

// runEnv runs the command with env added to the test's environment.
func runEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errb.String()}
}

// fixture is a media tree and a SQLite database referencing part of it:
//
//	qr_codes/1/old.png       10 days, 100 B  -> swept
//	qr_codes/1/new.png        1 day,  200 B  (referenced)
//	profile_pics/ref.jpg      3 days, 300 B  (referenced)
//	profile_pics/orphan.jpg   3 days, 400 B  -> orphan
//	profile_pics/young.jpg    1 hour, 500 B  (unreferenced but young)
//	forum_images/a.png        3 days, 600 B  (referenced as "/forum_images/a.png")
type fixture struct {
	root, db, outside string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	base := t.TempDir()
	f := fixture{root: filepath.Join(base, "media"), db: filepath.Join(base, "app.db"), outside: filepath.Join(base, "outside")}
	require.NoError(t, os.MkdirAll(f.root, 0o755))
	fsys, err := rootfs.New(f.root)
	require.NoError(t, err)
	defer fsys.Close()
	now := time.Now()
	for _, x := range []struct {
		p    string
		age  time.Duration
		size int
	}{
		{"qr_codes/1/old.png", 10 * 24 * time.Hour, 100},
		{"qr_codes/1/new.png", 24 * time.Hour, 200},
		{"profile_pics/ref.jpg", 72 * time.Hour, 300},
		{"profile_pics/orphan.jpg", 72 * time.Hour, 400},
		{"profile_pics/young.jpg", time.Hour, 500},
		{"forum_images/a.png", 72 * time.Hour, 600},
	} {
		storagetest.WriteFile(t, fsys, x.p, make([]byte, x.size), now.Add(-x.age))
	}
	// A link out of the root, with an old file behind it.
	require.NoError(t, os.MkdirAll(f.outside, 0o755))
	secret := filepath.Join(f.outside, "old.png")
	require.NoError(t, os.WriteFile(secret, []byte("outside"), 0o644))
	old := now.Add(-100 * 24 * time.Hour)
	require.NoError(t, os.Chtimes(secret, old, old))
	require.NoError(t, os.Symlink(f.outside, filepath.Join(f.root, "qr_codes", "link")))

	db, err := sql.Open("sqlite", f.db)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE users (picture TEXT, qr TEXT); CREATE TABLE forum (image TEXT);
		INSERT INTO users VALUES ('profile_pics/ref.jpg', 'qr_codes/1/new.png');
		INSERT INTO forum VALUES ('/forum_images/a.png');`)
	require.NoError(t, err)
	return f
}

func (f fixture) files(t *testing.T) []string {
	fsys, err := rootfs.New(f.root)
	require.NoError(t, err)
	defer fsys.Close()
	return storagetest.Files(t, fsys)
}

func (f fixture) outsideIntact(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(f.outside, "old.png"))
	require.NoError(t, err)
	assert.Equal(t, "outside", string(got))
}

func (f fixture) orphanArgs(extra ...string) []string {
	return append([]string{"--root", f.root, "--check-orphans", "--db", "sqlite:" + f.db,
		"--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT qr FROM users", "--refs-sql", "SELECT image FROM forum"}, extra...)
}

func TestDryRunThenRealRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)

	r := runCmd(t, f.orphanArgs("--dry-run", "--json")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, before, f.files(t), "dry run changed nothing")
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.True(t, out.DryRun)
	assert.Equal(t, storage.Count{Files: 1, Bytes: 100}, out.Sweep.Deleted)
	// Orphans: old.png (swept too) and orphan.jpg; young.jpg is in its grace period.
	assert.Equal(t, storage.Count{Files: 2, Bytes: 500}, out.Orphans.Plan.Total)
	assert.Nil(t, out.Orphans.Applied)

	r = runCmd(t, f.orphanArgs()...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Orphaned files: 2 (500 B wasted)")
	assert.Contains(t, r.stdout, "Sweep: scanned 6 files; deleted 1 files (100 B)")
	assert.Equal(t, []string{"forum_images/a.png", "profile_pics/ref.jpg", "profile_pics/young.jpg", "qr_codes/1/new.png", "qr_codes/link"}, f.files(t))
	f.outsideIntact(t)
}

// --allow-empty-refs lets a run go on when one source gives nothing (an
// empty table), and the JSON document says what each source gave, and
// that the others' references name stored files (their check still runs).
func TestAllowEmptyRefs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--refs-sql", "SELECT image FROM forum WHERE 0", "--allow-empty-refs", "--dry-run", "--json")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	yes := true
	assert.Equal(t, []SourceCount{
		{Source: "--refs-sql SELECT picture FROM users", References: 1, Stored: &yes},
		{Source: "--refs-sql SELECT qr FROM users", References: 1, Stored: &yes},
		{Source: "--refs-sql SELECT image FROM forum", References: 1, Stored: &yes},
		{Source: "--refs-sql SELECT image FROM forum WHERE 0", References: 0},
	}, out.References)
}

func TestGuardsAndErrorsChangeNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args func(f fixture) []string
		code int
		msg  string
	}{
		{"empty reference query", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "sqlite:" + f.db, "--refs-sql", "SELECT picture FROM users WHERE 0"}
		}, exitRefused, "no valid references"},
		{"one query of several gives nothing", func(f fixture) []string {
			return f.orphanArgs("--refs-sql", "SELECT image FROM forum WHERE 0")
		}, exitRefused, "--refs-sql SELECT image FROM forum WHERE 0"},
		{"one query of several gives nothing, before a sweep", func(f fixture) []string {
			return []string{"--root", f.root, "--db", "sqlite:" + f.db, "--rule", "forum_images/**=1d",
				"--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT qr FROM users WHERE 0"}
		}, exitRefused, "--allow-empty-refs"},
		{"failing query", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "sqlite:" + f.db, "--refs-sql", "SELECT picture FROM no_such_table"}
		}, exitRefused, "no_such_table"},
		{"over the fraction", func(f fixture) []string { return f.orphanArgs("--max-fraction", "0.1") }, exitRefused, "fraction"},
		{"over the count", func(f fixture) []string { return f.orphanArgs("--max-delete", "1") }, exitRefused, "maximum number"},
		{"missing root", func(f fixture) []string { return []string{"--root", f.root + "-nope"} }, exitError, "not a directory"},
		{"unreadable refs file", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--refs-file", f.root + "/nope.txt"}
		}, exitError, "references file"},
		{"unknown flag", func(f fixture) []string { return []string{"--root", f.root, "--bogus"} }, exitUsage, "bogus"},
		{"no root", func(f fixture) []string { return []string{"--dry-run"} }, exitUsage, "--root is required"},
		{"orphans without references", func(f fixture) []string { return []string{"--root", f.root, "--check-orphans"} }, exitUsage, "needs --refs-sql"},
		{"bad rule", func(f fixture) []string { return []string{"--root", f.root, "--rule", "tmp/**"} }, exitUsage, "GLOB=AGE"},
		{"negative grace period", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--refs-file", f.db, "--min-age", "-5h"}
		}, exitUsage, "must not be negative"},
		{"unknown driver", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "oracle://x", "--refs-sql", "SELECT 1"}
		}, exitUsage, "want sqlite:PATH"},
		{"unreachable database", func(f fixture) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "postgres://u:secret@127.0.0.1:1/x?connect_timeout=2", "--refs-sql", "SELECT 1"}
		}, exitError, "database:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.files(t)
			r := runCmd(t, tt.args(f)...)
			assert.Equal(t, tt.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tt.msg)
			assert.Equal(t, 1, bytes.Count([]byte(r.stderr), []byte("\n")), "one line on stderr: %q", r.stderr)
			assert.Equal(t, before, f.files(t), "nothing changed")
			assert.NotContains(t, r.stderr, "secret", "no password in messages")
			f.outsideIntact(t)
		})
	}
}

func TestRulesAndQuarantine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--rule", "forum_images/**=2d", "--quarantine", "trash", "--force")...)
	require.Equal(t, 0, r.code, r.stderr)
	files := f.files(t)
	assert.Contains(t, files, "forum_images/a.png", "old enough for the rule, but a row references it: the sweep keeps it")
	var out struct{ run string }
	_, err := fmt.Sscanf(r.stdout[bytes.Index([]byte(r.stdout), []byte("Quarantine run: ")):], "Quarantine run: %s", &out.run)
	require.NoError(t, err)
	// --qr-age 0 disables the QR rule, so old.png is left to the orphan
	// check, which moves it and orphan.jpg into the quarantine.
	for _, p := range []string{"manifest.json", "profile_pics/orphan.jpg", "qr_codes/1/old.png"} {
		assert.Contains(t, files, "trash/.mediaclean-quarantine/"+out.run+"/"+p)
	}
	assert.NotContains(t, files, "profile_pics/orphan.jpg")
}

func TestNothingToDo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, "--root", f.root, "--qr-age", "0")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stderr, "nothing to do")
}

// The quarantine's life from the command: move orphans, restore them byte
// for byte, move them again, purge the run.
func TestQuarantineRestorePurge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", "trash")...)
	require.Equal(t, 0, r.code, r.stderr)
	var run string
	_, err := fmt.Sscanf(r.stdout[bytes.Index([]byte(r.stdout), []byte("Quarantine run: ")):], "Quarantine run: %s", &run)
	require.NoError(t, err)
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")

	r = runCmd(t, "--root", f.root, "--quarantine", "trash", "--restore", run)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Restored 2 files")
	for _, p := range before {
		assert.Contains(t, f.files(t), p, "restored")
	}

	require.Equal(t, 0, runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", "trash")...).code)
	r = runCmd(t, "--root", f.root, "--qr-age", "0", "--quarantine", "trash", "--purge-after", "1ns")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Purged quarantine run")
	for _, p := range f.files(t) {
		assert.False(t, strings.HasPrefix(p, "trash/"), "purged: %s", p)
	}
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")
	r = runCmd(t, "--root", f.root, "--restore", run)
	assert.Equal(t, exitUsage, r.code, "--restore needs --quarantine")
}

// --merge plans what the default plans, and deletes the same files; its
// sorted runs go in --temp-dir and are gone afterwards.
func TestMergeFlag(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	plan := func(extra ...string) Output {
		r := runCmd(t, f.orphanArgs(append([]string{"--dry-run", "--json"}, extra...)...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var out Output
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		out.Orphans.Plan.Created, out.Orphans.Plan.Duration = time.Time{}, 0
		return out
	}
	tmp := t.TempDir()
	hash, merged := plan(), plan("--merge", "--temp-dir", tmp)
	require.Len(t, merged.Orphans.Plan.Orphans, 2)
	assert.Equal(t, hash.Orphans.Plan, merged.Orphans.Plan)

	r := runCmd(t, f.orphanArgs("--merge", "--temp-dir", tmp)...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "Orphaned files: 2 (500 B wasted)")
	assert.Equal(t, []string{"forum_images/a.png", "profile_pics/ref.jpg", "profile_pics/young.jpg", "qr_codes/1/new.png", "qr_codes/link"}, f.files(t))
	f.outsideIntact(t)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left)

	r = runCmd(t, f.orphanArgs("--temp-dir", tmp)...)
	assert.Equal(t, exitUsage, r.code, "--temp-dir without --merge")
}
