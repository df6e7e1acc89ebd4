//go:build unix

package main

// Red-team tests: each asserts the safe, documented behaviour. Those that
// fail show bugs.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
)

// readmeCron returns the README's crontab line with this test's paths.
func readmeCron(t *testing.T, root, db string) []string {
	t.Helper()
	args := slices.Clone(readmeCommands(t)["cron"])
	metrics := t.TempDir()
	for i, a := range args {
		a = strings.ReplaceAll(a, "/srv/app/media", root)
		a = strings.ReplaceAll(a, "/var/lib/node_exporter/textfile_collector", metrics)
		args[i] = strings.ReplaceAll(a, "/srv/app/app.db", db)
	}
	return args
}

// without drops the --refs-sql QUERY pair for query.
func without(args []string, query string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--refs-sql" && i+1 < len(args) && args[i+1] == query {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// README: "Give it one --refs-sql for every column that holds a file path
// (the example app has five): a missing one makes that column's files look
// unreferenced, and the coverage guard then refuses the run (exit 3)
// rather than delete them." Leave out each column in turn from the
// README's cron line: every run must be refused, and no file a row
// references may go. (The QR column is the exception today: --qr-age,
// on by default, exempts qr_codes/** from the coverage guard, and the
// orphan check deletes every QR code older than a day that rows still
// reference.)
func TestRedteamEachMissingColumnIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range appdb.FileColumns {
		t.Run(c.Column, func(t *testing.T) {
			t.Parallel()
			root, db, orphans := appData(t)
			before := listAll(t, root)
			r := runCmd(t, without(readmeCron(t, root, db), "SELECT "+c.Column+" FROM "+c.Table)...)
			assert.Equal(t, exitRefused, r.code, r.stderr)
			assert.Empty(t, lost(before, listAll(t, root), orphans), "referenced files deleted")
		})
	}
}

// The README's cron line gives the command every reference query,
// users.qr_code included; a QR code a row still references (the webapp
// expires codes through their rows on its own schedule, which need not be
// the cron's) is older than --qr-age. The run must not leave that row
// pointing at nothing: the sweep has the references at hand.
func TestRedteamSweepKeepsQRCodesRowsReference(t *testing.T) {
	t.Parallel()
	root, db, orphans := appData(t)
	old := time.Now().Add(-10 * 24 * time.Hour)
	require.NoError(t, filepath.WalkDir(filepath.Join(root, "qr_codes"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			err = os.Chtimes(p, old, old)
		}
		return err
	}))
	before := listAll(t, root)
	r := runCmd(t, readmeCron(t, root, db)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, lost(before, listAll(t, root), orphans), "referenced files deleted")
}

// lost returns the files of before, other than orphans, missing after.
func lost(before, after, orphans []string) []string {
	var out []string
	for _, p := range before {
		if !slices.Contains(orphans, p) && !slices.Contains(after, p) {
			out = append(out, p)
		}
	}
	return out
}

// Guard settings that are not numbers in range must be usage errors, not
// a silently disabled guard: --max-fraction NaN passes the 0..1 check
// (every comparison with NaN is false) and turns the fraction limit off;
// a negative --max-delete is taken as "no limit".
func TestRedteamGuardFlagsOutOfRange(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		// Each pair: a setting that is refused (TestGuardsAndErrorsChangeNothing),
		// then a broken value for the same flag, which must not mean "no limit".
		{"--max-fraction", "0.1", "--max-fraction", "NaN"},
		{"--max-fraction", "0.1", "--max-fraction", "nan"},
		{"--max-delete", "1", "--max-delete", "-1"},
	} {
		t.Run(strings.Join(args[2:], "="), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.files(t)
			r := runCmd(t, f.orphanArgs(append([]string{"--qr-age", "0"}, args...)...)...)
			assert.Equal(t, exitUsage, r.code, r.stdout+r.stderr)
			assert.Equal(t, before, f.files(t), "nothing may be deleted")
		})
	}
}

// With --json (the README's cron line appends it to a JSON log), a run a
// guard refuses still prints one JSON object on stdout: the plan, with the
// directories that made it refuse. Today stdout is empty and the log gets
// a line of text from stderr.
func TestRedteamJSONOnRefusal(t *testing.T) {
	t.Parallel()
	root, db, _ := appData(t)
	r := runCmd(t, "--root", root, "--check-orphans", "--db", "sqlite:"+db, "--refs-sql", "SELECT picture FROM users", "--json")
	require.Equal(t, exitRefused, r.code, r.stderr)
	var out map[string]any
	assert.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "stdout: %q", r.stdout)
}

// A FIFO no writer opens and a SIGTERM: the run stops, exits 1, deletes
// nothing and leaves no temporary copy.
func TestRedteamSignalWhileWaitingForRefsFIFO(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	fifo := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	cmd := exec.Command(binary, "--root", f.root, "--check-orphans", "--refs-file", fifo)
	require.NoError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, exitError, ee.ExitCode())
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the run did not stop on SIGTERM")
	}
	assert.Equal(t, before, f.files(t))
}

// A references file in UTF-16 (a Windows export) holds no valid
// reference: the run is refused (exit 3), nothing is deleted.
func TestRedteamUTF16RefsFileIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	var b []byte
	b = append(b, 0xff, 0xfe)
	for _, c := range "profile_pics/ref.jpg\r\nqr_codes/1/new.png\r\nforum_images/a.png\r\n" {
		b = append(b, byte(c), 0)
	}
	refs := filepath.Join(t.TempDir(), "refs.txt")
	require.NoError(t, os.WriteFile(refs, b, 0o644))
	r := runCmd(t, "--root", f.root, "--qr-age", "0", "--check-orphans", "--refs-file", refs)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Equal(t, before, f.files(t))
}

// --quarantine names a folder that is a link out of the root: nothing is
// written outside, no orphan is lost, and the run reports an error.
func TestRedteamQuarantineLinkOut(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	trash := t.TempDir()
	require.NoError(t, os.Symlink(trash, filepath.Join(f.root, "trash")))
	before := f.files(t)
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", "trash", "--force")...)
	assert.NotEqual(t, exitOK, r.code, r.stdout+r.stderr)
	ents, err := os.ReadDir(trash)
	require.NoError(t, err)
	assert.Empty(t, ents)
	assert.Equal(t, before, f.files(t))
	f.outsideIntact(t)
}

// An operator adds a long retention rule for receipts (kept ten years by
// law) to the README's cron line, and the receipts query goes missing.
// The rule's glob silently exempts donation_receipts/ from the coverage
// guard, so instead of a refusal every receipt older than a day is
// deleted as an orphan, 3650 days early.
func TestRedteamRetentionRuleDisablesCoverage(t *testing.T) {
	t.Parallel()
	root, db, orphans := appData(t)
	before := listAll(t, root)
	args := append(without(readmeCron(t, root, db), "SELECT receipt FROM donations"), "--rule", "donation_receipts/**=3650d")
	r := runCmd(t, args...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	assert.Empty(t, lost(before, listAll(t, root), orphans), "referenced files deleted")
}
