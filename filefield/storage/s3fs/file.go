package s3fs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// file is an open object: read with ranged GETs, or written into a buffer
// of at most one part, uploaded on Close or, past one part, as a multipart
// upload (see upload.go).
type file struct {
	fs   *Fs
	name string // relative to the prefix
	key  string
	info *fileInfo

	// reading
	body   io.ReadCloser
	off    int64 // offset of the next Read
	bodyAt int64 // offset body is at
	listed bool

	// writing
	writing  bool
	excl     bool
	buf      []byte  // written bytes not yet uploaded: at most fs.partSize
	size     int64   // bytes written
	uploadID *string // of the multipart upload, once one is started
	parts    []types.CompletedPart
	err      error       // a failed write's, returned by every later Write and Close
	meta     *objectMeta // headers to store the object with, or nil
	etag     string      // the stored object's, once Close stored it

	closed bool
}

// objectMeta are the headers an object is stored with that a copy
// through the client must carry over.
type objectMeta struct {
	contentType, contentEncoding, cacheControl, contentDisposition *string
	metadata                                                       map[string]string
}

func (f *file) Name() string { return f.name }

func (f *file) Stat() (os.FileInfo, error) {
	if f.writing {
		return &fileInfo{name: path.Base("/" + f.name), size: f.size}, nil
	}
	return f.info, nil
}

func (f *file) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	if f.body != nil {
		f.body.Close()
	}
	if f.writing {
		return f.finish()
	}
	return nil
}

func (f *file) Read(p []byte) (int, error) {
	if f.writing || f.info.isDir {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.ErrUnsupported}
	}
	if f.off >= f.info.size {
		return 0, io.EOF
	}
	ctx := f.fs.context()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if f.body == nil || f.bodyAt != f.off {
		if f.body != nil {
			f.body.Close()
		}
		rng := fmt.Sprintf("bytes=%d-", f.off)
		out, err := f.fs.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.fs.bucket, Key: &f.key, Range: &rng})
		if err != nil {
			return 0, opErr(ctx, "read", f.name, err)
		}
		f.body, f.bodyAt = out.Body, f.off
	}
	n, err := f.body.Read(p)
	f.off += int64(n)
	f.bodyAt = f.off
	switch {
	case err == io.EOF && f.off < f.info.size:
		err = io.ErrUnexpectedEOF
	case err != nil && err != io.EOF && ctx.Err() != nil:
		err = ctx.Err()
	}
	return n, err
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.writing || f.info.isDir {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.ErrUnsupported}
	}
	if off >= f.info.size {
		return 0, io.EOF
	}
	ctx := f.fs.context()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rng := fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)
	out, err := f.fs.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &f.fs.bucket, Key: &f.key, Range: &rng})
	if err != nil {
		return 0, opErr(ctx, "read", f.name, err)
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = io.EOF
	case err != nil && err != io.EOF && ctx.Err() != nil:
		err = ctx.Err()
	}
	return n, err
}

func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.writing {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errors.ErrUnsupported}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.info.size
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	f.off = offset
	return offset, nil
}

func (f *file) WriteAt([]byte, int64) (int, error) {
	return 0, &fs.PathError{Op: "writeat", Path: f.name, Err: errors.ErrUnsupported}
}

func (f *file) Truncate(int64) error {
	return &fs.PathError{Op: "truncate", Path: f.name, Err: errors.ErrUnsupported}
}

// Sync does nothing: parts are uploaded as the buffer fills, and the
// object appears on Close.
func (f *file) Sync() error { return nil }

// Readdir lists a virtual directory's objects and subdirectories, all in
// one call (n <= 0) or in one batch followed by io.EOF.
func (f *file) Readdir(n int) ([]os.FileInfo, error) {
	if !f.info.isDir {
		return nil, &fs.PathError{Op: "readdir", Path: f.name, Err: errors.New("not a directory")}
	}
	if f.listed {
		if n > 0 {
			return nil, io.EOF
		}
		return nil, nil
	}
	f.listed = true
	prefix := f.fs.prefix
	if f.name != "" {
		prefix += f.name + "/"
	}
	ctx := f.fs.context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []os.FileInfo
	p := s3.NewListObjectsV2Paginator(f.fs.client, &s3.ListObjectsV2Input{Bucket: &f.fs.bucket, Prefix: &prefix, Delimiter: aws.String("/"), MaxKeys: aws.Int32(pageSize), EncodingType: listEncoding})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, opErr(ctx, "readdir", f.name, err)
		}
		for _, cp := range page.CommonPrefixes {
			k, err := listedKey(page.EncodingType, cp.Prefix)
			if err != nil {
				return out, opErr(ctx, "readdir", f.name, err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(k, prefix), "/")
			out = append(out, &fileInfo{name: name, isDir: true})
		}
		for _, o := range page.Contents {
			k, err := listedKey(page.EncodingType, o.Key)
			if err != nil {
				return out, opErr(ctx, "readdir", f.name, err)
			}
			name := strings.TrimPrefix(k, prefix)
			if name == "" || strings.HasSuffix(name, "/") {
				continue
			}
			out = append(out, &fileInfo{name: name, size: aws.ToInt64(o.Size), mod: aws.ToTime(o.LastModified)})
		}
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

func (f *file) Readdirnames(n int) ([]string, error) {
	infos, err := f.Readdir(n)
	names := make([]string, len(infos))
	for i, fi := range infos {
		names[i] = fi.Name()
	}
	return names, err
}
