package s3fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

const (
	// DefaultPartSize is the part size when Options.PartSize is zero.
	DefaultPartSize = 8 << 20
	// MinPartSize is S3's smallest part (all but the last part of an
	// upload must be as large): a smaller Options.PartSize is raised to it.
	MinPartSize = 5 << 20
)

// maxParts is the most parts S3 takes in one multipart upload.
const maxParts = 10000

// abortTimeout bounds AbortMultipartUpload, which is sent on a context of
// its own: the parts must go even when the caller's context is done.
const abortTimeout = 10 * time.Second

// errTooManyParts fails a write that would need more than 10,000 parts.
var errTooManyParts = errors.New("s3fs: object would need more than 10000 parts: use a larger PartSize")

// Write appends p to the file's buffer. When the buffer holds a whole part
// and more bytes come, the part is uploaded (the first one starts a
// multipart upload) and the buffer reused, so memory stays within one
// part. A failed upload aborts the multipart upload and fails this and
// every later Write and Close.
func (f *file) Write(p []byte) (int, error) {
	if !f.writing || f.closed {
		return 0, &fs.PathError{Op: "write", Path: f.name, Err: fs.ErrClosed}
	}
	if f.err != nil {
		return 0, f.err
	}
	n := 0
	for len(p) > 0 {
		if len(f.buf) == f.fs.partSize {
			// More is coming, so this is not the last part, and the last
			// needs a number too.
			if len(f.parts)+1 == maxParts {
				f.fail(&fs.PathError{Op: "write", Path: f.name, Err: errTooManyParts})
				return n, f.err
			}
			if err := f.uploadPart("write"); err != nil {
				f.fail(err)
				return n, f.err
			}
		}
		k := min(len(p), f.fs.partSize-len(f.buf))
		f.buf = appendBounded(f.buf, p[:k], f.fs.partSize)
		p = p[k:]
		n += k
		f.size += int64(k)
	}
	return n, nil
}

// WriteString is Write of s.
func (f *file) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

// appendBounded appends more to buf, growing it by doubling but never
// beyond limit bytes of capacity.
func appendBounded(buf, more []byte, limit int) []byte {
	if need := len(buf) + len(more); need > cap(buf) {
		c := min(max(2*cap(buf), need), limit)
		grown := make([]byte, len(buf), c)
		copy(grown, buf)
		buf = grown
	}
	return append(buf, more...)
}

// uploadPart uploads the buffer as the next part, starting the multipart
// upload first if this is the first part, and empties the buffer.
func (f *file) uploadPart(op string) error {
	ctx := f.fs.context()
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.uploadID == nil {
		cin := &s3.CreateMultipartUploadInput{Bucket: &f.fs.bucket, Key: &f.key}
		if m := f.meta; m != nil {
			cin.ContentType, cin.ContentEncoding, cin.CacheControl, cin.ContentDisposition, cin.Metadata = m.contentType, m.contentEncoding, m.cacheControl, m.contentDisposition, m.metadata
		}
		out, err := f.fs.client.CreateMultipartUpload(ctx, cin)
		if err != nil {
			return opErr(ctx, op, f.name, err)
		}
		f.uploadID = out.UploadId
	}
	num := int32(len(f.parts) + 1)
	out, err := f.fs.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &f.fs.bucket, Key: &f.key, UploadId: f.uploadID, PartNumber: &num,
		Body: bytes.NewReader(f.buf), ContentLength: aws.Int64(int64(len(f.buf))),
	})
	if err != nil {
		return opErr(ctx, op, f.name, err)
	}
	f.parts = append(f.parts, types.CompletedPart{ETag: out.ETag, PartNumber: &num})
	// The server answered, so it read the whole body: the buffer is free.
	f.buf = f.buf[:0]
	return nil
}

// fail records a failed write, aborts the multipart upload and drops the
// buffer: the transport may still hold it after a failed request.
func (f *file) fail(err error) {
	f.buf = nil
	if aerr := f.abortUpload(); aerr != nil {
		err = errors.Join(err, aerr)
	}
	f.err = err
}

// finish stores the written bytes: with one PutObject if they fit in a
// part, else by uploading the last part and completing the multipart
// upload, which is aborted if anything fails. O_EXCL files are
// create-only on both paths (If-None-Match: *).
func (f *file) finish() error {
	if f.err != nil {
		return f.err // the upload was aborted when the write failed
	}
	ctx := f.fs.context()
	if f.uploadID == nil {
		body := f.buf
		f.buf = nil
		if err := ctx.Err(); err != nil {
			return err
		}
		in := &s3.PutObjectInput{Bucket: &f.fs.bucket, Key: &f.key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))}
		if f.excl {
			in.IfNoneMatch = aws.String("*") // create-only: never overwrite
		}
		if m := f.meta; m != nil {
			in.ContentType, in.ContentEncoding, in.CacheControl, in.ContentDisposition, in.Metadata = m.contentType, m.contentEncoding, m.cacheControl, m.contentDisposition, m.metadata
		}
		out, err := f.fs.client.PutObject(ctx, in)
		if err != nil {
			return f.closeErr(ctx, err)
		}
		f.etag = aws.ToString(out.ETag)
		return nil
	}
	err := f.complete(ctx)
	f.buf = nil
	if err != nil {
		if aerr := f.abortUpload(); aerr != nil {
			return errors.Join(err, aerr)
		}
		return err
	}
	return nil
}

// complete uploads the last part and completes the multipart upload.
func (f *file) complete(ctx context.Context) error {
	if len(f.buf) > 0 {
		if err := f.uploadPart("close"); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &f.fs.bucket, Key: &f.key, UploadId: f.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: f.parts},
	}
	if f.excl {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := f.fs.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		return f.closeErr(ctx, err)
	}
	f.etag = aws.ToString(out.ETag)
	f.uploadID, f.parts = nil, nil
	return nil
}

// closeErr is the error of a Close whose upload failed with err: fs.ErrExist
// when a create-only upload was refused because the key exists, and then
// nothing more is done to the key, since the object there is someone
// else's; ctx's error once ctx is done; otherwise err as a *fs.PathError,
// which never matches fs.ErrExist.
func (f *file) closeErr(ctx context.Context, err error) error {
	if f.excl && isExists(err) {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrExist}
	}
	return opErr(ctx, "close", f.name, err)
}

// abortUpload aborts the multipart upload, if one was started, so that its
// parts are not left stored. It runs on a context of its own, bounded by
// abortTimeout, since it must run even when the file's context is done.
func (f *file) abortUpload() error {
	if f.uploadID == nil {
		return nil
	}
	id := aws.ToString(f.uploadID)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(f.fs.context()), abortTimeout)
	defer cancel()
	_, err := f.fs.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &f.fs.bucket, Key: &f.key, UploadId: f.uploadID})
	f.uploadID, f.parts = nil, nil
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		// Gone already: a Complete whose answer was lost went through.
		return nil
	}
	if err != nil {
		return &fs.PathError{Op: "abort", Path: f.name, Err: fmt.Errorf("multipart upload %s may be left pending: %w", id, err)}
	}
	return nil
}

// Abort discards a file opened for writing without storing it: nothing
// more is uploaded, and a multipart upload already started is aborted so
// that its parts are not left stored. On a file already closed, or
// opened for reading, it does nothing.
func (f *file) Abort() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.body != nil {
		f.body.Close()
	}
	f.buf = nil
	return f.abortUpload()
}
