package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/spf13/afero"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/orphan"
)

// openRoot opens --root: a local directory through rootfs (nothing
// through it leaves the directory), or s3://BUCKET/PREFIX through s3fs
// with the AWS SDK's standard configuration (environment, shared config
// and profiles, instance roles; AWS_ENDPOINT_URL_S3 for S3-compatible
// servers). It checks that the root exists before anything else runs.
func (c *config) openRoot(ctx context.Context) (afero.Fs, func(), error) {
	if rest, ok := strings.CutPrefix(c.root, "s3://"); ok {
		bucket, prefix, _ := strings.Cut(rest, "/")
		if bucket == "" {
			return nil, nil, fmt.Errorf("--root %q: want s3://BUCKET or s3://BUCKET/PREFIX", c.root)
		}
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("AWS configuration: %w", err)
		}
		client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = c.s3PathStyle })
		if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
			return nil, nil, fmt.Errorf("bucket %q: %w", bucket, err)
		}
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		return s3fs.New(client, bucket, s3fs.Options{Prefix: prefix, ListWorkers: c.listWorkers}), func() {}, nil
	}
	if strings.Contains(c.root, "://") {
		return nil, nil, fmt.Errorf("--root %q: a local directory or s3://BUCKET/PREFIX", c.root)
	}
	if fi, err := os.Stat(c.root); err != nil || !fi.IsDir() {
		return nil, nil, fmt.Errorf("root %q is not a directory", c.root)
	}
	fsys, err := rootfs.New(c.root)
	if err != nil {
		return nil, nil, err
	}
	return fsys, func() { fsys.Close() }, nil
}

// openInventory opens --inventory, the S3 Inventory report of the bucket
// of --root: a manifest.json on disk, or at s3://BUCKET/KEY, read with
// the root's client. With --merge the report's own duplicate check, which
// holds a hash of every key, is off: merge mode refuses a repeated key
// itself, exactly. A Parquet report's data files are copied to tempDir
// while they are read.
func openInventory(ctx context.Context, manifest string, root afero.Fs, merge bool, tempDir string) (orphan.Listing, error) {
	fsys, ok := root.(*s3fs.Fs)
	if !ok {
		return nil, errors.New("--inventory needs an s3:// --root")
	}
	rep, err := inventory.Open(ctx, manifest, fsys, inventory.Options{NoDuplicateCheck: merge, TempDir: tempDir})
	if err != nil {
		return nil, fmt.Errorf("--inventory: %w", err)
	}
	return rep, nil
}

// openDB opens --db: sqlite:PATH (read-only), postgres://... or
// postgresql://... (pgx), mysql://USER:PASS@HOST:PORT/DB (go-sql-driver).
// The reference queries run in a read-only transaction that is always
// rolled back.
func openDB(dsn string) (*sql.DB, error) {
	scheme, rest, ok := strings.Cut(dsn, ":")
	if !ok {
		return nil, errors.New("--db: want sqlite:PATH, postgres://HOST/DB or mysql://HOST/DB")
	}
	switch scheme {
	case "sqlite":
		if _, err := os.Stat(rest); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		// A URI: '?', '#' and '%' in the path are escaped, or SQLite
		// would cut the path there, open (and create) another file, and
		// drop mode=ro.
		esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(rest)
		return sql.Open("sqlite", "file:"+esc+"?mode=ro")
	case "postgres", "postgresql":
		return sql.Open("pgx", dsn)
	case "mysql":
		d, err := mysqlDSN(dsn)
		if err != nil {
			return nil, err
		}
		return sql.Open("mysql", d)
	}
	return nil, fmt.Errorf("--db: unknown database %q (sqlite, postgres, mysql)", scheme)
}

// mysqlDSN turns mysql://USER:PASS@HOST:PORT/DB?PARAMS into the driver's
// own form, USER:PASS@tcp(HOST:PORT)/DB?PARAMS.
func mysqlDSN(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("--db: %w", err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	// The driver parses its own parameters (parseTime, tls, ...); the
	// user and password are set after, so no character in them needs
	// escaping.
	cfg, err := mysql.ParseDSN(fmt.Sprintf("tcp(%s)/%s?%s", addr, strings.TrimPrefix(u.Path, "/"), u.RawQuery))
	if err != nil {
		return "", fmt.Errorf("--db: %w", err)
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	return cfg.FormatDSN(), nil
}
