package sqltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

var postgresql = product{
	name:    "PostgreSQL",
	pkg:     "postgresql",
	service: "postgresql",
	looked:  "initdb and postgres on PATH or in /usr/lib/postgresql/*/bin",
	find:    findPostgres,
}

// findPostgres returns initdb and postgres of one installation: the initdb
// on PATH and the postgres beside it, or else those of the newest major
// version in Debian's /usr/lib/postgresql/<major>/bin.
func findPostgres() ([]string, bool) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r // /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(debian, func(i, j int) bool { return major(debian[i]) > major(debian[j]) })
	for _, dir := range append(dirs, debian...) {
		initdb, err1 := exec.LookPath(filepath.Join(dir, "initdb"))
		postgres, err2 := exec.LookPath(filepath.Join(dir, "postgres"))
		if err1 == nil && err2 == nil {
			return []string{initdb, postgres}, true
		}
	}
	return nil, false
}

// postgresConf is appended to postgresql.conf: loopback TCP only, no unix
// socket, durability traded for speed, small memory, no background work
// the tests do not need.
const postgresConf = `
# mediaclean sqltest
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 1GB
shared_buffers = 32MB
max_connections = 100
autovacuum = off
timezone = 'UTC'
log_min_messages = warning
`

func startPostgres() (*Server, error) {
	bins, err := postgresql.binaries()
	if err != nil {
		return nil, err
	}
	initdb, postgres := bins[0], bins[1]
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	dir, err := newDir("postgres", acct)
	if err != nil {
		return nil, err
	}
	s := &Server{Name: "postgres", Driver: "pgx", User: superuser, Password: randomPassword(), Dir: dir, adminDB: "postgres", stopSig: syscall.SIGQUIT}
	if err := s.initPostgres(acct, initdb); err != nil {
		removeOwn(dir)
		return nil, fmt.Errorf("postgres: %w", err)
	}
	data := filepath.Join(dir, "data")
	args := func(port int) []string { return []string{"-D", data, "-p", strconv.Itoa(port)} }
	if err := s.launch(acct, filepath.Join(dir, "server.log"), postgres, args, s.connect); err != nil {
		s.stop()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.Startup = time.Since(began)
	return s, nil
}

// initPostgres creates the data directory: superuser s.User with password
// authentication, UTF-8 with the C locale (byte order, as Go compares
// strings), no fsync.
func (s *Server) initPostgres(acct *account, initdb string) error {
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := writeFile(pwfile, s.Password+"\n", acct); err != nil {
		return err
	}
	defer removeOwn(pwfile)
	data := filepath.Join(s.Dir, "data")
	if err := runInit(s.Dir, acct, filepath.Join(s.Dir, "initdb.log"), initdb,
		"-D", data, "-U", s.User, "--pwfile", pwfile, "--auth", "scram-sha-256",
		"--encoding", "UTF8", "--locale", "C", "--no-sync"); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(postgresConf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
