// Package debian finds or installs the Debian packages that mediaclean's
// tests need from the system: the PostgreSQL and MariaDB servers that
// sqltest starts, and the Chromium that the example app's browser tests
// drive.
//
// The tests never skip for want of them. [Ensure] installs what is
// missing when it can (as root on Debian or a derivative, with apt-get)
// and otherwise returns an error that names the one command that would
// install it. Installs from parallel test binaries are serialised by a
// lock file, and a package's own system service is kept from starting:
// the tests run private servers of their own.
package debian

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

// Package is a Debian package a test needs.
type Package struct {
	// Name is the package's name ("postgresql", "chromium").
	Name string
	// Service is the system service the package starts, if any; it is
	// kept from starting, and stopped if it started anyway.
	Service string
	// Installed reports whether what the test needs from the package is
	// on this machine.
	Installed func() bool
}

// InstallCommand returns the command a person should run to install pkgs,
// with sudo when the tests do not run as root.
func InstallCommand(pkgs ...Package) string {
	cmd := "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + strings.Join(names(pkgs), " ")
	if os.Geteuid() != 0 {
		cmd = "sudo " + cmd
	}
	return cmd
}

// CanInstall reports whether Ensure may install packages itself: as root
// on Debian (or a derivative) with apt-get.
func CanInstall() bool {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		return false
	}
	_, err := exec.LookPath("apt-get")
	return err == nil
}

// Ensure installs those of pkgs that are not installed, when CanInstall,
// under a lock shared by every test binary of the machine; who names the
// caller in the lines it prints to stderr while it installs. It returns
// nil if every package is installed at the end, and otherwise an error
// that ends with the command that installs them.
func Ensure(who string, pkgs ...Package) error {
	if len(missing(pkgs)) == 0 {
		return nil
	}
	if !CanInstall() {
		how := "install them with:"
		if _, err := os.Stat("/etc/debian_version"); err != nil {
			how = "install them with the system's package manager; on Debian or Ubuntu:"
		}
		return fmt.Errorf("missing Debian packages: %s; %s\n\t%s", strings.Join(names(missing(pkgs)), " "), how, InstallCommand(pkgs...))
	}
	err := WithLock(func() error {
		todo := missing(pkgs) // another test binary may have installed them meanwhile
		if len(todo) == 0 {
			return nil
		}
		return install(who, todo)
	})
	if err != nil {
		return fmt.Errorf("%w\ninstall them with:\n\t%s", err, InstallCommand(pkgs...))
	}
	if left := missing(pkgs); len(left) > 0 {
		return fmt.Errorf("still missing after apt-get installed packages %s", strings.Join(names(left), " "))
	}
	return nil
}

func missing(pkgs []Package) []Package {
	var out []Package
	for _, p := range pkgs {
		if !p.Installed() {
			out = append(out, p)
		}
	}
	return out
}

func names(pkgs []Package) []string {
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.Name
	}
	return out
}

// install runs apt-get install, and when that fails for lack of (current)
// package lists, apt-get update and the install again. Services the
// packages would start are denied with a policy-rc.d, and stopped after.
func install(who string, pkgs []Package) error {
	list := strings.Join(names(pkgs), " ")
	fmt.Fprintf(os.Stderr, "%s: installing %s with apt-get (once; a minute or two)...\n", who, list)
	began := time.Now()
	restore, err := denyServiceStarts()
	if err != nil {
		return err
	}
	defer restore()
	args := append([]string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, names(pkgs)...)
	out, err := aptGet(args...)
	if err != nil && needsUpdate(out) {
		fmt.Fprintf(os.Stderr, "%s: apt-get update (the package lists are missing or stale)...\n", who)
		if out, err := aptGet("update"); err != nil {
			return fmt.Errorf("apt-get update: %w\n%s", err, lastLines(out, 20))
		}
		out, err = aptGet(args...)
	}
	stopServices(pkgs)
	if err != nil {
		return fmt.Errorf("apt-get install %s: %w\n%s", list, err, lastLines(out, 20))
	}
	fmt.Fprintf(os.Stderr, "%s: installed %s in %v\n", who, list, time.Since(began).Round(time.Second))
	return nil
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
// (exit status 101), so that the packages' maintainer scripts start no
// system service, and returns the function that removes it. An existing
// policy-rc.d (Debian's container images ship one that does the same) is
// left as it is.
func denyServiceStarts() (restore func(), err error) {
	if _, err := os.Lstat(policyRC); err == nil {
		return func() {}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	const script = "#!/bin/sh\n# Written by mediaclean's tests while they install packages; removed after.\nexit 101\n"
	if err := os.WriteFile(policyRC, []byte(script), 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", policyRC, err)
	}
	return func() { os.Remove(policyRC) }, nil
}

// stopServices stops the system services of the packages just installed,
// in case something started them despite policy-rc.d: nothing should keep
// running after the tests.
func stopServices(pkgs []Package) {
	if _, err := exec.LookPath("service"); err != nil {
		return
	}
	for _, p := range pkgs {
		if p.Service != "" {
			_ = exec.Command("service", p.Service, "stop").Run()
		}
	}
}

// WithLock runs fn holding the exclusive lock that Ensure installs under
// (a file in the temporary folder, shared by every test binary of the
// machine), for other changes to the system that tests make once, such as
// creating a system user.
func WithLock(fn func() error) error {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "mediaclean-debian-install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
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
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
