package s3fs_test

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/sweep"
)

// type listPage is a ListObjectsV2 answer with a continuation token.
type s11ListPage struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Name                  string
	KeyCount              int
	IsTruncated           bool
	NextContinuationToken string `xml:",omitempty"`
	Contents              []listed
}

// A listing must report each object at most once (storage.Lister), and
// s3fs says ListFiles reports objects "in byte order of their keys". A
// server (or a caching proxy) whose next page starts AT its continuation
// key instead of after it repeats one object on a page boundary; s3fs
// passed the repeat on without a check (the order was checked only for
// Sorted listings). A sweep with KeepLatest counted the repeat as a second
// file: the newest QR code of a user, which "one QR code per user"
// (KeepLatest 1) must keep, was deleted, and the user had none left. A
// listing that repeats or reorders keys now fails.
func TestRepeatedListingEntryFailsTheListing(t *testing.T) {
	var f *fakeS3
	f, client := newFakeVia(t, &fakeS3{ifMatch: true}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Query().Get("list-type") != "2" {
				next.ServeHTTP(w, r)
				return
			}
			q := r.URL.Query()
			f.mu.Lock()
			var keys []string
			for k := range f.objects {
				if strings.HasPrefix(k, q.Get("prefix")) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			res := s11ListPage{Name: fakeBucket}
			page := keys[:1] // the first page: one key
			if tok := q.Get("continuation-token"); tok != "" {
				i, _ := slices.BinarySearch(keys, tok)
				page = keys[i:] // the bug: from the token's key on, inclusive
			} else if len(keys) > 1 {
				res.IsTruncated, res.NextContinuationToken = true, keys[0]
			}
			for _, k := range page {
				o := f.objects[k]
				res.Contents = append(res.Contents, listed{Key: k, Size: len(o.body), ETag: o.etag, LastModified: o.mtime.UTC().Format(time.RFC3339)})
			}
			res.KeyCount = len(res.Contents)
			f.mu.Unlock()
			w.Header().Set("Content-Type", "application/xml")
			_ = xml.NewEncoder(w).Encode(res)
		})
	})
	f.put("qr/u1/a.png", "the current code")
	f.put("qr/u1/b.png", "an older code")
	fsys := s3fs.New(client, fakeBucket, s3fs.Options{ConditionalDeletes: s3fs.ConditionalSingle})
	rep, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", KeepLatest: 1}}}).Sweep(t.Context())
	require.ErrorContains(t, err, "repeats or reorders keys", "a listing that repeats a key fails, and deletes nothing")
	assert.Zero(t, rep.Deleted.Files)
	assert.True(t, f.has("qr/u1/a.png") && f.has("qr/u1/b.png"),
		"KeepLatest 1 left the user no file: a repeated listing entry counted as a second file (deleted %d)", rep.Deleted.Files)
}
