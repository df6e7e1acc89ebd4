package inventory

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
)

// ErrInvalid is wrapped by every refusal of a report: a checksum that does
// not match, another bucket, a malformed row, an unsafe key.
var ErrInvalid = errors.New("invalid S3 inventory report")

// maxManifest bounds the bytes read of a manifest.json: AWS's list a few
// thousand data files at most.
const maxManifest = 64 << 20

// Manifest is an inventory report's manifest.json, the fields this package
// reads.
type Manifest struct {
	SourceBucket      string `json:"sourceBucket"`
	DestinationBucket string `json:"destinationBucket"`
	Version           string `json:"version"`
	// CreationTimestamp is milliseconds since the epoch, as a string.
	CreationTimestamp string `json:"creationTimestamp"`
	FileFormat        string `json:"fileFormat"`
	// FileSchema names the CSV columns, comma-separated; for Parquet it
	// is the schema as a Parquet message, which this package does not
	// read: each data file's own schema is checked instead.
	FileSchema string `json:"fileSchema"`
	Files      []File `json:"files"`
}

// File is one data file a manifest lists.
type File struct {
	// Key is the data file's key in the destination bucket.
	Key  string `json:"key"`
	Size int64  `json:"size"` // bytes of the .csv.gz or .parquet
	// MD5Checksum is the hex MD5 of the data file.
	MD5Checksum string `json:"MD5checksum"`
}

// Report is an opened inventory report, filtered to one s3fs.Fs: its
// ListFiles lists what the report says is under the Fs's prefix, as
// storage.Entry values relative to it. Open one with [Open], [OpenFs] or
// [OpenS3]. It is safe for concurrent use.
type Report struct {
	where   string // the manifest, for messages
	created time.Time
	bucket  string  // the source bucket
	prefix  string  // the Fs's prefix
	parquet bool    // the data files are Parquet, not CSV
	cols    columns // the CSV columns
	files   []File
	open    func(ctx context.Context, f File) (io.ReadCloser, error)
	opts    Options
}

// Options tune how a report is read; the zero value is the default.
type Options struct {
	// NoDuplicateCheck lists without checking that no key is listed
	// twice. The check holds a 64-bit hash of every key listed for the
	// length of a listing (30 bytes a key in its map, measured at 10M
	// keys, more while the map grows: tens of GB for a billion) and
	// refuses a report where two keys' hashes collide, which at a billion
	// keys happens to about one report in forty. A consumer that refuses
	// duplicates itself sets it: orphan's merge mode does (it sorts the
	// listing and refuses any key not after the one before), and then
	// lists in memory independent of the report's size.
	NoDuplicateCheck bool
	// TempDir is where a Parquet data file is copied while it is read (a
	// Parquet file is read from its end, so it cannot be streamed): one
	// data file at a time, unlinked at once where the system allows it.
	// Empty means storage.TempDir(): $TMPDIR, or the system's, or
	// /var/tmp where that is on a disk and the system's is in memory. CSV
	// reports are streamed and use none.
	TempDir string
}

// CreatedAt returns when AWS made the report (creationTimestamp): what it
// lists is the bucket as it was then, at best.
func (r *Report) CreatedAt() time.Time { return r.created }

// String names the report's manifest.
func (r *Report) String() string { return r.where }

// Open opens the report whose manifest.json is at manifest, a local path
// or an s3://BUCKET/KEY URL (read with target's client), for a listing of
// target: see [OpenFs] and [OpenS3].
func Open(ctx context.Context, manifest string, target *s3fs.Fs, opts Options) (*Report, error) {
	if rest, ok := strings.CutPrefix(manifest, "s3://"); ok {
		bucket, key, _ := strings.Cut(rest, "/")
		if bucket == "" || key == "" {
			return nil, fmt.Errorf("inventory %q: want s3://BUCKET/KEY of a manifest.json", manifest)
		}
		return OpenS3(ctx, target.Client(), bucket, key, target, opts)
	}
	return OpenFs(ctx, afero.NewOsFs(), manifest, target, opts)
}

// OpenFs opens the report whose manifest.json is at manifest on fsys, laid
// out as AWS writes it (as "aws s3 sync" copies it): the manifest in
// CONFIG/YYYY-MM-DDTHH-MMZ/, manifest.checksum beside it, and each data
// file, whatever its key's prefix, at CONFIG/data/NAME.
func OpenFs(ctx context.Context, fsys afero.Fs, manifest string, target *s3fs.Fs, opts Options) (*Report, error) {
	read := func(name string) ([]byte, error) {
		f, err := fsys.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readBounded(f)
	}
	config := filepath.Dir(filepath.Dir(manifest))
	open := func(_ context.Context, df File) (io.ReadCloser, error) {
		dir, name := path.Split(df.Key)
		if path.Base(dir) != "data" || !safeName(name) {
			return nil, fmt.Errorf("%w: data file %q is not DEST/.../data/NAME", ErrInvalid, df.Key)
		}
		return fsys.Open(filepath.Join(config, "data", name))
	}
	return load(ctx, manifest, read, filepath.Join(filepath.Dir(manifest), "manifest.checksum"), open, target, opts)
}

// OpenS3 opens the report whose manifest.json is the object key of bucket
// (the destination bucket of the inventory configuration), reading it and
// its data files through client.
func OpenS3(ctx context.Context, client *s3.Client, bucket, key string, target *s3fs.Fs, opts Options) (*Report, error) {
	get := func(ctx context.Context, key string) (io.ReadCloser, error) {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
		}
		return out.Body, nil
	}
	read := func(key string) ([]byte, error) {
		body, err := get(ctx, key)
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return readBounded(body)
	}
	open := func(ctx context.Context, df File) (io.ReadCloser, error) { return get(ctx, df.Key) }
	return load(ctx, "s3://"+bucket+"/"+key, read, path.Join(path.Dir(key), "manifest.checksum"), open, target, opts)
}

func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
	if err == nil && len(b) > maxManifest {
		err = fmt.Errorf("%w: manifest larger than %d bytes", ErrInvalid, maxManifest)
	}
	return b, err
}

// safeName reports whether name is one plain file name.
func safeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`+"\x00")
}

// load reads and checks the manifest; where names it (manifestPath for
// read), sum is where manifest.checksum is.
func load(ctx context.Context, where string, read func(string) ([]byte, error), sum string, open func(context.Context, File) (io.ReadCloser, error), target *s3fs.Fs, opts Options) (*Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("inventory %s: %w: %s", where, ErrInvalid, fmt.Sprintf(format, args...))
	}
	raw, err := read(manifestPath(where))
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", where, err)
	}
	want, err := read(sum)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: manifest.checksum: %w", where, err)
	}
	got := md5.Sum(raw)
	if !strings.EqualFold(string(bytes.TrimSpace(want)), hex.EncodeToString(got[:])) {
		return nil, refuse("manifest.json does not match manifest.checksum")
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, refuse("manifest.json: %v", err)
	}
	isParquet := strings.EqualFold(m.FileFormat, "Parquet")
	if !isParquet && !strings.EqualFold(m.FileFormat, "CSV") {
		return nil, refuse("file format %q: only CSV and Parquet reports are read (not ORC)", m.FileFormat)
	}
	if m.SourceBucket != target.Bucket() {
		return nil, refuse("it lists bucket %q, not %q", m.SourceBucket, target.Bucket())
	}
	ms, err := strconv.ParseInt(m.CreationTimestamp, 10, 64)
	if err != nil || ms <= 0 {
		return nil, refuse("creationTimestamp %q is not milliseconds since the epoch", m.CreationTimestamp)
	}
	var cols columns
	if !isParquet {
		if cols, err = parseSchema(m.FileSchema); err != nil {
			return nil, refuse("%v", err)
		}
	}
	for _, f := range m.Files {
		if b, err := hex.DecodeString(f.MD5Checksum); err != nil || len(b) != md5.Size {
			return nil, refuse("data file %q: MD5checksum %q is not an MD5", f.Key, f.MD5Checksum)
		}
		if f.Key == "" || f.Size < 0 {
			return nil, refuse("data file %q of size %d", f.Key, f.Size)
		}
	}
	return &Report{
		where: where, created: time.UnixMilli(ms).UTC(), bucket: m.SourceBucket, prefix: target.Prefix(),
		parquet: isParquet, cols: cols, files: m.Files, open: open, opts: opts,
	}, nil
}

// manifestPath turns the name in messages back into what read takes.
func manifestPath(where string) string {
	if rest, ok := strings.CutPrefix(where, "s3://"); ok {
		_, key, _ := strings.Cut(rest, "/")
		return key
	}
	return where
}

// columns are the positions of the columns this package reads; -1 for an
// optional one that is absent.
type columns struct {
	n                                     int
	bucket, key, size, mod                int
	etag, latest, deleteMarker, versionID int
}

// parseSchema reads fileSchema ("Bucket, Key, Size, LastModifiedDate,
// ETag"), refusing a schema without Bucket, Key, Size and LastModifiedDate
// or with a column twice.
func parseSchema(s string) (columns, error) {
	c := columns{bucket: -1, key: -1, size: -1, mod: -1, etag: -1, latest: -1, deleteMarker: -1, versionID: -1}
	at := map[string]*int{
		"bucket": &c.bucket, "key": &c.key, "size": &c.size, "lastmodifieddate": &c.mod,
		"etag": &c.etag, "islatest": &c.latest, "isdeletemarker": &c.deleteMarker, "versionid": &c.versionID,
	}
	seen := map[string]bool{}
	for i, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || seen[name] {
			return c, fmt.Errorf("fileSchema %q: an empty or repeated column", s)
		}
		seen[name] = true
		if p := at[name]; p != nil {
			*p = i
		}
		c.n = i + 1
	}
	for _, req := range []struct {
		name string
		i    int
	}{{"Bucket", c.bucket}, {"Key", c.key}, {"Size", c.size}, {"LastModifiedDate", c.mod}} {
		if req.i < 0 {
			return c, fmt.Errorf("fileSchema %q has no %s column", s, req.name)
		}
	}
	return c, nil
}
