package sqltest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// product is a database server the tests need from the system.
type product struct {
	name    string                  // PostgreSQL, MariaDB
	pkg     string                  // its Debian package
	service string                  // the system service the package installs
	looked  string                  // where find looks, for the error message
	find    func() ([]string, bool) // its programs, if installed
}

// debianInstall is the command that installs both servers on Debian or
// Ubuntu.
const debianInstall = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql mariadb-server"

// installCommand returns the command a person should run to install the
// servers.
func installCommand() string {
	if os.Geteuid() == 0 {
		return debianInstall
	}
	return "sudo " + debianInstall
}

// canInstall reports whether the tests can install the servers themselves:
// as root on Debian (or a derivative) with apt-get.
func canInstall() bool {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}

// binaries returns p's programs, installing its package first when they
// are missing and canInstall.
func (p *product) binaries() ([]string, error) {
	if bins, ok := p.find(); ok {
		return bins, nil
	}
	if !canInstall() {
		how := "install it with:\n\t" + installCommand()
		if _, err := os.Stat("/etc/debian_version"); err != nil {
			how = "install PostgreSQL and MariaDB with the system's package manager so that these programs are on PATH; on Debian or Ubuntu:\n\t" + installCommand()
		}
		return nil, fmt.Errorf("%s not found (looked for %s); %s", p.name, p.looked, how)
	}
	if err := install(); err != nil {
		return nil, err
	}
	if bins, ok := p.find(); ok {
		return bins, nil
	}
	return nil, fmt.Errorf("%s not found after installing package %s (looked for %s)", p.name, p.pkg, p.looked)
}

// install installs the packages of the servers that are missing, with
// apt-get, under a lock file so that test binaries running in parallel
// install them once. The packages' own services are kept from starting.
func install() error {
	return withLock(func() error {
		var missing []*product
		for _, p := range []*product{&postgresql, &mariadb} {
			if _, ok := p.find(); !ok {
				missing = append(missing, p) // still missing: no other test binary installed it meanwhile
			}
		}
		if len(missing) == 0 {
			return nil
		}
		var pkgs []string
		for _, p := range missing {
			pkgs = append(pkgs, p.pkg)
		}
		fmt.Fprintf(os.Stderr, "sqltest: installing %s with apt-get for the database tests (once; about a minute)...\n", strings.Join(pkgs, " "))
		began := time.Now()
		restore, err := denyServiceStarts()
		if err != nil {
			return err
		}
		defer restore()
		args := append([]string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, pkgs...)
		out, err := aptGet(args...)
		if err != nil && needsUpdate(out) {
			fmt.Fprintln(os.Stderr, "sqltest: apt-get update (the package lists are missing or stale)...")
			if out, err := aptGet("update"); err != nil {
				return fmt.Errorf("apt-get update: %w\n%s", err, lastLines(out, 20))
			}
			out, err = aptGet(args...)
		}
		stopServices(missing)
		if err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(pkgs, " "), err, lastLines(out, 20))
		}
		fmt.Fprintf(os.Stderr, "sqltest: installed %s in %v\n", strings.Join(pkgs, " "), time.Since(began).Round(time.Second))
		return nil
	})
}

func aptGet(args ...string) ([]byte, error) {
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd.CombinedOutput()
}

// needsUpdate reports whether apt-get failed for lack of (current) package
// lists, which apt-get update fixes.
func needsUpdate(out []byte) bool {
	for _, s := range []string{"Unable to locate package", "has no installation candidate", "Failed to fetch"} {
		if bytes.Contains(out, []byte(s)) {
			return true
		}
	}
	return false
}

const policyRC = "/usr/sbin/policy-rc.d"

// denyServiceStarts installs a policy-rc.d that forbids starting services
// (exit status 101), so that the packages' maintainer scripts do not start
// PostgreSQL and MariaDB as system services, and returns the function that
// removes it. An existing policy-rc.d (Debian's container images ship one
// that does the same) is left as it is.
func denyServiceStarts() (restore func(), err error) {
	if _, err := os.Lstat(policyRC); err == nil {
		return func() {}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	const script = "#!/bin/sh\n# Written by mediaclean's sqltest while it installs database packages; removed after.\nexit 101\n"
	if err := os.WriteFile(policyRC, []byte(script), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", policyRC, err)
	}
	return func() { os.Remove(policyRC) }, nil
}

// stopServices stops the system services of the packages just installed,
// in case something started them despite policy-rc.d: the tests run their
// own servers, and nothing should keep running after them.
func stopServices(installed []*product) {
	if _, err := exec.LookPath("service"); err != nil {
		return
	}
	for _, p := range installed {
		exec.Command("service", p.service, "stop").Run()
	}
}

// withLock runs fn holding an exclusive lock on a file in the temporary
// folder, shared by every test binary of the machine.
func withLock(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "mediaclean-sqltest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	defer unlockFile(f)
	return fn()
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
