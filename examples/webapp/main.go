// Command webapp is the seed's application in Go: users with a profile
// picture, an e-signature and an attendance QR code, forum messages with an
// image, and donations with a receipt. Every file change goes through
// mediaclean's filefield with the database transaction that records it
// (uploads are streamed to storage first, then the row changes in one short
// transaction; the old file is deleted only after the commit), a sweeper
// deletes old QR codes in-process, and the admin page shows the storage
// report and runs the orphan check.
//
//	go run ./examples/webapp                # http://127.0.0.1:8080, data in ./data
//	go run ./examples/webapp -addr :9000 -data /var/lib/app -qr-age 24h
//	go run ./examples/webapp -addr :8080 -allowed-hosts media.example.org -body-timeout 2m
//
// It uses SQLite (data/app.db) and a local media folder (data/media) on the
// symlink-safe os.Root backend; nothing else needs installing. With
// -s3-endpoint and -s3-bucket (credentials in AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY) the media live in an S3-compatible bucket.
//
// The server answers only to the Host names of its address (on loopback,
// also localhost names and loopback IPs; on every interface, any IP
// literal) and those of -allowed-hosts, refuses cross-origin form posts,
// bounds every request body (a file field's 10 MiB plus 64 KiB) and the
// time to send it (-body-timeout, 60 s), and serves uploads sandboxed,
// never sniffed, and as downloads unless they are images.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/examples/internal/age"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
)

func main() {
	cfg := defaultConfig()
	flag.StringVar(&cfg.addr, "addr", cfg.addr, "address to listen on")
	flag.Func("allowed-hosts", "comma-separated host `names` the server answers to besides the address's host (and, on loopback, localhost names and loopback IPs); requests for any other Host are refused (DNS rebinding)", func(s string) error {
		for h := range strings.SplitSeq(s, ",") {
			cfg.allowedHosts = append(cfg.allowedHosts, strings.TrimSpace(h))
		}
		return nil
	})
	flag.Var(age.Value{D: &cfg.bodyTimeout}, "body-timeout", "how long (an `age`: 90s, 2m) a client may take to send a request, upload included; a slower one gets 408 and its partial file is removed")
	flag.StringVar(&cfg.data, "data", cfg.data, "folder for the database and the media (created if missing)")
	flag.Var(age.Value{D: &cfg.qrAge}, "qr-age", "QR codes older than this `age` are swept (90m, 36h, 7d, 2w)")
	flag.Var(age.Value{D: &cfg.sweepEvery}, "sweep-every", "how often (an `age`: 90m, 36h, 7d, 2w) the in-process sweeper runs")
	flag.StringVar(&cfg.s3.endpoint, "s3-endpoint", "", "keep media in an S3-compatible bucket at this `URL` instead of data/media")
	flag.StringVar(&cfg.s3.bucket, "s3-bucket", "", "the bucket (with -s3-endpoint)")
	flag.StringVar(&cfg.s3.prefix, "s3-prefix", cfg.s3.prefix, "key prefix inside the bucket")
	flag.StringVar(&cfg.s3.region, "s3-region", cfg.s3.region, "the region")
	flag.Parse()
	// Credentials come from the environment, never from flags (which show in ps).
	cfg.s3.access, cfg.s3.secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "webapp:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	addr              string
	allowedHosts      []string // Host names allowed besides the address's own
	bodyTimeout       time.Duration
	data              string
	qrAge, sweepEvery time.Duration
	s3                s3Config
}

// defaultConfig is the configuration with no flags.
func defaultConfig() config {
	return config{
		addr:        "127.0.0.1:8080",
		bodyTimeout: defaultBodyTimeout,
		data:        "./data",
		qrAge:       7 * 24 * time.Hour,
		sweepEvery:  time.Hour,
		s3:          s3Config{prefix: "media/", region: "us-east-1"},
	}
}

type s3Config struct {
	endpoint, bucket, prefix, region, access, secret string
}

// mediaFs is the local media folder on the os.Root backend, or the bucket
// when -s3-endpoint is set.
func mediaFs(data string, c s3Config) (afero.Fs, func(), error) {
	if c.endpoint == "" {
		media := filepath.Join(data, "media")
		if err := os.MkdirAll(media, 0o755); err != nil {
			return nil, nil, err
		}
		rfs, err := rootfs.New(media)
		if err != nil {
			return nil, nil, err
		}
		return rfs, func() { rfs.Close() }, nil
	}
	if c.bucket == "" || c.access == "" || c.secret == "" {
		return nil, nil, errors.New("-s3-endpoint needs -s3-bucket and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment")
	}
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(c.endpoint), Region: c.region, UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(c.access, c.secret, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
	return s3fs.New(client, c.bucket, s3fs.Options{Prefix: c.prefix}), func() {}, nil
}

// run serves the application on cfg.addr until ctx ends. It binds the
// port first, so that a taken port fails before anything is opened, and
// says the server runs only once it listens.
func run(ctx context.Context, cfg config, stdout io.Writer) error {
	if _, err := newHostPolicy(cfg.addr, cfg.allowedHosts); err != nil {
		return err
	}
	// Checked before anything is opened or created.
	switch {
	case cfg.qrAge <= 0:
		return errors.New("-qr-age must be more than 0: QR codes are temporary, and a sweep rule of age 0 would delete every one")
	case cfg.sweepEvery <= 0:
		return errors.New("-sweep-every must be more than 0 (the sweeper also keeps QR codes from piling up)")
	}
	ln, err := listen(cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := os.MkdirAll(cfg.data, 0o755); err != nil {
		return err
	}
	db, err := openDB(filepath.Join(cfg.data, "app.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	fsys, closeFs, err := mediaFs(cfg.data, cfg.s3)
	if err != nil {
		return err
	}
	defer closeFs()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	app, err := NewApp(ctx, db, fsys, log, cfg.qrAge)
	if err != nil {
		return err
	}
	sweeper := make(chan struct{})
	go func() { defer close(sweeper); app.RunSweeper(ctx, cfg.sweepEvery) }()
	defer func() { stop(); <-sweeper }()

	srv, err := app.Server(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "mediaclean example running: open http://%s/ (data in %s)\n", browseAddr(ln.Addr()), cfg.data)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listen binds addr, and says plainly when the port is taken.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("cannot listen on %s: the address is already in use (is another server running there?); choose another with -addr", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

// browseAddr is the listener's address as a browser would open it:
// localhost for a wildcard address.
func browseAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
