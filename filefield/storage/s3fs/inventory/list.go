package inventory

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

var _ storage.Lister = (*Report)(nil)

// ListFiles implements storage.Lister over the report: it calls fn with
// each object the report lists below opts.Dir of the Fs's prefix (the key
// relative to it as Path, Size, LastModifiedDate as ModTime, the ETag
// quoted as listings quote it), in the report's order, honouring
// opts.From and opts.To. Folder markers (keys ending in "/") and the
// quarantine area are skipped; so are rows that are not the current
// version (IsLatest false) or are delete markers, when the schema has
// those columns.
//
// The data files are streamed, each checked against the manifest's size
// and MD5 as it is read: an error therefore comes after fn saw the rows
// before it, and the caller must discard everything the listing gave
// (orphan.Finder.Find returns no plan). Every problem refuses the listing
// with an error wrapping [ErrInvalid]: a data file whose size or MD5 does
// not match, a truncated or corrupt gzip stream, a row with a missing or
// extra column, another bucket, a key that does not URL-decode, a size or
// time that does not parse, the same key twice, and a key under the prefix
// that is not a valid stored path (storage.ValidPath: "..", ".", empty or
// dot-led segments, control characters, ...). That last is deliberately
// fail-closed: a report naming one such key lists nothing, rather than
// lists the rest.
func (r *Report) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	dir := strings.Trim(opts.Dir, "/")
	if dir == "." {
		dir = ""
	}
	if opts.To != "" && opts.To < opts.From {
		return nil
	}
	l := &lister{r: r, dir: dir, opts: opts, fn: fn, seed: maphash.MakeSeed(), seen: map[uint64]struct{}{}}
	for _, f := range r.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.file(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

type lister struct {
	r    *Report
	dir  string
	opts storage.ListOptions
	fn   func(storage.Entry) error
	seed maphash.Seed
	seen map[uint64]struct{} // hashes of the keys listed
}

// invalid is a refusal naming the data file and row.
type invalid struct {
	where, file string
	row         int
	msg         string
}

func (e *invalid) Error() string {
	if e.row > 0 {
		return fmt.Sprintf("inventory %s: %v: data file %q, row %d: %s", e.where, ErrInvalid, e.file, e.row, e.msg)
	}
	return fmt.Sprintf("inventory %s: %v: data file %q: %s", e.where, ErrInvalid, e.file, e.msg)
}

func (e *invalid) Unwrap() error { return ErrInvalid }

// counted hashes and counts what is read through it.
type counted struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (l *lister) file(ctx context.Context, f File) error {
	bad := func(row int, format string, args ...any) error {
		return &invalid{where: l.r.where, file: f.Key, row: row, msg: fmt.Sprintf(format, args...)}
	}
	if l.r.parquet {
		return l.parquetFile(ctx, f, bad)
	}
	body, err := l.r.open(ctx, f)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return fmt.Errorf("inventory %s: %w", l.r.where, err)
		}
		return fmt.Errorf("inventory %s: data file %q: %w", l.r.where, f.Key, err)
	}
	defer body.Close()
	raw := &counted{r: body, h: md5.New()}
	buffered := bufio.NewReaderSize(raw, 256<<10)
	gz, err := gzip.NewReader(buffered)
	if err != nil {
		return bad(0, "not gzip: %v", err)
	}
	cr := csv.NewReader(&rowLimit{r: gz})
	cr.FieldsPerRecord = l.r.cols.n
	cr.ReuseRecord = true
	for row := 1; ; row++ {
		if row%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return bad(row, "%v", err)
		}
		if err := l.entry(rec, func(format string, args ...any) error { return bad(row, format, args...) }); err != nil {
			return err
		}
	}
	// The whole file, to its last byte, is hashed.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return bad(0, "%v", err)
	}
	if _, err := io.Copy(io.Discard, buffered); err != nil {
		return fmt.Errorf("inventory %s: data file %q: %w", l.r.where, f.Key, err)
	}
	if raw.n != f.Size {
		return bad(0, "%d bytes, the manifest says %d", raw.n, f.Size)
	}
	if sum := hex.EncodeToString(raw.h.Sum(nil)); !strings.EqualFold(sum, f.MD5Checksum) {
		return bad(0, "MD5 %s, the manifest says %s", sum, f.MD5Checksum)
	}
	return nil
}

// entry reads one CSV row and hands it to fn if the listing selects it.
func (l *lister) entry(rec []string, bad func(string, ...any) error) error {
	c := &l.r.cols
	current := (c.latest < 0 || strings.EqualFold(rec[c.latest], "true")) &&
		(c.deleteMarker < 0 || !strings.EqualFold(rec[c.deleteMarker], "true"))
	if err := l.bucket(rec[c.bucket], bad); err != nil || !current {
		return err
	}
	key, err := url.QueryUnescape(rec[c.key])
	if err != nil {
		return bad("key %q is not URL-encoded", rec[c.key])
	}
	rel, err := l.selected(key, bad)
	if err != nil || rel == "" {
		return err
	}
	size, err := strconv.ParseInt(rec[c.size], 10, 64)
	if err != nil || size < 0 {
		return bad("key %q: size %q", key, rec[c.size])
	}
	mod, err := time.Parse(time.RFC3339Nano, rec[c.mod])
	if err != nil {
		return bad("key %q: LastModifiedDate %q", key, rec[c.mod])
	}
	etag := ""
	if c.etag >= 0 {
		etag = rec[c.etag]
	}
	return l.emit(rel, size, mod, etag)
}

// bucket refuses a row of another bucket than the report's.
func (l *lister) bucket(b string, bad func(string, ...any) error) error {
	if b != l.r.bucket {
		return bad("bucket %q, not %q", b, l.r.bucket)
	}
	return nil
}

// selected returns the path below the prefix of a current object's key,
// decoded, if the listing selects it; rel is empty for a row to skip (a
// key outside the prefix or opts.Dir, a folder, the quarantine, outside
// opts.From and opts.To). A key that makes the report unusable (not a
// valid stored path, or listed twice) is an error through bad.
func (l *lister) selected(key string, bad func(string, ...any) error) (rel string, err error) {
	rel, ok := strings.CutPrefix(key, l.r.prefix)
	if !ok || rel == "" || strings.HasSuffix(rel, "/") || storage.InQuarantine(rel) {
		return "", nil
	}
	if err := storage.ValidPath(rel); err != nil {
		return "", bad("key %q: %v", key, err)
	}
	if !l.r.opts.NoDuplicateCheck {
		h := maphash.String(l.seed, rel)
		if _, dup := l.seen[h]; dup {
			return "", bad("key %q listed twice", key)
		}
		l.seen[h] = struct{}{}
	}
	if l.dir != "" && !strings.HasPrefix(rel, l.dir+"/") {
		return "", nil
	}
	if l.opts.To != "" && (rel < l.opts.From || rel > l.opts.To) {
		return "", nil
	}
	return rel, nil
}

// emit hands a selected object to fn, its ETag quoted as listings quote
// it.
func (l *lister) emit(rel string, size int64, mod time.Time, etag string) error {
	e := storage.Entry{Path: rel, Size: size, ModTime: mod}
	if etag != "" {
		e.ETag = `"` + strings.Trim(etag, `"`) + `"`
	}
	return l.fn(e)
}

// maxRow bounds the bytes of one row: a key is at most 1024 bytes, three
// times that URL-encoded, and AWS's widest schema adds a few hundred. A
// longer row refuses the report before it fills the memory.
const maxRow = 64 << 10

var errRowTooLong = fmt.Errorf("a row longer than %d bytes", maxRow)

// rowLimit fails a read once a line exceeds maxRow bytes. Keys are
// URL-encoded, so rows hold no newline of their own.
type rowLimit struct {
	r   io.Reader
	run int // bytes since the last newline
}

func (l *rowLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for b := p[:n]; ; {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.run += len(b)
			break
		}
		if l.run+i > maxRow {
			return n, errRowTooLong
		}
		l.run, b = 0, b[i+1:]
	}
	if l.run > maxRow {
		return n, errRowTooLong
	}
	return n, err
}
