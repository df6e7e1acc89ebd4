package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainArgsEnv makes the test binary run main with these arguments
// (one a line), as the built program would.
const mainArgsEnv = "WEBAPP_TEST_MAIN_ARGS"

// runMain runs the program with args until it exits or ctx ends, and
// returns its exit code, stdout and stderr.
func runMain(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join(args, "\n"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// A taken port is a failure to start, said plainly, with exit code 1:
// nothing claims the server runs, and the data folder is not touched.
func TestTakenPortExitsWithMessage(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	data := t.TempDir()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	code, stdout, stderr := runMain(t, ctx, "-addr", taken.Addr().String(), "-data", data)
	t.Logf("exit %d after %v; stderr: %s", code, time.Since(start), stderr)
	require.NoError(t, ctx.Err(), "the program must exit, not serve")
	assert.Equal(t, 1, code)
	assert.NotContains(t, stdout, "running")
	assert.Contains(t, stderr, taken.Addr().String())
	assert.Contains(t, stderr, "already in use")
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	assert.Empty(t, entries, "the port is checked before the database and media folder are opened")
}

// run says the server runs once it listens, with the port it got, serves
// the application, and stops cleanly when its context ends.
func TestRunListensThenSaysSo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	cfg := config{addr: "127.0.0.1:0", data: t.TempDir(), qrAge: time.Hour, sweepEvery: time.Hour}
	go func() { done <- run(ctx, cfg, pw); pw.Close() }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`running: open (http://127\.0\.0\.1:\d+/) `).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	assert.NotContains(t, m[1], ":0/", "the line names the port the server got")
	resp, err := http.Get(m[1])
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

// The program with -allowed-hosts answers to those names, refuses others,
// and stops on SIGINT with code 0; a malformed -allowed-hosts is refused
// before the port is bound.
func TestProgramAllowedHostsAndInterrupt(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code, _, stderr := runMain(t, ctx, "-addr", "127.0.0.1:0", "-data", t.TempDir(), "-allowed-hosts", "http://x.example")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "-allowed-hosts")

	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+strings.Join([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir(), "-allowed-hosts", "media.example.org, box.lan"}, "\n"))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	m := regexp.MustCompile(`open (http://[^ ]+/) `).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	for host, want := range map[string]int{"media.example.org": http.StatusOK, "box.lan:80": http.StatusOK, "evil.example": http.StatusMisdirectedRequest} {
		req, err := http.NewRequest("GET", m[1], nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, host)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.NoError(t, cmd.Wait(), "SIGINT stops the program cleanly")
}
