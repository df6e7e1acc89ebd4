package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// openFDs counts the process's open descriptors, less those of the
// database files (the pool keeps idle connections open, three files each).
func (e *env) openFDs() int {
	e.t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		e.t.Skip("no /proc/self/fd:", err)
	}
	n := 0
	for _, d := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + d.Name()); err != nil || !strings.HasPrefix(target, e.dbPath) {
			n++
		}
	}
	return n
}

// pendingFiles counts the temporary files of uploads in progress.
func (e *env) pendingFiles() int {
	n := 0
	for _, p := range storagetest.Files(e.t, e.fs) {
		if strings.HasPrefix(p[strings.LastIndex(p, "/")+1:], storage.TempPrefix) {
			n++
		}
	}
	return n
}

// stall opens n connections that each send the headers of an upload of
// 5 MiB and its first bytes, then nothing. It returns them and how many
// bytes they sent in all.
func (e *env) stall(n int, path string) ([]net.Conn, int64) {
	e.t.Helper()
	addr := e.ln.Addr().String()
	body := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.png\"\r\nContent-Type: image/png\r\n\r\n" +
		string(png("slow")) + strings.Repeat("x", 16<<10)
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n%s",
		path, addr, boundary, 5*mib, body)
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		require.NoError(e.t, err)
		e.t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, req)
		require.NoError(e.t, err)
		conns[i] = c
	}
	return conns, int64(n * len(req))
}

// Clients that send the start of an upload and then nothing hold no
// database handle or transaction while they stall (the file is read
// before the transaction opens), other uploads go through meanwhile, and
// the body timeout cuts them off: each gets its answer, and leaves no
// temporary file, no stored file, and no descriptor. Not parallel: it
// counts the process's descriptors and sets TMPDIR.
func TestStalledUploadsHoldNoTransactionAndAreCutOff(t *testing.T) {
	const n = 100
	const timeout = 2 * time.Second
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	e := newEnvConfig(t, func(c *config) { c.bodyTimeout = timeout })
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	e.inSync("setup")
	fds0 := e.openFDs()
	read0 := e.ln.read.Load()

	conns, sent := e.stall(n, "/files/picture/1")
	stalled := time.Now()
	require.Eventually(t, func() bool { return e.ln.read.Load()-read0 >= sent }, 10*time.Second, 5*time.Millisecond, "the server reads what they sent")
	require.Eventually(t, func() bool { return e.pendingFiles() == n }, 10*time.Second, 5*time.Millisecond, "every upload has begun")

	// While they stall.
	fds := e.openFDs() - fds0 - n // less the clients' own ends
	stats := e.db.Stats()
	t.Logf("%d stalled uploads: %d server descriptors (%.1f each), %d pending files, database: %d connections open, %d in use",
		n, fds, float64(fds)/n, e.pendingFiles(), stats.OpenConnections, stats.InUse)
	assert.LessOrEqual(t, stats.InUse, 1, "no transaction waits for a stalled body")
	assert.LessOrEqual(t, fds, 2*n+16, "a socket and the pending file each")

	start := time.Now()
	assert.Equal(t, http.StatusSeeOther, e.post("/files/picture/1", nil, png("fresh"), "fresh.png"), "an upload for the same row goes through")
	assert.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "bob"}, png("bob"), "bob.png"))
	t.Logf("two normal uploads meanwhile took %v", time.Since(start).Round(time.Millisecond))
	assert.Less(t, time.Since(start), timeout/2)

	// The timeout cuts them off: each gets an answer and is closed.
	var wg sync.WaitGroup
	after := make([]time.Duration, n)
	answers := make([]string, n)
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(stalled.Add(timeout + 10*time.Second))
			b, err := io.ReadAll(c)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return // still open: after[i] stays 0
			}
			after[i] = time.Since(stalled)
			answers[i], _, _ = strings.Cut(string(b), "\r\n")
		})
	}
	wg.Wait()
	slowest := time.Duration(0)
	for i := range after {
		assert.NotZero(t, after[i], "connection %d was never cut off", i)
		assert.Equal(t, "HTTP/1.1 408 Request Timeout", answers[i], "connection %d", i)
		slowest = max(slowest, after[i])
	}
	t.Logf("body timeout %v: all %d cut off within %v of stalling; answer %q", timeout, n, slowest.Round(time.Millisecond), answers[0])
	assert.Less(t, slowest, timeout+2*time.Second)

	for _, c := range conns {
		c.Close()
	}
	e.inSync("the stalled uploads were cut off") // no temporary or stored file left
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing in the temp folder")
	assert.Eventually(t, func() bool { return e.openFDs() <= fds0+4 }, 5*time.Second, 10*time.Millisecond, "their descriptors are closed")
	t.Logf("descriptors: %d before, %d after", fds0, e.openFDs())
	assert.Zero(t, e.db.Stats().InUse)
}
