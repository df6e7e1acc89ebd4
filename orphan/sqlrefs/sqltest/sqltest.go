package sqltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"go.uber.org/goleak"
)

// Server is a running database server owned by the test binary.
type Server struct {
	Name     string        // "postgres" or "mariadb"
	Driver   string        // the database/sql driver name: "pgx" or "mysql"
	Version  string        // the server's version, as SELECT version() reports it
	Addr     string        // 127.0.0.1:PORT
	User     string        // a superuser, for password authentication over TCP
	Password string        // random, per server
	Dir      string        // temporary folder holding the data directory and the logs
	Startup  time.Duration // how long initialising and starting the server took

	adminDB  string // the database the admin connection uses
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the server process has ended
	stopSig  syscall.Signal
	admin    *sql.DB
	dbs      atomic.Int64
	stopOnce sync.Once
}

const (
	startTimeout = 30 * time.Second // from starting the process to accepting connections
	initTimeout  = 2 * time.Minute  // initdb, mariadb-install-db
	stopTimeout  = 10 * time.Second // from the stop signal to SIGKILL
	dropTimeout  = 30 * time.Second
	superuser    = "mediaclean"
)

type shared struct {
	once sync.Once
	srv  *Server
	err  error
}

var (
	pg, maria shared

	mu      sync.Mutex
	running []*Server
)

func (sh *shared) get(tb testing.TB, start func() (*Server, error)) *Server {
	tb.Helper()
	sh.once.Do(func() {
		removeStale()
		sh.srv, sh.err = start()
		if sh.err == nil {
			mu.Lock()
			running = append(running, sh.srv)
			mu.Unlock()
		}
	})
	if sh.err != nil {
		tb.Fatalf("sqltest: %v", sh.err)
	}
	return sh.srv
}

// Postgres returns the test binary's PostgreSQL server, starting it on first
// use (installing PostgreSQL first when it is missing and that is possible).
// It fails tb when the server cannot start.
func Postgres(tb testing.TB) *Server {
	tb.Helper()
	return pg.get(tb, startPostgres)
}

// MariaDB returns the test binary's MariaDB server, starting it on first use
// (installing MariaDB first when it is missing and that is possible). It
// fails tb when the server cannot start.
func MariaDB(tb testing.TB) *Server {
	tb.Helper()
	return maria.get(tb, startMariaDB)
}

// StopAll stops the servers that Postgres and MariaDB started and removes
// their data. Call it once, after the tests have run; Main does. A package
// whose TestMain also stops other servers (s3test.StopShared) calls it
// there.
func StopAll() {
	mu.Lock()
	srvs := running
	running = nil
	mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Go(s.stop)
	}
	wg.Wait()
}

// Main is a TestMain for packages whose tests use these servers: it runs
// the tests, stops the servers, and then fails the run if any goroutine is
// left behind (go.uber.org/goleak), such as a connection whose rows were
// never closed. opts are goleak's, for goroutines a library leaves by
// design.
func Main(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	StopAll()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// NewDatabase creates an empty database with a unique name and returns a
// connection pool to it and its URL, such as
// postgres://mediaclean:PASSWORD@127.0.0.1:PORT/test_1?sslmode=disable or
// mysql://mediaclean:PASSWORD@127.0.0.1:PORT/test_1. When the test ends, the
// pool is closed and the database dropped.
func (s *Server) NewDatabase(tb testing.TB) (*sql.DB, string) {
	tb.Helper()
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	if _, err := s.admin.ExecContext(tb.Context(), "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("sqltest: %s: create database %s: %v", s.Name, name, err)
	}
	db, err := sql.Open(s.Driver, s.DriverDSN(name))
	if err == nil {
		err = db.PingContext(tb.Context())
	}
	tb.Cleanup(func() {
		db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := s.drop(ctx, name); err != nil {
			tb.Errorf("sqltest: %s: drop database %s: %v", s.Name, name, err)
		}
	})
	if err != nil {
		tb.Fatalf("sqltest: %s: open database %s: %v", s.Name, name, err)
	}
	return db, s.URL(name)
}

func (s *Server) drop(ctx context.Context, name string) error {
	if s.Name == "postgres" {
		_, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	}
	// A connection a test left open (rows never closed) would hold a lock
	// that makes DROP DATABASE wait; end such connections first.
	rows, err := s.admin.QueryContext(ctx, "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", name)
	if err != nil {
		return err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		s.admin.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)) // it may have ended already
	}
	_, err = s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
	return err
}

// URL returns the URL of database name on the server:
// postgres://USER:PASSWORD@127.0.0.1:PORT/NAME?sslmode=disable or
// mysql://USER:PASSWORD@127.0.0.1:PORT/NAME.
func (s *Server) URL(name string) string {
	u := url.URL{Scheme: s.Name, User: url.UserPassword(s.User, s.Password), Host: s.Addr, Path: "/" + name}
	if s.Name == "postgres" {
		u.RawQuery = "sslmode=disable"
	} else {
		u.Scheme = "mysql"
	}
	return u.String()
}

// DriverDSN returns the data source name that sql.Open(s.Driver, ...)
// takes for database name: the URL for pgx, and go-sql-driver/mysql's own
// form for MariaDB, USER:PASSWORD@tcp(127.0.0.1:PORT)/NAME?parseTime=true.
func (s *Server) DriverDSN(name string) string {
	if s.Name == "postgres" {
		return s.URL(name)
	}
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?parseTime=true", s.User, s.Password, s.Addr, name)
}

// stop ends the server and removes its folder.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		if s.admin != nil {
			s.admin.Close()
		}
		s.kill()
		removeOwn(s.Dir)
	})
}

// kill sends the server its stop signal, then SIGKILL if it has not ended
// within stopTimeout, and waits for it to end.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(s.stopSig); err != nil {
		s.cmd.Process.Kill()
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// newDir creates the server's temporary folder, owned by acct. Its name
// carries the test binary's process id, so that a later run can remove it
// if this one is killed (removeStale).
func newDir(name string, acct *account) (string, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-%s-", ownPrefix, os.Getpid(), name))
	if err != nil {
		return "", err
	}
	if acct != nil {
		if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
			removeOwn(dir)
			return "", err
		}
	}
	return dir, nil
}

// ownPrefix starts the name of every folder newDir makes.
const ownPrefix = "mediaclean-sqltest-"

// removeOwn removes p, a folder newDir made in the temporary directory or
// a path inside one, and nothing else: every removal of the harness goes
// through it, so a wrong path (an empty Dir, say) removes nothing. These
// are the harness's own files (database servers' data), never a user's
// storage, which only filefield/storage deletes.
func removeOwn(p string) {
	rel, err := filepath.Rel(os.TempDir(), filepath.Clean(p))
	if err != nil || !strings.HasPrefix(rel, ownPrefix) || !filepath.IsLocal(rel) {
		return
	}
	_ = os.RemoveAll(p)
}

// removeStale removes the folders of earlier test binaries that were killed
// before they could remove them.
func removeStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), ownPrefix+"*-*-*"))
	for _, m := range matches {
		f := strings.Split(filepath.Base(m), "-")
		pid, err := strconv.Atoi(f[2])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		removeOwn(m)
	}
}

// writeFile writes a file only acct (or the current user) can read.
func writeFile(path, data string, acct *account) error {
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		return err
	}
	if acct != nil {
		return os.Chown(path, acct.uid, acct.gid)
	}
	return nil
}

// runInit runs an initialisation program (initdb, mariadb-install-db) as
// acct, with its output in log.
func runInit(dir string, acct *account, log string, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = serverEnv(dir)
	cmd.Stdout, cmd.Stderr = f, f
	configure(cmd, acct, syscall.SIGKILL)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", filepath.Base(bin), err, tail(log))
	}
	return nil
}

// serverEnv is the environment of the server programs: nothing of the test
// binary's (no PGDATA, no PGPORT, no MYSQL_HOME), a neutral locale.
func serverEnv(dir string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "LANG=C", "LC_ALL=C", "TZ=UTC"}
}

// launch starts the server as acct with args(port) and waits until ready
// accepts a connection. If the free port it picked is taken before the
// server binds it, it tries another.
func (s *Server) launch(acct *account, log, bin string, args func(port int) []string, ready func(ctx context.Context) error) error {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the server keeps its own copy of the descriptor
	for attempt := 1; ; attempt++ {
		if s.admin != nil { // from an attempt on another port
			s.admin.Close()
			s.admin = nil
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var logged int64
		if fi, err := f.Stat(); err == nil {
			logged = fi.Size()
		}
		cmd := exec.Command(bin, args(port)...)
		cmd.Dir = s.Dir
		cmd.Env = serverEnv(s.Dir)
		cmd.Stdout, cmd.Stderr = f, f
		configure(cmd, acct, s.stopSig)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", filepath.Base(bin), err)
		}
		s.cmd, s.exited = cmd, make(chan struct{})
		go func(exited chan struct{}) { cmd.Wait(); close(exited) }(s.exited)
		err = s.waitReady(ready)
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			if attempt < 3 && portTaken(log, logged) {
				continue
			}
			return fmt.Errorf("%s ended before accepting connections on %s: %w\n%s", filepath.Base(bin), s.Addr, err, tail(log))
		default:
			s.kill()
			return fmt.Errorf("%s did not accept connections on %s within %v: %w\n%s", filepath.Base(bin), s.Addr, startTimeout, err, tail(log))
		}
	}
}

// portTaken reports whether the server's log, from offset on, says that
// its port was in use.
func portTaken(log string, offset int64) bool {
	b, err := os.ReadFile(log)
	if err != nil || offset > int64(len(b)) {
		return false
	}
	return bytes.Contains(b[offset:], []byte("in use"))
}

var errExited = errors.New("server ended")

// waitReady polls ready until it succeeds, the server ends, or startTimeout
// passes.
func (s *Server) waitReady(ready func(ctx context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%w: %w", errExited, err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connect opens the admin pool on database s.adminDB and checks it with a
// ping, for waitReady.
func (s *Server) connect(ctx context.Context) error {
	if s.admin == nil {
		db, err := sql.Open(s.Driver, s.DriverDSN(s.adminDB))
		if err != nil {
			return err
		}
		s.admin = db
	}
	if err := s.admin.PingContext(ctx); err != nil {
		return err
	}
	return s.admin.QueryRowContext(ctx, "SELECT version()").Scan(&s.Version)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 4096
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		f.Seek(fi.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return "--- " + path + " (end) ---\n" + strings.TrimRight(string(b), "\n")
}
