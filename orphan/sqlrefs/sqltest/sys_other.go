//go:build !linux

package sqltest

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// account is the user a server runs as; nil means the current user.
type account struct {
	name     string
	uid, gid int
}

// serverAccount returns nil, the current user. Outside Linux the servers
// do not change user, so the tests must not run as root.
func serverAccount() (*account, error) {
	if os.Geteuid() == 0 {
		return nil, errors.New("running as root: PostgreSQL refuses to run as root; run the tests as an unprivileged user")
	}
	return nil, nil
}

// configure does nothing outside Linux: there is no Pdeathsig, so a server
// outlives a test binary that is killed (StopAll still stops it).
func configure(cmd *exec.Cmd, acct *account, sig syscall.Signal) {}

// processAlive reports true: outside Linux, removeStale removes nothing.
func processAlive(pid int) bool { return true }
