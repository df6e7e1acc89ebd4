package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/sweep"
)

// A --refs-file that is a FIFO no writer opens does not hang the command:
// SIGTERM stops it promptly, deleting nothing. A pipe that does deliver
// is read once and serves both the plan and its re-check.
func TestRefsFileFIFOAndSignals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	fifo := filepath.Join(t.TempDir(), "refs.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	cmd := exec.Command(binary, "--root", f.root, "--check-orphans", "--refs-file", fifo)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	assert.Less(t, time.Since(start), 5*time.Second, "SIGTERM took too long")
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "the command ended with %v", err)
	assert.Equal(t, exitError, ee.ExitCode(), errb.String())
	assert.Equal(t, before, f.files(t), "nothing deleted")

	// The same FIFO, fed by a writer: it works.
	refs := "qr_codes/1/new.png\nprofile_pics/ref.jpg\n/forum_images/a.png\n"
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			w.WriteString(refs)
			w.Close()
		}
	}()
	r := runCmd(t, "--root", f.root, "--qr-age", "0", "--check-orphans", "--refs-file", fifo, "--max-fraction", "0")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")
	assert.Contains(t, f.files(t), "profile_pics/ref.jpg")
}

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
