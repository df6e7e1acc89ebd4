//go:build unix

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
