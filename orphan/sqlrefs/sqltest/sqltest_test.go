package sqltest_test

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

func TestMain(m *testing.M) { sqltest.Main(m) }

// flavor holds what differs between the two servers in these tests.
type flavor struct {
	server    func(testing.TB) *sqltest.Server
	scheme    string
	currentDB string            // the SQL function naming the connection's database
	listDBs   string            // a query listing the server's databases
	million   map[string]string // ways to fill table refs(id, path) with 1,000,000 rows
}

var (
	postgres = flavor{
		server:    sqltest.Postgres,
		scheme:    "postgres",
		currentDB: "current_database()",
		listDBs:   "SELECT datname FROM pg_database",
		million: map[string]string{
			"generate_series": `CREATE TABLE refs AS
				SELECT i AS id, 'media/' || i || '.jpg' AS path FROM generate_series(1, 1000000) AS i`,
			"recursive CTE": `CREATE TABLE refs AS
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
				SELECT i AS id, 'media/' || i || '.jpg' AS path FROM n`,
		},
	}
	mariaDB = flavor{
		server:    sqltest.MariaDB,
		scheme:    "mysql",
		currentDB: "DATABASE()",
		listDBs:   "SELECT schema_name FROM information_schema.schemata",
		million: map[string]string{
			// The Sequence engine's virtual tables seq_FROM_to_TO.
			"sequence": `CREATE TABLE refs AS
				SELECT seq AS id, CONCAT('media/', seq, '.jpg') AS path FROM seq_1_to_1000000`,
			// Ten digits, crossed six times: a recursion of 1,000,000
			// steps would pass max_recursive_iterations.
			"recursive CTE": `CREATE TABLE refs AS
				WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 9)
				SELECT a.n + 10*b.n + 100*c.n + 1000*e.n + 10000*f.n + 100000*g.n + 1 AS id,
					CONCAT('media/', a.n + 10*b.n + 100*c.n + 1000*e.n + 10000*f.n + 100000*g.n + 1, '.jpg') AS path
				FROM d a, d b, d c, d e, d f, d g`,
		},
	}
)

func TestPostgres(t *testing.T) { testServer(t, postgres) }

func TestMariaDB(t *testing.T) { testServer(t, mariaDB) }

func testServer(t *testing.T, f flavor) {
	start := time.Now()
	s := f.server(t)
	t.Logf("%s: first use took %v (initialise and start: %v): %s", s.Name, time.Since(start).Round(time.Millisecond), s.Startup.Round(time.Millisecond), s.Version)
	again := time.Now()
	assert.Same(t, s, f.server(t), "one server per test binary")
	t.Logf("%s: second use took %v", s.Name, time.Since(again))

	t.Run("databases are separate", func(t *testing.T) {
		start := time.Now()
		db1, url1 := s.NewDatabase(t)
		t.Logf("first database: %v", time.Since(start).Round(time.Millisecond))
		start = time.Now()
		db2, url2 := s.NewDatabase(t)
		t.Logf("second database: %v", time.Since(start).Round(time.Millisecond))
		require.NotEqual(t, url1, url2)

		for _, c := range []struct {
			db  *sql.DB
			url string
		}{{db1, url1}, {db2, url2}} {
			u, err := url.Parse(c.url)
			require.NoError(t, err)
			assert.Equal(t, f.scheme, u.Scheme, c.url)
			assert.Equal(t, s.Addr, u.Host)
			assert.True(t, strings.HasPrefix(u.Host, "127.0.0.1:"), u.Host)
			pw, _ := u.User.Password()
			assert.Equal(t, s.User, u.User.Username())
			assert.Equal(t, s.Password, pw)
			var name string
			require.NoError(t, c.db.QueryRow("SELECT "+f.currentDB).Scan(&name))
			assert.Equal(t, strings.TrimPrefix(u.Path, "/"), name, "the pool is on the URL's database")
		}

		_, err := db1.Exec("CREATE TABLE users (picture VARCHAR(200))")
		require.NoError(t, err)
		_, err = db1.Exec("INSERT INTO users VALUES ('a.jpg'), ('b.jpg')")
		require.NoError(t, err)
		_, err = db2.Exec("SELECT picture FROM users")
		require.Error(t, err, "the second database does not see the first one's table")
		_, err = db2.Exec("CREATE TABLE users (picture VARCHAR(200))")
		require.NoError(t, err, "and can have its own")

		var n int
		require.NoError(t, db1.QueryRow("SELECT COUNT(*) FROM users WHERE picture LIKE '%.jpg'").Scan(&n))
		assert.Equal(t, 2, n)
		require.NoError(t, db2.QueryRow("SELECT COUNT(*) FROM users").Scan(&n))
		assert.Equal(t, 0, n)
	})

	t.Run("driver DSN", func(t *testing.T) {
		_, dsn := s.NewDatabase(t)
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		name := strings.TrimPrefix(u.Path, "/")
		driverDSN := s.DriverDSN(name)
		if s.Name == "mariadb" {
			assert.Equal(t, s.User+":"+s.Password+"@tcp("+s.Addr+")/"+name+"?parseTime=true", driverDSN)
		} else {
			assert.Equal(t, dsn, driverDSN)
		}
		db, err := sql.Open(s.Driver, driverDSN)
		require.NoError(t, err)
		defer db.Close()
		var got string
		var now time.Time
		require.NoError(t, db.QueryRow("SELECT "+f.currentDB+", CURRENT_TIMESTAMP").Scan(&got, &now))
		assert.Equal(t, name, got)
		assert.WithinDuration(t, time.Now(), now, time.Minute)
	})

	t.Run("dropped after the test", func(t *testing.T) {
		var name string
		t.Run("inner", func(t *testing.T) {
			_, dsn := s.NewDatabase(t)
			u, err := url.Parse(dsn)
			require.NoError(t, err)
			name = strings.TrimPrefix(u.Path, "/")
		})
		db, _ := s.NewDatabase(t)
		names := queryStrings(t, db, f.listDBs)
		assert.NotContains(t, names, name)
		assert.NotEmpty(t, names)
	})

	for how, create := range f.million {
		t.Run("a million rows by "+how, func(t *testing.T) {
			db, _ := s.NewDatabase(t)
			start := time.Now()
			_, err := db.Exec(create)
			require.NoError(t, err)
			created := time.Since(start)
			start = time.Now()
			rows, err := db.Query("SELECT path FROM refs")
			require.NoError(t, err)
			defer rows.Close()
			n := 0
			for rows.Next() {
				var p string
				require.NoError(t, rows.Scan(&p))
				n++
			}
			require.NoError(t, rows.Err())
			streamed := time.Since(start)
			assert.Equal(t, 1_000_000, n)
			var distinct int
			require.NoError(t, db.QueryRow("SELECT COUNT(DISTINCT path) FROM refs WHERE id BETWEEN 1 AND 1000000").Scan(&distinct))
			assert.Equal(t, 1_000_000, distinct)
			t.Logf("%s: created 1,000,000 rows by %s in %v, streamed them in %v", s.Name, how, created.Round(time.Millisecond), streamed.Round(time.Millisecond))
			// A few seconds is the expectation; the bound is loose for
			// slow, shared CI machines.
			assert.Less(t, created, 30*time.Second)
			assert.Less(t, streamed, 30*time.Second)
		})
	}
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}
