package sqltest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest/debian"
)

// serverUser is the system user the servers run as when the tests run as
// root: PostgreSQL refuses to run as root.
const serverUser = "mediaclean-test"

// account is the user a server runs as; nil means the current user.
type account struct {
	name     string
	uid, gid int
}

// serverAccount returns the user the servers run as: nil (the current
// user) unless the tests run as root, then serverUser, created on first use.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(serverUser)
	if err != nil {
		err = debian.WithLock(func() error {
			if u, err = user.Lookup(serverUser); err == nil {
				return nil // another test binary created it meanwhile
			}
			if _, err := exec.LookPath("useradd"); err != nil {
				return fmt.Errorf("running as root, and there is no useradd to create the system user %s the servers run as: create it, or run the tests as another user", serverUser)
			}
			fmt.Fprintf(os.Stderr, "sqltest: creating system user %s to run the database servers (PostgreSQL refuses to run as root)\n", serverUser)
			out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
				"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", serverUser).CombinedOutput()
			if err != nil {
				return fmt.Errorf("useradd %s: %w\n%s", serverUser, err, out)
			}
			u, err = user.Lookup(serverUser)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: uid %q, gid %q", serverUser, u.Uid, u.Gid)
	}
	return &account{name: serverUser, uid: uid, gid: gid}, nil
}

// configure makes cmd run as acct and receive sig when the test binary
// ends (Pdeathsig), even if it is killed. The kernel sends sig when the
// thread that started cmd ends; Go ends a thread only when a goroutine
// locked to it (runtime.LockOSThread) returns, which the callers do not do.
// The credentials change before Pdeathsig is set, so the change does not
// clear it.
func configure(cmd *exec.Cmd, acct *account, sig syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: sig}
	if acct != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(acct.uid), Gid: uint32(acct.gid), Groups: []uint32{}}
	}
}

// processAlive reports whether process pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
