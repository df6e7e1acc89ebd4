package s3fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Values of Options.ConditionalDeletes.
const (
	// ConditionalAuto (or "") finds out, once per Fs, which conditional
	// deletes the bucket honours, with a probe on an object of its own.
	ConditionalAuto = "auto"
	// ConditionalBatch sends each object's ETag in DeleteObjects, unprobed.
	ConditionalBatch = "batch"
	// ConditionalSingle sends one DeleteObject with If-Match per object,
	// unprobed.
	ConditionalSingle = "single"
	// ConditionalOff sends no condition: an object rewritten between the
	// storage layer's re-check and the delete request is deleted.
	ConditionalOff = "off"
)

// The ways of conditional deletion, as storage.Features.ConditionalDeletes
// reports them.
const (
	modeBatch  = "batch"
	modeSingle = "single"
	modeNone   = "none"
)

// probeTimeout bounds the removal of the probe object, which runs on a
// context of its own: it must go even when the caller's context is done.
const probeTimeout = 10 * time.Second

// condDeletes is an Fs's way of conditional deletion, shared by its
// copies (WithContext).
type condDeletes struct {
	mode  atomic.Pointer[string] // nil until known
	probe sync.Mutex             // one probe at a time
}

// newCondDeletes returns the state for Options.ConditionalDeletes opt,
// panicking on an unknown value.
func newCondDeletes(opt string) *condDeletes {
	c := &condDeletes{}
	switch opt {
	case "", ConditionalAuto:
	case ConditionalBatch:
		c.set(modeBatch)
	case ConditionalSingle:
		c.set(modeSingle)
	case ConditionalOff:
		c.set(modeNone)
	default:
		panic(fmt.Sprintf("s3fs: unknown Options.ConditionalDeletes %q: want auto, batch, single or off", opt))
	}
	return c
}

func (c *condDeletes) set(mode string) { c.mode.Store(&mode) }

// known returns the mode, or "" while it is not known.
func (c *condDeletes) known() string {
	if m := c.mode.Load(); m != nil {
		return *m
	}
	return ""
}

// get returns the mode, probing the bucket first when it is not known. A
// probe that fails is not remembered: the next call probes again.
func (c *condDeletes) get(ctx context.Context, f *Fs) (string, error) {
	if m := c.known(); m != "" {
		return m, nil
	}
	c.probe.Lock()
	defer c.probe.Unlock()
	if m := c.known(); m != "" {
		return m, nil
	}
	m, err := f.probeConditional(ctx)
	if err != nil {
		return "", err
	}
	c.set(m)
	return m, nil
}

// probeConditional finds out which conditional deletes the bucket
// honours: it puts a small object of its own (create-only) under a new
// key in the quarantine area at the prefix's root, which every listing
// skips, and tries to delete it with a wrong ETag, then with its own,
// first with DeleteObject and If-Match, then with DeleteObjects and a
// per-object ETag, each on an object of its own. A way is honoured if the
// server refuses the first (412, or a per-key PreconditionFailed) and
// does the second. The objects are removed at the end, whatever happened.
func (f *Fs) probeConditional(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	key := f.prefix + storage.QuarantineDirName + "/.s3fs-probe-" + hex.EncodeToString(b[:])
	single, err := f.probeWith(ctx, key+"-single", f.deleteIfMatch)
	if err != nil {
		return "", err
	}
	batch, err := f.probeWith(ctx, key+"-batch", f.deleteBatchIfMatch)
	switch {
	case err != nil:
		return "", err
	case batch:
		return modeBatch, nil
	case single:
		return modeSingle, nil
	}
	return modeNone, nil
}

// probeWith puts the probe object at key and reports whether del refuses
// it a wrong ETag and deletes it with its own, and removes it in the end.
func (f *Fs) probeWith(ctx context.Context, key string, del func(ctx context.Context, key, etag string) error) (bool, error) {
	defer f.dropProbe(ctx, key)
	out, err := f.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &f.bucket, Key: &key, IfNoneMatch: aws.String("*"),
		Body: bytes.NewReader([]byte("mediaclean: a probe of conditional deletes; safe to delete\n"))})
	if err != nil {
		return false, probeErr(ctx, err)
	}
	etag := aws.ToString(out.ETag)
	if etag == "" {
		return false, nil // a server without entity tags has nothing to condition on
	}
	switch err := del(ctx, key, wrongETag(etag)); {
	case err == nil:
		return false, nil // the condition was ignored, and the object is gone
	case ignored(err):
		return false, nil
	case !isPrecondition(err):
		return false, probeErr(ctx, err)
	}
	switch err := del(ctx, key, etag); {
	case err == nil:
		return true, nil
	case isPrecondition(err):
		return false, nil // it refuses even the right ETag: of no use
	default:
		return false, probeErr(ctx, err)
	}
}

// wrongETag returns an ETag of the usual shape that is not etag.
func wrongETag(etag string) string {
	w := `"` + strings.Repeat("0", 32) + `"`
	if quoteETag(etag) == w {
		w = `"` + strings.Repeat("1", 32) + `"`
	}
	return w
}

// ignored reports whether err says the server does not implement the
// condition, rather than that the request failed: a 501, or a 400 whose
// S3 error code says so. Other 400s (ExpiredToken, RequestTimeout,
// IncompleteBody, a proxy's page without an S3 error, for which the SDK
// makes up the code BadRequest) are failures of the request: a probe that
// meets one fails and is tried again, rather than settling on deletes
// without conditions for the life of the Fs.
func ignored(err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch re.HTTPStatusCode() {
	case http.StatusNotImplemented:
		return true
	case http.StatusBadRequest:
		switch apiCode(err) {
		case "NotImplemented", "InvalidArgument", "InvalidRequest":
			return true
		}
	}
	return false
}

func probeErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return fmt.Errorf("s3fs: probing the bucket's conditional deletes (Options.ConditionalDeletes chooses without a probe): %w", err)
}

// deleteIfMatch deletes key with DeleteObject if its ETag is etag.
func (f *Fs) deleteIfMatch(ctx context.Context, key, etag string) error {
	_, err := f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key, IfMatch: aws.String(etag)})
	return err
}

// deleteBatchIfMatch deletes key with DeleteObjects if its ETag is etag,
// returning the key's error in the response as an API error.
func (f *Fs) deleteBatchIfMatch(ctx context.Context, key, etag string) error {
	out, err := f.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &f.bucket, Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: &key, ETag: aws.String(etag)}}, Quiet: aws.Bool(true)}})
	if err != nil {
		return err
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Key) == key {
			return keyError(e)
		}
	}
	return nil
}

// dropProbe deletes the probe object, on a context of its own. A failure
// leaves it where no listing looks.
func (f *Fs) dropProbe(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	_, _ = f.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &f.bucket, Key: &key})
}
