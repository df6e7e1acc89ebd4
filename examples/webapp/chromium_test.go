package main

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest/debian"
)

// The browser tests drive Debian's Chromium. The setup finds it, or
// installs it when it runs as root on Debian (as the database tests do
// with their servers, and .ci/run does first); anywhere else a missing
// Chromium fails the tests with the command that installs it. They never
// skip: a green run means the pages were tested in a browser.
var chromium struct {
	once sync.Once
	path string
	err  error
}

// chromiumPath returns the Chromium program, installing it first if it
// is missing and the test may; else the test fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	chromium.once.Do(func() {
		pkg := debian.Package{Name: "chromium", Installed: func() bool { _, ok := findChromium(); return ok }}
		if chromium.err = debian.Ensure("webapp browser tests", pkg); chromium.err == nil {
			chromium.path, _ = findChromium()
		}
	})
	if chromium.err != nil {
		t.Fatalf("the browser tests need Chromium (looked for /usr/bin/chromium and chromium on PATH): %v", chromium.err)
	}
	return chromium.path
}

// findChromium looks for /usr/bin/chromium, then chromium on PATH.
func findChromium() (string, bool) {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return "/usr/bin/chromium", true
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, true
	}
	return "", false
}
