package orphan_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// rtHookClient lets a test see, and answer instead of the server, the
// requests an s3fs.Fs sends.
type rtHookClient struct {
	next *http.Client
	hook func(r *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error)
}

func (h rtHookClient) Do(r *http.Request) (*http.Response, error) {
	return h.hook(r, h.next.Do)
}

func rtS3Error(r *http.Request, status int, code string) *http.Response {
	body := "<Error><Code>" + code + "</Code><Message>" + code + " (red-team hook)</Message></Error>"
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/xml"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}
}

// Red team (inventory scope, S3 batch deletes). storage.ValidPath accepts
// the Unicode noncharacters U+FFFE and U+FFFF, so an inventory report (or
// a live listing) may name "pics/x\uFFFF.jpg" as an orphan. RemoveFiles
// sends such keys in a DeleteObjects request, whose XML body the AWS SDK
// writes with smithy-go's encoder: it replaces every character XML 1.0
// cannot carry with U+FFFD. The server therefore deletes
// "pics/x\uFFFD.jpg", ANOTHER object, here one a row references, and
// reports success for the orphan, which stays. (HeadObject, used by the
// re-check, sends the key in the URL and sees the right object.) Batch
// deletes are used by the "none" way (MinIO, here forced with
// ConditionalOff), by "batch" (AWS, where the per-object ETag is then
// checked against the other object: two uploads of the same image have
// the same ETag), and by "single" for targets without an ETag.
//
// Safe behaviour asserted: the referenced object is never deleted, and
// the orphan is not reported deleted unless it is gone.
func TestRedteamNoncharacterKeyDeletesAnotherObject(t *testing.T) {
	srv := s3test.Shared(t)
	back := srv.Fs(t, "media")
	const orphanPath, referenced = "pics/x\uFFFF.jpg", "pics/x\uFFFD.jpg"
	// Written with the plain client: the Fs refuses such a path now.
	client := srv.Client(nil)
	var objs []inventorytest.Object
	for _, p := range []string{referenced, orphanPath} {
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: &back.Bucket, Key: aws.String("media/" + p), Body: strings.NewReader("same image")})
		require.NoError(t, err)
		objs = append(objs, inventorytest.Object{Key: "media/" + p, Size: 10, ModTime: now.Add(-10 * day)})
	}
	fsys := s3fs.New(client, back.Bucket, s3fs.Options{Prefix: "media", ConditionalDeletes: s3fs.ConditionalOff})
	m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{SourceBucket: back.Bucket, Created: now.Add(-time.Hour), Objects: objs})
	require.NoError(t, err)
	for _, listing := range []string{"inventory", "live"} {
		opts := orphan.Options{Now: clock, MaxFraction: -1, MinAge: -1}
		if listing == "inventory" {
			opts.MinAge = 0 // the default, longer than the report's age
			rep, err := inventory.Open(t.Context(), m, fsys, inventory.Options{})
			require.NoError(t, err)
			opts.Listing = rep
		}
		f := orphan.New(fsys, orphan.Paths(referenced), opts)
		plan, err := f.Find(t.Context())
		if listing == "inventory" {
			// A report naming a path ValidPath refuses is refused whole.
			assert.ErrorIs(t, err, inventory.ErrInvalid)
			assert.ErrorContains(t, err, "noncharacter")
		} else {
			require.NoError(t, err, listing)
			assert.Empty(t, plan.Orphans, "%s: a path ValidPath refuses is never planned", listing)
			_, err = f.Apply(t.Context(), plan)
			require.NoError(t, err)
		}
		for _, p := range []string{referenced, orphanPath} {
			_, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &back.Bucket, Key: aws.String("media/" + p)})
			assert.NoError(t, err, "%s: %q was deleted", listing, p)
		}
	}
}
