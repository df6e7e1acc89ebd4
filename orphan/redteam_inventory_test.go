package orphan_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
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
			// versitygw lists both keys as the one with U+FFFD: a
			// listing that repeats a key fails, and deletes nothing.
			assert.ErrorContains(t, err, "repeats or reorders keys", listing)
			assert.Nil(t, plan)
		}
		for _, p := range []string{referenced, orphanPath} {
			_, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &back.Bucket, Key: aws.String("media/" + p)})
			assert.NoError(t, err, "%s: %q was deleted", listing, p)
		}
	}
}

// Found by a red-team pass (it failed before the fix). A quarantine run
// planned from an inventory report moves each orphan with MoveFileIf: a
// CopyObject into the run's folder, then a conditional DeleteObject of the
// source. When that delete is carried out by the server but its answer is
// lost, the client sees either AWS's answer to the SDK's retry (404
// NoSuchKey: If-Match on a key that is gone now) or, if every retry fails,
// an error. Either way the object is now ONLY in the quarantine, yet the
// move is reported as "already_gone" (or as a failure), and
// orphan.Finder.quarantine records in the run's manifest.json only the
// outcomes with ActionMove: the write-ahead manifest that listed the file is
// overwritten by one that does not. The quarantined copy can then never be
// restored with Quarantine.Restore (nor purged): the quarantine's promise
// ("every moved file is in a saved manifest") is broken and the report
// says nothing was moved.
//
// Safe behaviour asserted: every object that left its path during the
// run is listed in the run's manifest, and Restore puts it back.
func TestRedteamQuarantineMoveWhoseSourceDeleteAnswerIsLost(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  func(r *http.Request) *http.Response // instead of the server's 204
		again   bool                                 // later attempts answer the same without reaching the server
		refused bool                                 // the server never gets the delete: the source stays
	}{
		{"retry answered 404 as AWS does", func(r *http.Request) *http.Response { return rtS3Error(r, http.StatusNotFound, "NoSuchKey") }, false, false},
		{"every attempt fails", func(r *http.Request) *http.Response { return rtS3Error(r, http.StatusServiceUnavailable, "SlowDown") }, true, false},
		{"the delete is refused", func(r *http.Request) *http.Response { return rtS3Error(r, http.StatusForbidden, "AccessDenied") }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := s3test.Shared(t)
			back := srv.Fs(t, "media")
			put(t, back, "pics/keep.jpg", 10, 10*day)
			put(t, back, "pics/orphan.jpg", 20, 10*day)
			const victimSuffix = "/media/pics/orphan.jpg"
			var fired atomic.Bool
			hc := rtHookClient{next: http.DefaultClient, hook: func(r *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
				if r.Method != http.MethodDelete || !strings.HasSuffix(r.URL.Path, victimSuffix) {
					return next(r)
				}
				if tc.refused {
					fired.Store(true)
					return tc.answer(r), nil
				}
				if fired.Load() {
					if tc.again {
						return tc.answer(r), nil
					}
					return next(r)
				}
				resp, err := next(r) // the server deletes the source...
				if err != nil {
					return resp, err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				fired.Store(true)
				return tc.answer(r), nil // ...and its answer is lost
			}}
			fsys := s3fs.New(srv.ClientVia(hc), back.Bucket, s3fs.Options{Prefix: "media"})

			objs := inventorytest.Objects(back.Prefix(), liveEntries(t, back))
			m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{SourceBucket: back.Bucket, Created: now.Add(-time.Hour), Objects: objs})
			require.NoError(t, err)
			rep, err := inventory.Open(t.Context(), m, fsys, inventory.Options{})
			require.NoError(t, err)

			f := orphan.New(fsys, orphan.Paths("pics/keep.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash", Listing: rep})
			plan, err := f.Find(t.Context())
			require.NoError(t, err)
			require.Len(t, plan.Orphans, 1)
			ar, _ := f.Apply(t.Context(), plan)
			require.True(t, fired.Load(), "the source's delete was not sent")
			t.Logf("report: quarantined %+v kept %+v failed %+v run %q", ar.Quarantined, ar.Kept, ar.Failed, ar.QuarantineRun)

			q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
			if tc.refused {
				// The source stays; the copy is removed; the run's
				// manifest lists the file, and Restore finds it at its
				// own path.
				_, err := back.Stat("pics/orphan.jpg")
				require.NoError(t, err)
				_, err = back.Stat("trash/" + storage.QuarantineDirName + "/" + ar.QuarantineRun + "/pics/orphan.jpg")
				assert.Error(t, err, "the copy of a file that stayed is removed")
				assert.Equal(t, 1, ar.Failed.Files, "the move is reported failed")
				res, err := q.Restore(t.Context(), ar.QuarantineRun)
				require.NoError(t, err, "%+v", res)
				assert.Equal(t, 1, res.NotMoved.Files)
				assert.Zero(t, res.Failed.Files)
				return
			}
			_, srcErr := back.Stat("pics/orphan.jpg")
			require.Error(t, srcErr, "precondition: the source was deleted by the server")
			_, qErr := back.Stat("trash/" + storage.QuarantineDirName + "/" + ar.QuarantineRun + "/pics/orphan.jpg")
			require.NoError(t, qErr, "precondition: the only copy is in the quarantine")

			man, err := q.Manifest(t.Context(), ar.QuarantineRun)
			require.NoError(t, err)
			var listed []string
			for _, o := range man.Files {
				listed = append(listed, o.Path)
			}
			assert.Contains(t, listed, "pics/orphan.jpg", "the file is only in the quarantine, but the run's manifest does not list it: Restore cannot bring it back")
			assert.Equal(t, 1, ar.Quarantined.Files, "the report says the file was not quarantined, though it was")
			if _, err := q.Restore(t.Context(), ar.QuarantineRun); err != nil {
				t.Logf("restore: %v", err)
			}
			_, err = back.Stat("pics/orphan.jpg")
			assert.NoError(t, err, "Restore of the run did not bring the file back")
		})
	}
}

// A quarantine run cancelled partway (a signal): the files it never
// tried stay listed in the run's manifest as written ahead (a move
// cancelled after its copy may have moved its file), and Restore finds
// them at their paths (not moved) and puts back the ones that moved.
func TestCancelledQuarantineRunStaysRestorable(t *testing.T) {
	fsys := afero.NewMemMapFs()
	for i := range 5 {
		put(t, fsys, fmt.Sprintf("pics/%d.jpg", i), 10, 10*day)
	}
	put(t, fsys, "pics/keep.jpg", 10, 10*day)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := orphan.New(cancelOnRename{fsys, cancel}, orphan.Paths("pics/keep.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Quarantine: "trash"})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	require.Len(t, plan.Orphans, 5)
	ar, err := f.Apply(ctx, plan)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, ar.Quarantined.Files)
	q := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{})
	m, err := q.Manifest(t.Context(), ar.QuarantineRun)
	require.NoError(t, err)
	assert.Len(t, m.Files, 5, "every file of the batch stays listed")
	res, err := q.Restore(t.Context(), ar.QuarantineRun)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Restored.Files)
	assert.Equal(t, 4, res.NotMoved.Files)
	for i := range 5 {
		ok, err := afero.Exists(fsys, fmt.Sprintf("pics/%d.jpg", i))
		assert.True(t, ok && err == nil, "pics/%d.jpg is back", i)
	}
}

// cancelOnRename cancels a context after it renames a .jpg file (a
// signal arriving during the first move).
type cancelOnRename struct {
	afero.Fs
	cancel func()
}

func (c cancelOnRename) Rename(o, n string) error {
	if strings.HasSuffix(n, ".jpg") {
		defer c.cancel()
	}
	return c.Fs.Rename(o, n)
}
