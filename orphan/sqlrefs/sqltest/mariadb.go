package sqltest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

var mariadb = product{
	name:    "MariaDB",
	pkg:     "mariadb-server",
	service: "mariadb",
	looked:  "mariadbd or mysqld, and mariadb-install-db or mysql_install_db, on PATH or in /usr/sbin, /usr/libexec and /usr/bin",
	find:    findMariaDB,
}

// findMariaDB returns mariadb-install-db and mariadbd (or their older
// names, mysql_install_db and mysqld).
func findMariaDB() ([]string, bool) {
	install := lookFirst("mariadb-install-db", "mysql_install_db", "/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db")
	server := lookFirst("mariadbd", "mysqld", "/usr/sbin/mariadbd", "/usr/sbin/mysqld", "/usr/libexec/mariadbd", "/usr/libexec/mysqld")
	if install == "" || server == "" {
		return nil, false
	}
	return []string{install, server}, true
}

// lookFirst returns the first of names found: on PATH for a bare name.
func lookFirst(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func startMariaDB() (*Server, error) {
	bins, err := mariadb.binaries()
	if err != nil {
		return nil, err
	}
	installDB, mariadbd := bins[0], bins[1]
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	dir, err := newDir("mariadb", acct)
	if err != nil {
		return nil, err
	}
	// The server is started with SIGKILL as its stop signal: its data is
	// thrown away, so a clean shutdown would only cost time.
	s := &Server{Name: "mariadb", Driver: "mysql", User: superuser, Password: randomPassword(), Dir: dir, stopSig: syscall.SIGKILL}
	data := filepath.Join(dir, "data")
	if err := runInit(dir, acct, filepath.Join(dir, "install-db.log"), installDB,
		"--no-defaults", "--datadir="+data,
		"--skip-test-db", "--skip-name-resolve"); err != nil {
		removeOwn(dir)
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	// The init file runs at startup, before the server accepts
	// connections: it creates the superuser the tests connect as over TCP.
	initFile := filepath.Join(dir, "init.sql")
	if err := writeFile(initFile, fmt.Sprintf(
		"CREATE USER IF NOT EXISTS '%[1]s'@'%%' IDENTIFIED BY '%[2]s';\nGRANT ALL PRIVILEGES ON *.* TO '%[1]s'@'%%' WITH GRANT OPTION;\n",
		s.User, s.Password), acct); err != nil {
		removeOwn(dir)
		return nil, err
	}
	args := func(port int) []string {
		return []string{
			"--no-defaults",
			"--datadir=" + data,
			"--port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--socket=" + filepath.Join(dir, "mariadb.sock"),
			"--pid-file=" + filepath.Join(dir, "mariadbd.pid"),
			"--tmpdir=" + dir,
			"--init-file=" + initFile,
			"--skip-name-resolve",
			"--character-set-server=utf8mb4",
			"--default-time-zone=+00:00",
			"--max-connections=200",
			"--innodb-buffer-pool-size=64M",
			"--innodb-flush-log-at-trx-commit=0",
			"--innodb-doublewrite=0",
			"--sync-binlog=0",
		}
	}
	if err := s.launch(acct, filepath.Join(dir, "server.log"), mariadbd, args, s.connect); err != nil {
		s.stop()
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	s.Startup = time.Since(began)
	return s, nil
}
