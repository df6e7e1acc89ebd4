package s3fs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// singleWorkers bounds the DeleteObject requests in flight at once when
// conditional deletes go one object a request.
const singleWorkers = 16

// RemoveFiles implements storage.Remover with DeleteObjects, 1000 keys a
// call, checking the per-key errors inside the 200 response. A target
// with an ETag is deleted only if the object still has that ETag, checked
// by the server in the delete request itself, as the bucket allows (see
// Options.ConditionalDeletes): a per-object ETag in DeleteObjects
// ("batch"), one DeleteObject with If-Match each ("single"), or no check
// at all ("none"). A refusal (412, or a per-key PreconditionFailed) is
// storage.ErrChanged and keeps the object; a missing key (404 NoSuchKey)
// is fs.ErrNotExist; a 409 ConditionalRequestConflict (another request on
// the key in flight) is a failure like any other: the object stays, and
// a later run tries again. When the bucket's way is not known and the
// probe that finds it out fails, nothing is deleted: every target reports
// the probe's error.
func (f *Fs) RemoveFiles(ctx context.Context, targets []storage.Target) []error {
	errs := make([]error, len(targets))
	mode := modeNone
	if hasETag(targets) {
		m, err := f.cond.get(ctx, f)
		if err != nil {
			for i, t := range targets {
				errs[i] = failed(ctx, t.Path, err)
			}
			return errs
		}
		mode = m
	}
	if f.beforeDelete != nil {
		f.beforeDelete(targets)
	}
	for start := 0; start < len(targets); start += pageSize {
		if err := ctx.Err(); err != nil {
			for i := start; i < len(targets); i++ {
				errs[i] = err
			}
			return errs
		}
		chunk := targets[start:min(start+pageSize, len(targets))]
		copy(errs[start:], f.removeChunk(ctx, chunk, mode))
	}
	return errs
}

func hasETag(targets []storage.Target) bool {
	for _, t := range targets {
		if t.ETag != "" {
			return true
		}
	}
	return false
}

// failed is the error of a request about p that failed with err: ctx's
// own error once ctx is done, else a *storage.PathError.
func failed(ctx context.Context, p string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return &storage.PathError{Op: "remove", Path: p, Err: err}
}

// removeChunk deletes up to 1000 targets in mode. In "single" mode the
// targets without an ETag still go in one DeleteObjects request.
func (f *Fs) removeChunk(ctx context.Context, chunk []storage.Target, mode string) []error {
	if mode != modeSingle {
		return f.removeBatch(ctx, chunk, mode == modeBatch)
	}
	var plain, tagged []storage.Target
	var plainAt, taggedAt []int
	for i, t := range chunk {
		if t.ETag == "" {
			plain, plainAt = append(plain, t), append(plainAt, i)
		} else {
			tagged, taggedAt = append(tagged, t), append(taggedAt, i)
		}
	}
	errs := make([]error, len(chunk))
	for j, err := range f.removeBatch(ctx, plain, false) {
		errs[plainAt[j]] = err
	}
	for j, err := range f.removeSingle(ctx, tagged) {
		errs[taggedAt[j]] = err
	}
	return errs
}

// removeKey returns the key of the file p, refusing the root.
func (f *Fs) removeKey(p string) (string, error) {
	rel, key, err := f.key(p)
	if err != nil || rel == "" {
		return "", &storage.PathError{Op: "remove", Path: p, Err: storage.ErrUnsafePath}
	}
	return key, nil
}

// removeBatch deletes chunk with one DeleteObjects request, each object
// on the condition of its ETag if withETags.
func (f *Fs) removeBatch(ctx context.Context, chunk []storage.Target, withETags bool) []error {
	errs := make([]error, len(chunk))
	ids := make([]types.ObjectIdentifier, 0, len(chunk))
	index := make(map[string]int, len(chunk))
	var again []int // targets whose key an earlier one of chunk has
	for i, t := range chunk {
		key, err := f.removeKey(t.Path)
		if err != nil {
			errs[i] = err
			continue
		}
		if _, ok := index[key]; ok {
			// Results come back by key: a second target of the same key
			// goes in a request of its own, after this one.
			again = append(again, i)
			continue
		}
		if !xmlSafe(key) {
			// The request's XML body would carry another key (the SDK
			// turns U+FFFE and U+FFFF into U+FFFD): this one goes in a
			// request of its own, the key in its URL.
			errs[i] = f.removeOne(ctx, t)
			continue
		}
		id := types.ObjectIdentifier{Key: aws.String(key)}
		if withETags && t.ETag != "" {
			id.ETag = aws.String(quoteETag(t.ETag))
		}
		ids = append(ids, id)
		index[key] = i
	}
	if len(ids) > 0 {
		out, err := f.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &f.bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			for _, i := range index {
				errs[i] = failed(ctx, chunk[i].Path, err)
			}
		} else {
			for _, e := range out.Errors {
				if i, ok := index[aws.ToString(e.Key)]; ok {
					errs[i] = &storage.PathError{Op: "remove", Path: chunk[i].Path, Err: deleteCause(keyError(e))}
				}
			}
		}
	}
	for _, i := range again {
		t := chunk[i]
		if !withETags {
			t.ETag = "" // as in the batch
		}
		errs[i] = f.removeOne(ctx, t)
	}
	return errs
}

// xmlSafe reports whether XML 1.0 can carry s as it is: valid UTF-8 with
// no character outside XML's Char production.
func xmlSafe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r < 0x20, r == 0xFFFE, r == 0xFFFF:
			return false
		}
	}
	return true
}

// keyError is one key's error in a DeleteObjects response, as an API
// error.
func keyError(e types.Error) error {
	return &smithy.GenericAPIError{Code: aws.ToString(e.Code), Message: aws.ToString(e.Message)}
}

// removeSingle deletes each target with a DeleteObject of its own, with
// If-Match when it has an ETag, singleWorkers at a time.
func (f *Fs) removeSingle(ctx context.Context, chunk []storage.Target) []error {
	errs := make([]error, len(chunk))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(singleWorkers, len(chunk)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunk) {
					return
				}
				errs[i] = f.removeOne(ctx, chunk[i])
			}
		})
	}
	wg.Wait()
	return errs
}

func (f *Fs) removeOne(ctx context.Context, t storage.Target) error {
	key, err := f.removeKey(t.Path)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	in := &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key}
	if t.ETag != "" {
		in.IfMatch = aws.String(quoteETag(t.ETag))
	}
	if _, err := f.client.DeleteObject(ctx, in); err != nil {
		return failed(ctx, t.Path, deleteCause(err))
	}
	return nil
}

// deleteCause turns the failure of a delete into what the storage layer
// reads: fs.ErrNotExist for a missing key, storage.ErrChanged (wrapping
// err) for a refused condition, else err.
func deleteCause(err error) error {
	switch {
	case isNotFound(err) || apiCode(err) == "NoSuchKey":
		return fs.ErrNotExist
	case isPrecondition(err):
		return fmt.Errorf("%w: the object's ETag is no longer the one seen: %w", storage.ErrChanged, err)
	}
	return err
}

// isPrecondition reports whether err refuses a conditional request: 412
// PreconditionFailed. A 409 ConditionalRequestConflict is not: it says
// nothing of the object's ETag.
func isPrecondition(err error) bool {
	if apiCode(err) == "PreconditionFailed" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// quoteETag returns an ETag in the quoted form of S3's listings and
// If-Match headers, whether or not it came quoted.
func quoteETag(e string) string {
	return `"` + strings.Trim(e, `"`) + `"`
}
