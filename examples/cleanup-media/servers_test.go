package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"golang.org/x/sync/errgroup"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// The command on S3: --root s3://BUCKET/PREFIX with the credentials and
// endpoint from the AWS SDK's environment variables, against the real
// server the tests start.
func TestS3Root(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	now := time.Now()
	for _, x := range []struct {
		p   string
		age time.Duration
	}{
		{"qr_codes/old.png", 10 * 24 * time.Hour},
		{"profile_pics/ref.jpg", 72 * time.Hour},
		{"profile_pics/orphan one.jpg", 72 * time.Hour},
		{"profile_pics/young.jpg", time.Hour},
	} {
		storagetest.WriteFile(t, fsys, x.p, []byte(x.p), now.Add(-x.age))
	}
	// Outside the prefix: never seen.
	other := s3fs.New(srv.Client(nil), fsys.Bucket, s3fs.Options{Prefix: "other/"})
	storagetest.WriteFile(t, other, "old.png", []byte("x"), time.Time{})
	refs := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refs, []byte("profile_pics/ref.jpg\n"), 0o644))
	env := srv.Env(t)
	args := []string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refs, "--unreferenced", "qr_codes/**"}

	r := runEnv(t, env, append(args, "--dry-run", "--verbose")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^would_delete .* profile_pics/orphan one\.jpg$`, r.stdout)
	assert.Regexp(t, `(?m)^would_delete .* rule qr_codes +qr_codes/old\.png$`, r.stdout)
	assert.Len(t, storagetest.Files(t, fsys), 4, "dry run")

	r = runEnv(t, env, append(args, "--json")...)
	require.Equal(t, 0, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Equal(t, 1, out.Orphans.Applied.Deleted.Files)
	assert.Equal(t, 1, out.Sweep.Deleted.Files)
	assert.Equal(t, []string{"profile_pics/ref.jpg", "profile_pics/young.jpg"}, storagetest.Files(t, fsys))
	assert.Equal(t, []string{"old.png"}, storagetest.Files(t, other))

	r = runEnv(t, env, "--root", "s3://no-such-bucket-here/media", "--s3-path-style", "--qr-age", "1d")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.stderr, `bucket "no-such-bucket-here"`)
}

// The command against real PostgreSQL and MariaDB servers: the DSN from
// an environment variable, reference queries over CHAR(n) and VARCHAR
// columns, a missing query caught by the coverage guard.
func TestSQLServers(t *testing.T) {
	t.Parallel()
	for name, srv := range map[string]func(testing.TB) *sqltest.Server{"postgres": sqltest.Postgres, "mariadb": sqltest.MariaDB} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := srv(t)
			db, url := s.NewDatabase(t)
			f := newFixture(t)
			_, err := db.Exec(`CREATE TABLE users (picture VARCHAR(200), qr CHAR(40))`)
			require.NoError(t, err)
			_, err = db.Exec(`CREATE TABLE forum (image VARCHAR(200))`)
			require.NoError(t, err)
			_, err = db.Exec(`INSERT INTO users VALUES ('profile_pics/ref.jpg', 'qr_codes/1/new.png')`)
			require.NoError(t, err)
			_, err = db.Exec(`INSERT INTO forum VALUES ('/forum_images/a.png')`)
			require.NoError(t, err)
			env := []string{"APP_DB=" + url}
			base := []string{"--root", f.root, "--check-orphans", "--db-env", "APP_DB", "--qr-age", "0"}
			queries := []string{"--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT qr FROM users", "--refs-sql", "SELECT image FROM forum"}

			// Without the forum query, forum_images holds an old file
			// no reference points into: refused, nothing deleted.
			before := f.files(t)
			r := runEnv(t, env, append(base, queries[:4]...)...)
			assert.Equal(t, exitRefused, r.code, r.stderr)
			assert.Contains(t, r.stderr, "forum_images")
			assert.Equal(t, before, f.files(t))

			r = runEnv(t, env, append(append(base, queries...), "--json")...)
			require.Equal(t, 0, r.code, r.stderr)
			var out Output
			require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
			assert.Equal(t, storage.Count{Files: 2, Bytes: 500}, out.Orphans.Applied.Deleted)
			files := f.files(t)
			assert.Contains(t, files, "qr_codes/1/new.png", "a CHAR(40) value, padded with spaces, keeps its file")
			assert.Contains(t, files, "forum_images/a.png")
			assert.Contains(t, files, "profile_pics/ref.jpg")
			assert.NotContains(t, files, "profile_pics/orphan.jpg")
			assert.NotContains(t, r.stderr+r.stdout, s.Password, "the password stays out of the output")

			// A table that does not exist: refused.
			r = runEnv(t, env, append(base, "--refs-sql", "SELECT picture FROM no_such_table")...)
			assert.Equal(t, exitRefused, r.code, r.stderr)
		})
	}
}

// --list-workers and --merge on S3: a bucket of more than one listing page
// gives the plan the defaults give, and --list-workers 0 is a usage error.
func TestS3ListWorkersAndMerge(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media/")
	var refs strings.Builder
	var g errgroup.Group
	g.SetLimit(8)
	for i := range 1500 {
		p := fmt.Sprintf("d%02d/%04d.png", i%30, i)
		if i%7 != 0 {
			refs.WriteString(p + "\n")
		}
		g.Go(func() error { return afero.WriteFile(fsys, p, []byte(p), 0o644) })
	}
	require.NoError(t, g.Wait())
	refsFile := filepath.Join(t.TempDir(), "refs")
	require.NoError(t, os.WriteFile(refsFile, []byte(refs.String()), 0o644))
	env := srv.Env(t)
	plan := func(extra ...string) []string {
		args := append([]string{"--root", "s3://" + fsys.Bucket + "/media", "--s3-path-style", "--check-orphans", "--refs-file", refsFile, "--min-age", "0", "--dry-run", "--json"}, extra...)
		r := runEnv(t, env, args...)
		require.Equal(t, 0, r.code, r.stderr)
		var out Output
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		var paths []string
		for _, o := range out.Orphans.Plan.Orphans {
			paths = append(paths, o.Path)
		}
		return paths
	}
	want := plan()
	require.Len(t, want, 1500/7+1)
	assert.Equal(t, want, plan("--list-workers", "4"))
	assert.Equal(t, want, plan("--list-workers", "4", "--merge"))
	r := runEnv(t, env, "--root", "s3://"+fsys.Bucket+"/media", "--list-workers", "0")
	assert.Equal(t, exitUsage, r.code)
}
