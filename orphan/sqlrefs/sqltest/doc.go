// Package sqltest runs real PostgreSQL and MariaDB servers for tests.
//
// [Postgres] and [MariaDB] start one private server per test binary on
// first use: a fresh data directory under the temporary folder, initialised
// with initdb or mariadb-install-db, tuned for tests (no fsync, small
// buffers) and listening on a free loopback TCP port only. Each test then
// takes its own empty database with [Server.NewDatabase], dropped again when
// the test ends. Call [Main] from TestMain (or [StopAll] after m.Run) so the
// servers stop and their data goes when the tests end; on Linux the servers
// also die with the test binary if it is killed.
//
// The server binaries come from the system: PostgreSQL's initdb and postgres
// on PATH or in /usr/lib/postgresql/<major>/bin (Debian's layout), MariaDB's
// mariadbd (or mysqld) and mariadb-install-db (or mysql_install_db) on PATH
// or in /usr/sbin and /usr/bin. When they are missing and the tests run as
// root on Debian, the first test installs them with apt-get, without letting
// the packages start their own services; otherwise the test fails with the
// command that installs them.
//
// PostgreSQL refuses to run as root. When the tests run as root, both
// servers run as the system user mediaclean-test, created on first use.
package sqltest
