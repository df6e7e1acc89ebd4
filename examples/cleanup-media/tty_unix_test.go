//go:build linux || darwin

package main

import (
	"bytes"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// terminal runs the command with stdin and stderr on a pseudo-terminal, as
// a person at a shell would, and stdout on a pipe. answer, when set, is
// typed once the screen shows prompt.
type terminal struct {
	screen bytes.Buffer // what the terminal received
	stdout bytes.Buffer
	code   int
}

func runOnTerminal(t *testing.T, prompt, answer string, args ...string) *terminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}))
	cmd := exec.Command(binary, args...)
	term := &terminal{}
	cmd.Stdin, cmd.Stderr, cmd.Stdout = tty, tty, &term.stdout
	require.NoError(t, cmd.Start())
	tty.Close()
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			term.screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	if prompt != "" {
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			seen := strings.Contains(term.screen.String(), prompt)
			mu.Unlock()
			if seen {
				break
			}
			require.True(t, time.Now().Before(deadline), "no prompt %q on the terminal", prompt)
			time.Sleep(10 * time.Millisecond)
		}
		_, err := io.WriteString(ptmx, answer)
		require.NoError(t, err)
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		term.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	ptmx.Close()
	<-done
	return term
}

// A bigger tree, so that the progress line has something to count.
func bigTree(t *testing.T) fixture {
	f := newFixture(t)
	fsys, err := rootfs.New(f.root)
	require.NoError(t, err)
	defer fsys.Close()
	old := time.Now().Add(-72 * time.Hour)
	for i := range 3000 {
		storagetest.WriteFile(t, fsys, "profile_pics/bulk/"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+"-"+strconv.Itoa(i)+".jpg", []byte("x"), old)
	}
	return f
}

// The progress display: on stderr when it is a terminal, with the phase
// and a count; cleared at the end, so the screen's last line is the
// shell's again. Nothing of it reaches stdout.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	f := bigTree(t)
	term := runOnTerminal(t, "", "", f.orphanArgs("--dry-run", "--max-fraction", "0", "--qr-age", "0")...)
	require.Equal(t, 0, term.code, term.screen.String())
	screen := term.screen.String()
	assert.Contains(t, screen, "finding orphans")
	assert.Regexp(t, `finding orphans \(\d+, \d+ files/s\)`, screen, "a count and its rate")
	last := strings.LastIndex(screen, "finding orphans")
	assert.Contains(t, screen[last:], "\033[2K\r", "the line is cleared after its last update")
	assert.Empty(t, strings.TrimSpace(visibleTail(screen)), "nothing of the progress stays on screen")
	assert.NotContains(t, term.stdout.String(), "\033", "no escape codes on stdout")
	assert.Contains(t, term.stdout.String(), "Orphaned files: 3002")

	// --progress never, or stderr on a pipe: no progress at all.
	term = runOnTerminal(t, "", "", f.orphanArgs("--dry-run", "--max-fraction", "0", "--qr-age", "0", "--progress", "never")...)
	require.Equal(t, 0, term.code)
	assert.NotContains(t, term.screen.String(), "finding orphans")
	r := runCmd(t, f.orphanArgs("--dry-run", "--max-fraction", "0", "--qr-age", "0")...)
	assert.NotContains(t, r.stderr, "finding orphans")
	assert.NotContains(t, r.stderr, "\033")
}

// visibleTail is what stays on the terminal's last line: the text after
// the last line clear or carriage return.
func visibleTail(s string) string {
	if i := strings.LastIndexAny(s, "\r\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// On a terminal a real orphan deletion asks first: "n" (or anything but
// y) deletes nothing, not even the sweep's files; "y" goes on; --yes and
// a non-terminal stdin do not ask.
func TestConfirmationOnTerminal(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	term := runOnTerminal(t, "[y/N]", "n\n", f.orphanArgs()...)
	assert.Equal(t, exitError, term.code)
	screen := term.screen.String()
	assert.Contains(t, screen, "found 2 files (500 B)")
	assert.Contains(t, screen, "profile_pics")
	assert.Contains(t, screen, "not confirmed, nothing deleted")
	assert.Equal(t, before, f.files(t), "declined: nothing deleted, not even by the sweep")

	term = runOnTerminal(t, "[y/N]", "y\n", f.orphanArgs()...)
	assert.Equal(t, 0, term.code, term.screen.String())
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")

	f = newFixture(t)
	term = runOnTerminal(t, "", "", f.orphanArgs("--yes")...)
	assert.Equal(t, 0, term.code, term.screen.String())
	assert.NotContains(t, term.screen.String(), "[y/N]")
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")

	f = newFixture(t)
	r := runCmd(t, f.orphanArgs()...) // stdin not a terminal: cron
	assert.Equal(t, 0, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "[y/N]")
	assert.NotContains(t, f.files(t), "profile_pics/orphan.jpg")
}
