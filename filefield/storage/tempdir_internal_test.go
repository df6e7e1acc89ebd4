package storage

import (
	"os"
	"runtime"
	"testing"
)

// TestPickTempDir: /var/tmp is chosen only over a temporary directory held
// in memory, and only when it is itself writable and on a disk.
func TestPickTempDir(t *testing.T) {
	mem := map[string]bool{"/tmp": true, "/shm": true}
	inMem := func(d string) bool { return mem[d] }
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	for _, tc := range []struct {
		tmp, alt string
		writable func(string) bool
		want     string
	}{
		{"/tmp", "/var/tmp", yes, "/var/tmp"}, // tmpfs /tmp, disk /var/tmp
		{"/tmp", "/var/tmp", no, "/tmp"},      // /var/tmp not writable
		{"/tmp", "/shm", yes, "/tmp"},         // both in memory
		{"/disk", "/var/tmp", yes, "/disk"},   // /tmp on a disk already
		{"/disk", "/var/tmp", no, "/disk"},    // idem
		{"/shm", "/var/tmp", yes, "/var/tmp"}, // any directory in memory
		{"/tmp", "/nonexistent", no, "/tmp"},  // no /var/tmp
		{"/disk", "/shm", yes, "/disk"},       // never to memory
		{"/tmp", "/var/tmp", func(d string) bool { return d == "/tmp" }, "/tmp"},
	} {
		if got := pickTempDir(tc.tmp, tc.alt, inMem, tc.writable); got != tc.want {
			t.Errorf("pickTempDir(%q, %q) = %q, want %q", tc.tmp, tc.alt, got, tc.want)
		}
	}
}

// TestTempDirOnThisMachine: $TMPDIR wins; the result is an existing
// directory; on Linux, /dev/shm is seen as in memory, and the result is
// not in memory while /var/tmp is a writable disk directory.
func TestTempDirOnThisMachine(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	if got := TempDir(); got != os.Getenv("TMPDIR") {
		t.Errorf("TempDir() = %q with TMPDIR=%q", got, os.Getenv("TMPDIR"))
	}
	t.Setenv("TMPDIR", "")
	fi, err := os.Stat(TempDir())
	if err != nil || !fi.IsDir() {
		t.Fatalf("TempDir() = %q: %v", TempDir(), err)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Fatalf("this Linux machine has no /dev/shm to check inMemory against: %v", err)
	}
	if !inMemory("/dev/shm") {
		t.Error("/dev/shm is not seen as in memory")
	}
	if !writableDir(t.TempDir()) || writableDir("/nonexistent") || writableDir("/proc/self/status") {
		t.Error("writableDir is wrong")
	}
	if inMemory(TempDir()) && writableDir("/var/tmp") && !inMemory("/var/tmp") {
		t.Errorf("TempDir() = %q, in memory, while /var/tmp is on a disk", TempDir())
	}
}

// TestCreateTemp: a TempFile can be written and read back, leaves no name
// in its directory (unlinked at once on Unix, at Close elsewhere), and
// fails in a directory that cannot hold it.
func TestCreateTemp(t *testing.T) {
	dir := t.TempDir()
	f, err := CreateTemp(dir, "scratch-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("runs"), 0); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "runs" {
		t.Fatalf("read back %q, %v", b, err)
	}
	left, _ := os.ReadDir(dir)
	if runtime.GOOS != "windows" && len(left) > 0 {
		t.Errorf("not unlinked at once: %v", left)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := CreateTemp(dir+"/missing", "scratch-*"); err == nil {
		t.Error("created in a missing directory")
	}
}
