package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/sweep"
)

// Flags read as users expect: an invalid glob or age is a usage error,
// not a panic; 0 turns a limit off for --max-fraction as for --min-age
// and --max-delete; ages read 7d, 2w and 36h everywhere.
func TestFlagValues(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{
		{"--rule", "[=7d"},
		{"--rule", "tmp/**=0"},
		{"--rule", "tmp/**=-1d"},
		{"--rule", "qr_codes/keep/**=30d"}, // after --qr-age's qr_codes/**: never applies
		{"--min-age", "7x"},
		{"--qr-age", "-1"},
		{"--purge-after", "soon", "--quarantine", "t"},
		{"--unreferenced", "{", "--check-orphans", "--refs-file", "x"},
	} {
		f := newFixture(t)
		r := runCmd(t, append([]string{"--root", f.root}, bad...)...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", bad, r.stderr)
		assert.NotContains(t, r.stderr, "panic", "%q", bad)
	}
	f := newFixture(t)
	// profile_pics/orphan.jpg is 1 of 6 files: over a fraction of 0.1,
	// and 0 means no limit.
	r := runCmd(t, f.orphanArgs("--max-fraction", "0.1", "--qr-age", "0")...)
	assert.Equal(t, exitRefused, r.code, r.stderr)
	r = runCmd(t, f.orphanArgs("--max-fraction", "0", "--qr-age", "7", "--min-age", "2d")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")
	assert.NotContains(t, f.files(t), "qr_codes/1/old.png", "--qr-age 7 counts days")
}

// --dry-run applies to --restore and --purge-after: nothing moves.
func TestDryRunRestoreAndPurge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", "trash")...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var run string
	_, err := fmt.Sscanf(r.stdout[bytes.Index([]byte(r.stdout), []byte("Quarantine run: ")):], "Quarantine run: %s", &run)
	require.NoError(t, err)
	before := f.files(t)
	r = runCmd(t, "--root", f.root, "--quarantine", "trash", "--restore", run, "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "would restore 2 files")
	assert.Equal(t, before, f.files(t))
	r = runCmd(t, "--root", f.root, "--quarantine", "trash", "--qr-age", "0", "--purge-after", "1s", "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, before, f.files(t))
}

// A deletion that fails is an error (exit 1), for the orphan check as for
// the sweep; a guard's refusal is 3; a stop by signal is 1.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]int{
		fmt.Errorf("x: %w", orphan.ErrDeleteFailed):                 exitError,
		fmt.Errorf("x: %w", sweep.ErrDeleteFailed):                  exitError,
		fmt.Errorf("x: %w", orphan.ErrUncovered):                    exitRefused,
		fmt.Errorf("x: %w", orphan.ErrNoReferences):                 exitRefused,
		fmt.Errorf("x: %w", orphan.ErrFractionLimit):                exitRefused,
		fmt.Errorf("%w: %w", orphan.ErrProvider, errors.New("db")):  exitRefused,
		fmt.Errorf("%w: %w", orphan.ErrProvider, contextCanceled()): exitError,
	} {
		assert.Equal(t, want, guardCode(err), "%v", err)
	}
}

func contextCanceled() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx.Err()
}
