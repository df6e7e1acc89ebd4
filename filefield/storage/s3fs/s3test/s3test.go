// Package s3test runs a real S3-compatible server for tests: versitygw
// v1.8.0 on a loopback port, storing objects as files in a temporary
// folder. It installs versitygw with "go install" into the user's cache
// the first time (about 90 s), so "go test ./..." works on a fresh machine.
// A Proxy in front of it stalls or fails chosen requests, for tests of
// deadlines and failures.
package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"go.uber.org/goleak"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// Version is the versitygw release the tests run against.
const Version = "v1.8.0"

const (
	access = "mediaclean-test"
	secret = "mediaclean-test-secret"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the posix backend's folder: one folder per bucket
	cmd      *exec.Cmd
	buckets  atomic.Int64
}

// Binary returns the path of the versitygw binary, installing it with go
// install into the user cache when it is missing. Concurrent test binaries
// wait on a lock file instead of building it twice.
func Binary() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mediaclean", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", err
	}
	defer unlockFile(lock)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another test binary installed it while we waited
	}
	say(fmt.Sprintf("s3test: installing versitygw %s (the S3 server of the tests) into %s: once per machine, about 6 minutes on 2 cores and 700 MB of module downloads; .ci/run does it first", Version, dir))
	start := time.Now()
	cmd := exec.Command("go", "install", "-trimpath", "-ldflags=-s -w", "github.com/versity/versitygw/cmd/versitygw@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install versitygw %s: %v\n%s", Version, err, out)
	}
	say(fmt.Sprintf("s3test: versitygw installed in %s", time.Since(start).Round(time.Second)))
	return bin, nil
}

// say tells the person running the tests what a slow step is doing: on
// stderr, and on the controlling terminal, since "go test ./..." shows a
// passing package's output only after it ends.
func say(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		fmt.Fprintln(tty, msg)
		tty.Close()
	}
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Shared returns one server for the whole test binary, started on first
// use; call Stop from TestMain after m.Run. Each test takes its own bucket
// with NewBucket.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		tb.Fatalf("s3test: %v", sharedErr)
	}
	return shared
}

// StopShared stops the shared server, if one was started.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
	http.DefaultClient.CloseIdleConnections()
}

// Main is a TestMain for packages whose tests use the shared server: it
// runs the tests, stops the server, and then fails the run if any
// goroutine is left behind (go.uber.org/goleak), as listings, stats and
// batch deletes start workers that must all end.
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Start starts a server outside a test (the benchmark program uses it);
// Stop it when done.
func Start() (*Server, error) { return start() }

// CreateBucket creates a bucket.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.Client(nil).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name})
	return err
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "versitygw-data-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", dir)
	// The server logs every request; keep that out of test output.
	logf, err := os.CreateTemp("", "versitygw-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "http://" + addr, Dir: dir, cmd: cmd}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.Client(nil).ListBuckets(context.Background(), &s3.ListBucketsInput{})
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("versitygw did not become ready on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server abruptly and keeps its data, for tests of a
// server that goes away mid-run.
func (s *Server) Kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Stop stops the server and removes its data.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.Dir)
}

// Env returns the environment variables that point an AWS SDK program
// (a command under test) at the server, with its credentials, and keep it
// from reading the user's own AWS configuration.
func (s *Server) Env(tb testing.TB) []string {
	tb.Helper()
	none := filepath.Join(tb.TempDir(), "no-aws-config")
	return []string{
		"AWS_ACCESS_KEY_ID=" + access, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_SESSION_TOKEN=",
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_S3=" + s.Endpoint, "AWS_ENDPOINT_URL=",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=" + none, "AWS_SHARED_CREDENTIALS_FILE=" + none,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Keys returns the server's access key and secret, for a program that
// is configured otherwise than by the AWS SDK's variables (rclone).
func (s *Server) Keys() (accessKey, secretKey string) { return access, secret }

// Client returns an S3 client for the server. counter, when not nil,
// counts the HTTP requests it sends.
func (s *Server) Client(counter *Counter) *s3.Client { return newClient(s.Endpoint, counter) }

// ClientVia returns an S3 client for the server that sends its requests
// through hc (one that counts, delays or fails them).
func (s *Server) ClientVia(hc s3.HTTPClient) *s3.Client { return clientVia(s.Endpoint, hc) }

func newClient(endpoint string, counter *Counter) *s3.Client {
	var hc s3.HTTPClient = http.DefaultClient
	if counter != nil {
		hc = &countingClient{c: http.DefaultClient, n: counter}
	}
	return clientVia(endpoint, hc)
}

func clientVia(endpoint string, hc s3.HTTPClient) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     "us-east-1",
		Credentials:                credentials.NewStaticCredentialsProvider(access, secret, ""),
		UsePathStyle:               true,
		HTTPClient:                 hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// NewBucket creates a fresh bucket and returns its name.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), s.buckets.Add(1))
	if _, err := s.Client(nil).CreateBucket(tb.Context(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		tb.Fatalf("s3test: create bucket: %v", err)
	}
	return name
}

// Fs returns an s3fs.Fs on a new bucket (under prefix), wrapped so that
// Chtimes back-dates the object's file in the server's folder: versitygw
// reports a file's mtime as the object's LastModified, so age-based tests
// need no waiting.
func (s *Server) Fs(tb testing.TB, prefix string) *BackdatingFs {
	tb.Helper()
	bucket := s.NewBucket(tb)
	return &BackdatingFs{Fs: s3fs.New(s.Client(nil), bucket, s3fs.Options{Prefix: prefix}), dir: filepath.Join(s.Dir, bucket, strings.Trim(prefix, "/")), Bucket: bucket}
}

// BackdatingFs is an s3fs.Fs whose Chtimes sets the object's
// LastModified through the server's files. For tests only.
type BackdatingFs struct {
	*s3fs.Fs
	dir string
	// Bucket is the bucket's name.
	Bucket string
	// BeforeDelete, when set, is called by RemoveFiles with its targets
	// before it passes them on: after the deletion pipeline's re-check,
	// just before the delete requests. Tests rewrite objects there.
	BeforeDelete func(targets []storage.Target)
}

// WithContext returns a BackdatingFs over b's s3fs.Fs.WithContext(ctx):
// its requests use ctx, and its Chtimes still back-dates.
func (b *BackdatingFs) WithContext(ctx context.Context) afero.Fs {
	return &BackdatingFs{Fs: b.Fs.WithContext(ctx).(*s3fs.Fs), dir: b.dir, Bucket: b.Bucket, BeforeDelete: b.BeforeDelete}
}

// RemoveFiles calls BeforeDelete, if set, then s3fs.Fs.RemoveFiles.
func (b *BackdatingFs) RemoveFiles(ctx context.Context, targets []storage.Target) []error {
	if b.BeforeDelete != nil {
		b.BeforeDelete(targets)
	}
	return b.Fs.RemoveFiles(ctx, targets)
}

// Chtimes back-dates the object's file on the server.
func (b *BackdatingFs) Chtimes(name string, atime, mtime time.Time) error {
	if _, err := b.Fs.Stat(name); err != nil {
		return err
	}
	return os.Chtimes(filepath.Join(b.dir, filepath.FromSlash(strings.TrimLeft(name, "/"))), atime, mtime)
}

// Counter counts S3 requests by kind, as named by Kind: "list"
// (ListObjectsV2), "delete-batch" (DeleteObjects), "copy", the multipart
// kinds, and otherwise "head", "get", "put", "delete" or "other".
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Get returns the count of one kind.
func (c *Counter) Get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

type countingClient struct {
	c *http.Client
	n *Counter
}

func (cc *countingClient) Do(r *http.Request) (*http.Response, error) {
	kind := Kind(r)
	cc.n.mu.Lock()
	if cc.n.n == nil {
		cc.n.n = map[string]int{}
	}
	cc.n.n[kind]++
	cc.n.mu.Unlock()
	return cc.c.Do(r)
}

// Afero is a convenience: s.Fs(tb, "") as an afero.Fs.
func (s *Server) Afero(tb testing.TB) afero.Fs { return s.Fs(tb, "") }

// Backend returns the S3 backend of a storagetest matrix: each New makes
// an s3fs.Fs on a fresh bucket of the shared server (under prefix), as
// Shared(t).Fs(t, prefix) does. It has no directory.
//
//	backends := append(storagetest.LocalBackends(), s3test.Backend(""))
func Backend(prefix string) storagetest.Backend {
	return storagetest.Backend{Name: "S3", New: func(t *testing.T) (afero.Fs, string) {
		return Shared(t).Fs(t, prefix), ""
	}}
}
