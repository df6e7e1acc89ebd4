package main

// Audit S13: black-box checks of README claims about the command, run on
// the built binary (runCmd) only.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --qr-age defaults to 7 days, as the seed's command does: a run naming
// only --root sweeps qr_codes/** older than that, and --qr-age 0 turns it
// off. The README now says so (it showed "--qr-age 7d" only as an
// example until session 13).
func TestS13BareRootSweepsQRCodesAtSevenDays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, "--root", f.root, "--qr-age", "0")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "nothing to do")
	assert.Contains(t, f.files(t), "qr_codes/1/old.png", "--qr-age 0: no sweep")
	r = runCmd(t, "--root", f.root)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, f.files(t), "qr_codes/1/old.png", "the default: 7 days")
	assert.Contains(t, f.files(t), "qr_codes/1/new.png")
	h := runCmd(t, "--help")
	assert.Contains(t, h.stdout+h.stderr, "(default 7d)")
}

// README: with references given (and no --check-orphans), the age rules
// keep every file a row references.
func TestS13SweepKeepsReferencedWithoutOrphanCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, "--root", f.root, "--qr-age", "1h", "--db", "sqlite:"+f.db, "--refs-sql", "SELECT qr FROM users",
		"--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT image FROM forum")
	require.Equal(t, exitOK, r.code, r.stderr)
	files := f.files(t)
	assert.Contains(t, files, "qr_codes/1/new.png", "referenced: kept")
	assert.NotContains(t, files, "qr_codes/1/old.png")
	f.outsideIntact(t)
}

// Usage errors (exit 2), nothing changed.
func TestS13UsageErrors(t *testing.T) {
	t.Parallel()
	for name, args := range map[string]func(f fixture) []string{
		"root slash":        func(f fixture) []string { return []string{"--root", "/", "--dry-run"} },
		"quarantine slash":  func(f fixture) []string { return f.orphanArgs("--quarantine", "/") },
		"quarantine dotdot": func(f fixture) []string { return f.orphanArgs("--quarantine", "../x") },
		"six m":             func(f fixture) []string { return f.orphanArgs("--min-age", "6m") },
		"qr-age 12m":        func(f fixture) []string { return []string{"--root", f.root, "--qr-age", "12m"} },
		"rule of age 0":     func(f fixture) []string { return []string{"--root", f.root, "--rule", "qr_codes/**=0"} },
		"root twice":        func(f fixture) []string { return []string{"--root", f.root, "--root", f.root} },
		"max-fraction 2":    func(f fixture) []string { return f.orphanArgs("--max-fraction", "2") },
		"quarantine empty":  func(f fixture) []string { return f.orphanArgs("--quarantine", "") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.files(t)
			r := runCmd(t, append(args(f), "--json")...)
			assert.Equal(t, exitUsage, r.code, "stderr: %s", r.stderr)
			var out struct {
				Error *struct {
					ExitCode int    `json:"exit_code"`
					Message  string `json:"message"`
				} `json:"error"`
			}
			if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "stdout: %q", r.stdout) && assert.NotNil(t, out.Error) {
				assert.Equal(t, exitUsage, out.Error.ExitCode)
			}
			assert.Equal(t, before, f.files(t))
		})
	}
}

// Refusals (exit 3) delete nothing, not even the QR codes the age rule
// would take: an empty refs file (blank lines, a BOM), and a missing
// column (coverage guard, qr_codes not exempt).
func TestS13RefusalsKeepQRCodes(t *testing.T) {
	t.Parallel()
	for name, args := range map[string]func(f fixture, dir string) []string{
		"blank refs file": func(f fixture, dir string) []string {
			p := filepath.Join(dir, "refs.txt")
			require.NoError(t, os.WriteFile(p, []byte("\ufeff\r\n\n  \n"), 0o644))
			return []string{"--root", f.root, "--check-orphans", "--refs-file", p}
		},
		"missing qr column": func(f fixture, dir string) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "sqlite:" + f.db, "--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT image FROM forum", "--max-fraction", "0"}
		},
		"semicolon query": func(f fixture, dir string) []string {
			return []string{"--root", f.root, "--check-orphans", "--db", "sqlite:" + f.db, "--refs-sql", "SELECT picture FROM users; SELECT qr FROM users"}
		},
		"file gives none beside a query": func(f fixture, dir string) []string {
			p := filepath.Join(dir, "empty.txt")
			require.NoError(t, os.WriteFile(p, nil, 0o644))
			return append(f.orphanArgs(), "--refs-file", p)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			before := f.files(t)
			r := runCmd(t, args(f, t.TempDir())...)
			assert.Equal(t, exitRefused, r.code, "stderr: %s", r.stderr)
			assert.Equal(t, before, f.files(t), "nothing deleted, not even qr_codes/1/old.png")
			f.outsideIntact(t)
		})
	}
}

// --min-age 0 turns the grace period off: the young unreferenced file is
// then an orphan (dry run).
func TestS13MinAgeZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--min-age", "0", "--dry-run", "--json", "--qr-age", "0")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "profile_pics/young.jpg")
}
