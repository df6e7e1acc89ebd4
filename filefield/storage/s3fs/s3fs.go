// Package s3fs is mediaclean's S3-compatible backend: an afero.Fs over
// aws-sdk-go-v2 on a bucket and key prefix, with the storage layer's fast
// paths (ListObjectsV2 listing, DeleteObjects batch removal, conditional
// on each object's ETag where the server allows). It is a
// separate package so that importing filefield, sweep or orphan does not
// compile the SDK.
//
// # Semantics
//
//   - Keys are the prefix plus the name, normalised: no leading "/", no
//     "//", no "." segments. A name with a ".." segment is refused with
//     storage.ErrUnsafePath, since some servers map keys to file paths.
//   - Directories are virtual: a name is a directory when keys exist below
//     it. Mkdir and MkdirAll do nothing; Stat of a key that is only a prefix
//     of other keys ("uploads/1" beside "uploads/12.jpg") is fs.ErrNotExist.
//   - Files opened for writing buffer at most Options.PartSize bytes (8
//     MiB by default) in memory. A file that fits is uploaded with one
//     PutObject on Close. A larger one streams as a multipart upload:
//     each time the buffer is full and more bytes come, it is uploaded as
//     a part and reused; Close uploads the last part and completes the
//     upload. Either way the object appears on Close, complete, or not at
//     all; filefield therefore writes final keys directly (the backend
//     reports storage.Features.AtomicCreate) and never renames.
//   - A multipart upload that fails anywhere (a part, the completion, the
//     context running out) is aborted with AbortMultipartUpload, as it is
//     by the file's Abort method, so a failed Close leaves neither an
//     object nor stored parts. The abort runs on a context of its own,
//     bounded by 10 s, since it must run even when the caller's is done;
//     if it fails too, the error says so and the upload stays pending (a
//     bucket lifecycle rule with AbortIncompleteMultipartUpload reclaims
//     such uploads, and those of files never closed). A completion that
//     got no answer (the deadline passed, the connection broke) may still
//     have stored the object: Close cannot know.
//   - O_EXCL creates are create-only: OpenFile refuses an existing key,
//     and the upload carries If-None-Match: *, on PutObject and on
//     CompleteMultipartUpload alike, so two writers cannot overwrite each
//     other. AWS S3 honours the condition on both; versitygw v1.8.0 (the
//     version the tests run) does too, checking it again under its
//     per-key lock just before publishing the object, and leaves the
//     refused upload pending, which s3fs then aborts. On a server that
//     ignored the condition on CompleteMultipartUpload, an O_EXCL file
//     larger than PartSize could overwrite a key created after OpenFile.
//   - A create-only Close that the server refuses because the key exists
//     (412 PreconditionFailed, or 409 ConditionalRequestConflict, which AWS
//     returns while another conditional write of the key is in flight)
//     returns an error matching fs.ErrExist and does nothing more to the
//     key: the object there is someone else's. A Close that failed for
//     any other reason returns an error that does not match fs.ErrExist.
//   - Rename is CopyObject then DeleteObject: not atomic.
//   - Requests are made with context.Background(), or with the context
//     given to WithContext: the Fs it returns, and the files opened
//     through it, send no request once that context is done and return
//     its error itself (not wrapped), so errors.Is(err,
//     context.DeadlineExceeded) holds for an operation that ran out of
//     time. ListFiles and RemoveFiles take their own context.
//   - ListFiles reports objects in byte order of their keys, one call of
//     its callback at a time, one ListObjectsV2 page (1000 keys) after
//     another; with Options.ListWorkers above 1, parts of the key range
//     are listed concurrently, and reported in the same order.
//   - Modification times are the objects' LastModified; Chtimes is not
//     supported.
//   - Batch removal reports a key that did not exist as removed, and cannot
//     tell a "directory" from a missing key: S3's DeleteObjects does not
//     say. See storagetest.ObjectStoreDivergences.
//
// # Conditional deletes
//
// Listings report each object's ETag (storage.Entry.ETag), and callers
// carry it to the deletion (storage.Target.ETag; the storage layer's
// re-check hands on the one it listed). RemoveFiles
// then deletes such an object only if the server finds it still has that
// ETag when it acts on the delete request: an object rewritten after it
// was listed, or after the storage layer's last re-check, is kept
// (storage.KeptChanged). How depends on the server, and is found out per
// Fs by a probe, the first time a deletion carries an ETag:
//
//   - "batch": DeleteObjects with each object's ETag (a per-key
//     PreconditionFailed keeps it). Amazon S3 (general-purpose buckets
//     since September 2025).
//   - "single": one DeleteObject with If-Match per object (412 keeps it),
//     16 requests at a time, where the server honours If-Match but not
//     the ETags of DeleteObjects. versitygw v1.8.0 (the tests' server),
//     whose posix backend checks the ETag and then deletes without
//     holding a lock between the two: the window shrinks to the server's
//     own check-then-delete.
//   - "none": no condition, as before: the storage layer's re-check just
//     before the request is the last check, and an object rewritten in
//     between is deleted. MinIO, and any server that ignores If-Match.
//
// The probe puts a small object under a new key in the quarantine area at
// the prefix's root (".mediaclean-quarantine/.s3fs-probe-*", a place every
// listing skips), tries each way with a wrong ETag and then with the
// right one, and removes it. If the probe fails (no permission to put, a
// server error), RemoveFiles deletes nothing and reports the error for
// every target; the next call probes again. Options.ConditionalDeletes
// chooses a way without a probe. storage.Features.ConditionalDeletes
// reports the way in use. A 409
// ConditionalRequestConflict (another conditional request on the key in
// flight) keeps the object and counts as a failed deletion, which a later
// run retries. A key already gone is storage.KeptGone where the server
// answers 404 (AWS, with If-Match, or a per-key NoSuchKey); versitygw
// answers 204, which is reported as deleted. Deletions without an ETag
// (filefield's own, RemoveAll, MoveFile) are unconditional and never
// probe. A move with an ETag (MoveFileIf, which storage.Delete uses for a
// quarantine target that has one) copies only from an object with that
// ETag and deletes the source under the same condition as RemoveFiles.
package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// pageSize is the keys per ListObjectsV2 page and per DeleteObjects call:
// S3's maximum for both.
const pageSize = 1000

// Options configure an [Fs].
type Options struct {
	// Prefix is prepended to every key, such as "media/". Empty means the
	// bucket's root.
	Prefix string
	// PartSize is the most a file open for writing buffers in memory, and
	// the size of each part when it is uploaded in parts. Zero means
	// DefaultPartSize (8 MiB); less than MinPartSize (5 MiB, S3's smallest
	// part) means MinPartSize. S3 allows 10,000 parts, so an object can
	// hold at most 10,000 times PartSize bytes.
	PartSize int
	// ConditionalDeletes says how RemoveFiles makes the deletion of a
	// target with an ETag conditional on it, so that an object rewritten
	// since it was listed is kept: ConditionalAuto (the default, also "")
	// finds out with a probe on the bucket, the first time a deletion
	// carries an ETag; ConditionalBatch and ConditionalSingle use that way
	// without a probe, and ConditionalOff sends no condition. Forcing a
	// way the server ignores gives ConditionalOff's guarantee only. Any
	// other value makes New panic.
	ConditionalDeletes string
	// ListWorkers is how many parts of a key range ListFiles lists at
	// once. Zero means DefaultListWorkers (1): one page after another, one
	// ListObjectsV2 request at a time, as a plain paginator would.
	//
	// With more than 1, a listing whose first page is not its last splits
	// the rest of its range at "directories" (the CommonPrefixes of
	// delimiter listings, at a depth chosen from the keys of the first
	// page), and lists up to ListWorkers parts concurrently, each with
	// ListObjectsV2 from its start key. What fn sees does not change: the
	// same entries as with 1, each once, in byte order of their keys, one
	// call at a time, never concurrently.
	//
	// Costs: up to ListWorkers+1 requests in flight (the parts, and the
	// delimiter listings that find the split points); about one request
	// more per part than a sequential listing, since a part's last page
	// reads past its end to find it (parts aim at 16 pages: about 6% more
	// listing requests, and as much more work for the server), plus one
	// delimiter request per 1000 directories at the split depth and one
	// per directory above it; and memory for at most 16 pages of 1000
	// entries buffered per part ahead of fn, plus one being fetched: about
	// ListWorkers × 17000 entries (about 2 MB each). A listing of one page
	// costs one request, as with 1.
	//
	// The speedup comes from the directory structure and from waiting on
	// the network: keys with no "/" after the listing's prefix, or a
	// directory with no subdirectories holding most of the range, give no
	// split point and are listed one page after another; a server short
	// of CPU gains little (see examples/bench, T8).
	ListWorkers int
}

// DefaultListWorkers is the ListWorkers of an Options that leaves it zero:
// sequential listings, the request counts of a plain paginator.
const DefaultListWorkers = 1

// Fs is an afero.Fs over one bucket (and key prefix) of an S3-compatible
// server. It is safe for concurrent use.
type Fs struct {
	client   *s3.Client
	bucket   string
	prefix   string          // normalised, ending in "/" unless empty
	partSize int             // bytes
	ctx      context.Context // of every request; nil means context.Background()
	cond     *condDeletes    // how deletions are conditional on ETags
	workers  int             // ListWorkers, at least 1
	partKeys int             // the keys a part of a parallel listing aims at
	// beforeDelete, when set, is called by RemoveFiles just before its
	// delete requests, after any probe: tests rewrite objects there.
	beforeDelete func([]storage.Target)
}

var (
	_ afero.Fs        = (*Fs)(nil)
	_ storage.Lister  = (*Fs)(nil)
	_ storage.Remover = (*Fs)(nil)
	_ storage.Mover   = (*Fs)(nil)
)

// New returns an Fs on bucket through client.
func New(client *s3.Client, bucket string, opts Options) *Fs {
	p := strings.Trim(opts.Prefix, "/")
	if p != "" {
		p += "/"
	}
	ps := opts.PartSize
	switch {
	case ps == 0:
		ps = DefaultPartSize
	case ps < MinPartSize:
		ps = MinPartSize
	}
	w := opts.ListWorkers
	if w <= 0 {
		w = DefaultListWorkers
	}
	return &Fs{client: client, bucket: bucket, prefix: p, partSize: ps, cond: newCondDeletes(opts.ConditionalDeletes), workers: w, partKeys: partPages * pageSize}
}

// WithContext returns a shallow copy of f, as an afero.Fs whose dynamic
// type is *Fs, that makes every request with ctx: those of Stat, Open,
// OpenFile, Remove, RemoveAll and Rename, and those of the files it opens
// (their reads, Readdir, and the upload on Close). Once ctx is done, they
// return ctx.Err() itself, not wrapped. ListFiles and
// RemoveFiles use the context they are given, on f and on the copy alike.
func (f *Fs) WithContext(ctx context.Context) afero.Fs {
	c := *f
	c.ctx = ctx
	return &c
}

// context returns the context of f's requests.
func (f *Fs) context() context.Context {
	if f.ctx == nil {
		return context.Background()
	}
	return f.ctx
}

// Features reports an object store's: objects appear whole on Close and
// renames are copies, a key range lists cheaply, and there are no links.
// ConditionalDeletes is the way Options.ConditionalDeletes chose, or the
// probe found ("batch", "single" or "none"), and "" before the probe.
func (f *Fs) Features() storage.Features {
	return storage.Features{AtomicCreate: true, RangeListing: true, NoFollow: true, ConditionalDeletes: f.cond.known()}
}

// Name returns "s3fs".
func (f *Fs) Name() string { return "s3fs" }

// clean normalises an afero name to a path relative to the prefix ("" for
// the root), refusing ".." segments.
func clean(name string) (string, error) {
	var segs []string
	for s := range strings.SplitSeq(name, "/") {
		switch s {
		case "", ".":
			continue
		case "..":
			return "", &storage.PathError{Op: "s3fs", Path: name, Err: storage.ErrUnsafePath}
		}
		segs = append(segs, s)
	}
	return strings.Join(segs, "/"), nil
}

func (f *Fs) key(name string) (string, string, error) {
	p, err := clean(name)
	if err != nil {
		return "", "", err
	}
	return p, f.prefix + p, nil
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// isExists reports whether err refuses a create-only write (If-None-Match:
// *) because the key exists: 412 PreconditionFailed, or 409
// ConditionalRequestConflict, which AWS S3 returns when another
// conditional write of the key is in flight and is taken as lost to it.
// Any other 409 (such as OperationAborted) is not.
func isExists(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "PreconditionFailed", "ConditionalRequestConflict":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

func pathErr(op, name string, err error) error {
	if isNotFound(err) {
		err = fs.ErrNotExist
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// opErr is pathErr for the failure of a request made with ctx: once ctx is
// done, whatever the request said, it returns ctx.Err(), unwrapped.
func opErr(ctx context.Context, op, name string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return pathErr(op, name, err)
}

// fileInfo describes an object or a virtual directory.
type fileInfo struct {
	name  string
	size  int64
	mod   time.Time
	isDir bool
	etag  string // an object's, as HeadObject gives it
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) ModTime() time.Time { return i.mod }
func (i *fileInfo) IsDir() bool        { return i.isDir }
func (i *fileInfo) Sys() any           { return nil }
func (i *fileInfo) Mode() fs.FileMode {
	if i.isDir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

// stat returns the object's info, a virtual directory's, or ErrNotExist.
func (f *Fs) stat(ctx context.Context, name string) (*fileInfo, error) {
	rel, key, err := f.key(name)
	if err != nil {
		return nil, err
	}
	base := path.Base("/" + rel)
	if rel == "" {
		return &fileInfo{name: "/", isDir: true}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	if err == nil {
		return &fileInfo{name: base, size: aws.ToInt64(out.ContentLength), mod: aws.ToTime(out.LastModified), etag: aws.ToString(out.ETag)}, nil
	}
	if !isNotFound(err) {
		return nil, opErr(ctx, "stat", name, err)
	}
	dir, err := f.hasChildren(ctx, key)
	if err != nil {
		return nil, opErr(ctx, "stat", name, err)
	}
	if dir {
		return &fileInfo{name: base, isDir: true}, nil
	}
	return nil, pathErr("stat", name, fs.ErrNotExist)
}

func (f *Fs) hasChildren(ctx context.Context, key string) (bool, error) {
	p := key + "/"
	out, err := f.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &f.bucket, Prefix: &p, MaxKeys: aws.Int32(1)})
	if err != nil {
		return false, err
	}
	return len(out.Contents) > 0, nil
}

// Stat returns the FileInfo of an object or a virtual directory.
func (f *Fs) Stat(name string) (os.FileInfo, error) {
	fi, err := f.stat(f.context(), name)
	if err != nil {
		return nil, err
	}
	return fi, nil
}

// Create creates or truncates an object, stored on Close.
func (f *Fs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Mkdir does nothing: directories are virtual.
func (f *Fs) Mkdir(string, os.FileMode) error { return nil }

// MkdirAll does nothing: directories are virtual.
func (f *Fs) MkdirAll(string, os.FileMode) error { return nil }

// Open opens an object for reading, or a virtual directory for Readdir.
func (f *Fs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens an object. Writing needs O_CREATE, with O_TRUNC or
// O_EXCL: objects cannot be appended to or written in place.
func (f *Fs) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	ctx := f.context()
	rel, key, err := f.key(name)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		fi, err := f.stat(ctx, name)
		if err != nil {
			return nil, err
		}
		return &file{fs: f, name: rel, key: key, info: fi}, nil
	}
	if flag&os.O_CREATE == 0 || flag&(os.O_TRUNC|os.O_EXCL) == 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("s3fs: objects are written whole: need O_CREATE with O_TRUNC or O_EXCL: %w", errors.ErrUnsupported)}
	}
	if strings.ContainsRune(rel, 0) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: storage.ErrUnsafePath}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	excl := flag&os.O_EXCL != 0
	if excl {
		if _, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key}); err == nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
		} else if !isNotFound(err) {
			return nil, opErr(ctx, "open", name, err)
		}
	}
	return &file{fs: f, name: rel, key: key, writing: true, excl: excl}, nil
}

// Remove deletes an object. A virtual directory with keys below it is not
// removed (ENOTEMPTY); a missing key is fs.ErrNotExist.
func (f *Fs) Remove(name string) error {
	ctx := f.context()
	_, key, err := f.key(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key}); err != nil {
		if !isNotFound(err) {
			return opErr(ctx, "remove", name, err)
		}
		dir, err := f.hasChildren(ctx, key)
		if err != nil {
			return opErr(ctx, "remove", name, err)
		}
		if dir {
			return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
		}
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if _, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}); err != nil {
		return opErr(ctx, "remove", name, err)
	}
	return nil
}

// RemoveAll deletes an object and every key below it.
func (f *Fs) RemoveAll(name string) error {
	ctx := f.context()
	rel, _, err := f.key(name)
	if err != nil {
		return err
	}
	if rel == "" {
		return &storage.PathError{Op: "removeall", Path: name, Err: storage.ErrUnsafePath}
	}
	targets := []storage.Target{{Path: rel}}
	err = f.ListFiles(ctx, storage.ListOptions{Dir: rel}, func(e storage.Entry) error {
		targets = append(targets, storage.Target{Path: e.Path})
		return nil
	})
	if err != nil {
		return err
	}
	for _, err := range f.RemoveFiles(ctx, targets) {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// Rename copies oldname to newname, then deletes oldname. It is not atomic.
func (f *Fs) Rename(oldname, newname string) error {
	ctx := f.context()
	_, okey, err := f.key(oldname)
	if err != nil {
		return err
	}
	_, nkey, err := f.key(newname)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &okey}); err != nil {
		return opErr(ctx, "rename", oldname, err)
	}
	// CopySource is "bucket/key", percent-encoded; servers decode it as a
	// query value would be, so a raw "+" would name a key with a space.
	src := escapeKey(f.bucket) + "/" + escapeKey(okey)
	if _, err := f.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &f.bucket, Key: &nkey, CopySource: &src}); err != nil {
		return opErr(ctx, "rename", oldname, err)
	}
	if _, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &okey}); err != nil {
		return opErr(ctx, "rename", oldname, err)
	}
	return nil
}

// MoveFile implements storage.Mover: it copies oldname to newname only
// if newname does not exist, then deletes oldname. The destination is
// checked with a HEAD first. Into a quarantine area the copy is a
// CopyObject with If-None-Match: *, which some servers ignore (versitygw)
// but no one else writes there; out of one (a restore, to a live path)
// the bytes go through the client as a create-only PutObject (in parts
// when large), which servers honour, so that a key created between the
// HEAD and the copy is never replaced. If the source cannot be deleted
// and stays, the copy is deleted only while it still has its own ETag. A
// missing oldname is fs.ErrNotExist, an existing newname fs.ErrExist.
// Keys have no links, and every object is a regular file.
func (f *Fs) MoveFile(oldname, newname string) error {
	return f.move(oldname, newname, "")
}

// dropCopy deletes the copy a move made at nkey, only if the object
// there still has the copy's ETag: conditionally where the bucket honours
// it, else after a HEAD that finds it. Without an ETag, or if anything
// fails, the copy stays: a second copy of a file loses nothing.
func (f *Fs) dropCopy(ctx context.Context, newname, nkey, copied string) {
	if copied == "" {
		return
	}
	head, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &nkey})
	if err != nil || !storage.SameETag(aws.ToString(head.ETag), copied) {
		return
	}
	_ = f.RemoveFiles(ctx, []storage.Target{{Path: newname, ETag: copied}})
}

// MoveFileIf implements storage.ETagMover: MoveFile for an object that
// still has etag. The copy is made only from an object with that ETag
// (x-amz-copy-source-if-match), and the source is then deleted as
// RemoveFiles deletes a target with that ETag: conditionally where the
// bucket honours it. A source rewritten before either request is kept,
// with storage.ErrChanged, and the copy made, if any, is deleted again.
func (f *Fs) MoveFileIf(oldname, newname, etag string) error {
	return f.move(oldname, newname, etag)
}

func (f *Fs) move(oldname, newname, etag string) error {
	ctx := f.context()
	_, okey, err := f.key(oldname)
	if err != nil {
		return err
	}
	rel, nkey, err := f.key(newname)
	if err != nil {
		return err
	}
	if rel == "" {
		return &storage.PathError{Op: "move", Path: newname, Err: storage.ErrUnsafePath}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &nkey}); err == nil {
		return &fs.PathError{Op: "move", Path: newname, Err: fs.ErrExist}
	} else if !isNotFound(err) {
		return opErr(ctx, "move", newname, err)
	}
	var copied string // the copy's ETag
	if storage.InQuarantine(newname) {
		// Into a quarantine area, where no one else writes: a copy in the
		// server.
		copied, err = f.copyObject(ctx, okey, nkey, etag)
	} else {
		// Out to a live path (a restore), where an upload may arrive
		// after the HEAD above: versitygw, for one, ignores If-None-Match
		// on CopyObject and would replace it. A create-only PutObject of
		// the bytes is refused there instead.
		copied, err = f.putCopy(ctx, okey, rel, nkey, etag)
	}
	switch {
	case err != nil && etag != "" && isPreconditionFailed(err) && !f.exists(ctx, nkey):
		// 412 with the destination still free: the source's ETag differs.
		return &fs.PathError{Op: "move", Path: oldname, Err: storage.ErrChanged}
	case err != nil && (isExists(err) || errors.Is(err, fs.ErrExist)):
		return &fs.PathError{Op: "move", Path: newname, Err: fs.ErrExist}
	case err != nil:
		return opErr(ctx, "move", oldname, err)
	}
	return f.dropSource(ctx, oldname, newname, okey, nkey, etag, copied)
}

// copyObject copies okey to nkey in the server, create-only where the
// server honours it, from a source that still has etag (when given), and
// returns the copy's ETag.
func (f *Fs) copyObject(ctx context.Context, okey, nkey, etag string) (string, error) {
	src := escapeKey(f.bucket) + "/" + escapeKey(okey)
	in := &s3.CopyObjectInput{Bucket: &f.bucket, Key: &nkey, CopySource: &src, IfNoneMatch: aws.String("*")}
	if etag != "" {
		in.CopySourceIfMatch = aws.String(etag)
	}
	out, err := f.client.CopyObject(ctx, in)
	if err != nil {
		return "", err
	}
	if out.CopyObjectResult != nil {
		return aws.ToString(out.CopyObjectResult.ETag), nil
	}
	return "", nil
}

// putCopy copies okey to nkey (newname, relative) through the client: a
// GetObject of a source that still has etag (when given), written as a
// create-only object (If-None-Match: *, in parts when large) with its
// content type and metadata, which a server refuses when the key exists.
// A read that fails stores nothing. It returns the copy's ETag.
func (f *Fs) putCopy(ctx context.Context, okey, newname, nkey, etag string) (string, error) {
	gin := &s3.GetObjectInput{Bucket: &f.bucket, Key: &okey}
	if etag != "" {
		gin.IfMatch = aws.String(etag)
	}
	obj, err := f.client.GetObject(ctx, gin)
	if err != nil {
		return "", err
	}
	defer obj.Body.Close()
	w := &file{fs: f, name: newname, key: nkey, writing: true, excl: true, meta: &objectMeta{
		contentType: obj.ContentType, contentEncoding: obj.ContentEncoding, cacheControl: obj.CacheControl,
		contentDisposition: obj.ContentDisposition, metadata: obj.Metadata,
	}}
	n, err := io.Copy(w, obj.Body)
	if err == nil && (obj.ContentLength == nil || n != *obj.ContentLength) {
		// A body that ended early without an error (an answer a proxy
		// sent without Content-Length, cut off): the bytes are not whole.
		err = fmt.Errorf("s3fs: read %d bytes of %q, which has %d: %w", n, okey, aws.ToInt64(obj.ContentLength), io.ErrUnexpectedEOF)
	}
	if err != nil {
		if w.err == nil { // the read failed, not the write: store nothing
			w.err = err
			_ = w.abortUpload()
		}
		w.closed = true
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return w.etag, nil
}

// dropSource ends a move whose copy is made: it deletes the source (if
// it still has etag, when given), or, if the source stays, the copy, if
// it still is the copy (copied, its ETag).
func (f *Fs) dropSource(ctx context.Context, oldname, newname, okey, nkey, etag, copied string) error {
	var err error
	if etag == "" {
		_, err = f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &okey})
		if err != nil {
			err = opErr(ctx, "move", oldname, deleteCause(err))
		}
	} else {
		err = f.RemoveFiles(ctx, []storage.Target{{Path: oldname, ETag: etag}})[0]
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		// Gone: this delete did it, or an attempt of it whose answer
		// was lost (a retry then meets no object). The copy holds it.
		return nil
	}
	// The delete failed, or its answer was lost: whether the source is
	// still there decides.
	bg := context.WithoutCancel(ctx)
	_, herr := f.client.HeadObject(bg, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &okey})
	switch {
	case herr != nil && isNotFound(herr):
		return nil // the source is gone: the copy is the file now
	case herr != nil:
		// Unknown: the copy stays, so that the file is somewhere (a
		// quarantine lists it in its manifest).
		return err
	}
	// The source stays (rewritten after the copy, or the delete failed),
	// and the copy of what it held goes, if it still is the copy: at a
	// live path (a restore), the application may have written its own
	// file there since.
	f.dropCopy(bg, newname, nkey, copied)
	if errors.Is(err, storage.ErrChanged) {
		return &fs.PathError{Op: "move", Path: oldname, Err: storage.ErrChanged}
	}
	return err
}

// exists reports whether key is an object; an error counts as yes, which
// reports a refused move as a taken destination rather than a change.
func (f *Fs) exists(ctx context.Context, key string) bool {
	_, err := f.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &f.bucket, Key: &key})
	return err == nil || !isNotFound(err)
}

// isPreconditionFailed reports a 412: for a copy, either its source no
// longer has the ETag of x-amz-copy-source-if-match, or (If-None-Match)
// its destination exists.
func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

// escapeKey percent-encodes every byte of k (as %XX) except "/" and the
// unreserved characters A-Z, a-z, 0-9, "-", "_", "." and "~": the form in
// which every server decodes a CopySource back to k. url.PathEscape is not
// enough: it leaves "+", "&", "=", "$", ",", ";" and "@" as they are, and
// servers decode a "+" as a space.
func escapeKey(k string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(k))
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// Chmod does nothing: objects have no mode.
func (f *Fs) Chmod(string, os.FileMode) error { return nil }

// Chown does nothing: objects have no owner.
func (f *Fs) Chown(string, int, int) error { return nil }

// Chtimes is not supported: LastModified is set by the server.
func (f *Fs) Chtimes(name string, _, _ time.Time) error {
	return &fs.PathError{Op: "chtimes", Path: name, Err: errors.ErrUnsupported}
}

// errEndOfRange stops listObjects early without an error.
var errEndOfRange = errors.New("end of range")

// pages pages through ListObjectsV2 (1000 keys a request) and calls fn
// with each page's objects as Entries, their paths relative to the Fs
// prefix (folder markers some tools write are skipped), with the last key
// of the page, decoded, folder markers included ("" for an empty page),
// and whether more pages follow. path names the listing in errors. ctx
// is checked before each page; once it is done, pages returns ctx.Err()
// unwrapped.
func (f *Fs) pages(ctx context.Context, in *s3.ListObjectsV2Input, path string, fn func(es []storage.Entry, last string, more bool) error) error {
	in.Bucket, in.MaxKeys, in.EncodingType = &f.bucket, aws.Int32(pageSize), listEncoding
	p := s3.NewListObjectsV2Paginator(f.client, in)
	for p.HasMorePages() {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return &storage.PathError{Op: "list", Path: path, Err: err}
		}
		es := make([]storage.Entry, 0, len(page.Contents))
		last := ""
		for _, o := range page.Contents {
			k, err := listedKey(page.EncodingType, o.Key)
			if err != nil {
				return &storage.PathError{Op: "list", Path: path, Err: err}
			}
			last = k
			if strings.HasSuffix(k, "/") {
				continue
			}
			es = append(es, storage.Entry{Path: strings.TrimPrefix(k, f.prefix), Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified), ETag: aws.ToString(o.ETag)})
		}
		if err := fn(es, last, p.HasMorePages()); err != nil {
			return err
		}
	}
	return nil
}

// listObjects calls fn with each object pages lists, in order. fn returns
// errEndOfRange to stop early without an error.
func (f *Fs) listObjects(ctx context.Context, in *s3.ListObjectsV2Input, path string, fn func(storage.Entry) error) error {
	err := f.pages(ctx, in, path, func(es []storage.Entry, _ string, _ bool) error {
		for _, e := range es {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errEndOfRange) {
		return nil
	}
	return err
}

// beforeKey returns a key that sorts before k and is a prefix of it, for
// StartAfter, which is exclusive: k without its last character, a whole
// UTF-8 character, and without the bytes of a character cut in the
// middle before it (a range bound need not be a key), so that the key
// sent is valid UTF-8 whenever what is left of k before the cut is.
func beforeKey(k string) string {
	_, n := utf8.DecodeLastRuneInString(k)
	k = k[:len(k)-n]
	for k != "" {
		if r, n := utf8.DecodeLastRuneInString(k); r != utf8.RuneError || n != 1 {
			break
		}
		k = k[:len(k)-1]
	}
	return k
}

// ListFiles implements storage.Lister with ListObjectsV2, 1000 keys a
// page, taking size and LastModified from the listing. Only objects are
// reported (there are no directories), so fs.SkipDir never comes up.
// Entries come in byte order of their keys. A key range (opts.From to
// opts.To) starts the listing just before From and stops after To: a
// batch of 1000 adjacent keys costs one request. With Options.ListWorkers
// above 1, parts of the range are listed concurrently, and fn still sees
// them in order, one at a time.
func (f *Fs) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	rel, key, err := f.key(opts.Dir)
	if err != nil {
		return err
	}
	base := f.prefix
	if rel != "" {
		base = key + "/"
	}
	in := &s3.ListObjectsV2Input{Prefix: aws.String(base)}
	name, to := opts.Dir, ""
	// Keys come in strictly increasing byte order, or the listing fails:
	// a server or proxy that repeats an entry (a page resumed at its
	// continuation key, a StartAfter read as inclusive) would count one
	// file twice, and a sweep keeping the latest N per group would delete
	// the one it counted as older.
	last, first := "", true
	ordered := fn
	fn = func(e storage.Entry) error {
		if !first && e.Path <= last {
			return fmt.Errorf("s3fs: listing %q: %q came after %q: the server's listing repeats or reorders keys", f.prefix+opts.Dir, e.Path, last)
		}
		last, first = e.Path, false
		return ordered(e)
	}
	if opts.To != "" {
		if opts.To < opts.From {
			return nil
		}
		if opts.From != "" {
			// StartAfter is exclusive; a proper prefix of From sorts just
			// before it.
			in.StartAfter = aws.String(f.prefix + beforeKey(opts.From))
		}
		name, to = opts.From, opts.To
		inner := fn
		fn = func(e storage.Entry) error {
			switch {
			case e.Path > opts.To:
				return errEndOfRange
			case e.Path < opts.From:
				return nil
			}
			if err := inner(e); err != nil {
				return err
			}
			if e.Path == opts.To {
				return errEndOfRange
			}
			return nil
		}
	}
	if f.workers <= 1 {
		return f.listObjects(ctx, in, name, fn)
	}
	err = f.listParallel(ctx, in, base, to, name, fn)
	if errors.Is(err, errEndOfRange) {
		return nil
	}
	return err
}

// RemoveDir removes nothing: directories are virtual. It reports
// fs.ErrNotExist when no key is below name, and ENOTEMPTY when some are.
func (f *Fs) RemoveDir(name string) error {
	ctx := f.context()
	_, key, err := f.key(name)
	if err != nil {
		return err
	}
	dir, err := f.hasChildren(ctx, key)
	if err != nil {
		return opErr(ctx, "rmdir", name, err)
	}
	if dir {
		return &fs.PathError{Op: "rmdir", Path: name, Err: syscall.ENOTEMPTY}
	}
	return &fs.PathError{Op: "rmdir", Path: name, Err: fs.ErrNotExist}
}
