package filefield_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// s16rvHook is an s3.HTTPClient that lets a test hold a request.
type s16rvHook struct {
	next   *http.Client
	before func(*http.Request)
}

func (h s16rvHook) Do(r *http.Request) (*http.Response, error) {
	if h.before != nil {
		h.before(r)
	}
	return h.next.Do(r)
}

// TestS16RVReuseRacesFinderAtHalfGrace (a review's; it failed before a
// reuse checked the file's age again once its renewal landed): the docs
// said "keep the orphan finder's grace period at least half of
// ReuseGrace" and that then no
// deletion by the finder can be under way while a reuse happens. But a
// reuse accepts a file younger than ReuseGrace/2 and the finder deletes a
// file older than its grace: with the finder's grace at exactly
// ReuseGrace/2 the margin is zero. A reuse that checks the age just
// before the file turns ReuseGrace/2 and renews it (on S3: stores the
// same bytes again, same ETag) a moment later, while the finder, which
// saw the file just after it turned ReuseGrace/2, is between its
// re-check and its ETag-conditional delete, loses the file: the upload
// reports success with the content name, its row commits, the object is
// gone. Real time passes here (about 3 s); nothing is back-dated after
// the reuse's check.
func TestS16RVReuseRacesFinderAtHalfGrace(t *testing.T) {
	const grace = 2 * time.Hour // ReuseGrace; the finder's grace is half
	srv := s3test.Shared(t)
	fsA := srv.Fs(t, "") // the orphan finder's process
	body := png("same")
	x := hashPathS16("pics", body)
	require.NoError(t, afero.WriteFile(fsA, x, body, 0o644))
	require.NoError(t, afero.WriteFile(fsA, "pics/ref.png", png("ref"), 0o644))
	old := time.Now().Add(-10 * 24 * time.Hour)
	require.NoError(t, fsA.Chtimes("pics/ref.png", old, old))
	// Stored (or last reused) a little less than ReuseGrace/2 ago.
	// (3 to 4 s to spare: the reuse must look before the file turns
	// ReuseGrace/2 old, on a loaded machine too.)
	const spare = 4 * time.Second
	m := time.Now().Add(-grace/2 + spare).Truncate(time.Second)
	require.NoError(t, fsA.Chtimes(x, m, m))

	// Process B: its touch (a rewrite: a PUT without If-None-Match) is
	// on the wire while the finder works.
	reached, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	letGo := func() { released.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	hook := s16rvHook{next: http.DefaultClient, before: func(r *http.Request) {
		if s3test.Kind(r) == "put" && strings.HasSuffix(r.URL.Path, x) && r.Header.Get("If-None-Match") == "" {
			once.Do(func() { close(reached); <-release })
		}
	}}
	fsB := s3fs.New(srv.ClientVia(hook), fsA.Bucket, s3fs.Options{})
	b := filefield.New("pics", fsB, filefield.Options{Dir: "pics", HashNames: true, ReuseGrace: grace})
	var ch *filefield.Change
	var saveErr error
	saved := make(chan struct{})
	go func() {
		defer close(saved)
		ch, saveErr = b.Save(context.Background(), filefield.Upload{Body: strings.NewReader(string(body)), Name: "a.png"})
	}()
	select {
	case <-reached:
	case <-saved:
		t.Fatalf("the upload did not reuse the file: %v %+v", saveErr, ch)
	case <-time.After(20 * time.Second):
		t.Fatal("the reuse's rewrite never came")
	}
	// Time passes: the file turns ReuseGrace/2 old.
	for time.Since(m) <= grace/2+200*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	fsA.BeforeDelete = func(targets []storage.Target) {
		for _, tg := range targets {
			if tg.Path == x {
				letGo() // B's rewrite goes through, B's row commits
				<-saved
				if saveErr == nil {
					ch.Commit(context.Background())
				}
			}
		}
	}
	finder := orphan.New(fsA, orphan.Paths("pics/ref.png"), orphan.Options{MinAge: grace / 2, MaxFraction: -1})
	plan, err := finder.Find(t.Context())
	require.NoError(t, err)
	rep, err := finder.Apply(t.Context(), plan)
	require.NoError(t, err)
	letGo()
	<-saved
	require.NoError(t, saveErr)
	_, serr := fsB.Stat(ch.New)
	require.NoErrorf(t, serr, "B's upload succeeded (as %s) and its row committed, but the orphan finder (grace = ReuseGrace/2) deleted the object: %+v", ch.New, rep)
	got, err := afero.ReadFile(fsB, ch.New)
	require.NoError(t, err)
	require.Equal(t, string(body), string(got))
	// The renewal landed when the file was ReuseGrace/2 old: the bytes
	// went under a name of their own.
	require.NotEqual(t, x, ch.New)
}
