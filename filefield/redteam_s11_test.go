package filefield_test

// From a red-team pass on package filefield: inputs where a documented
// guarantee broke. Each test failed before its fix.

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// slowBody returns an upload body that gives the PNG bytes of tag, then
// blocks until release is closed, then ends: an upload still streaming.
func slowBody(tag string, release <-chan struct{}) (io.Reader, <-chan struct{}) {
	pr, pw := io.Pipe()
	sent := make(chan struct{})
	go func() {
		_, _ = pw.Write(png(tag)) // returns once the reader took it
		close(sent)
		<-release
		_ = pw.Close()
	}()
	return pr, sent
}

// A Replace made with a scope's context whose upload is still streaming
// when the scope ends (the transaction failed and rolled back; another
// goroutine of the work function was uploading): the scope check runs
// before the upload, the registration after it ignored that the scope
// ended. Replace returned the change with no error and no scope held it,
// so the early Commit that the docs say is safe inside a scope ("an early
// Commit in the transaction's callback cannot delete a file a row points
// at") deleted the old file, which the rolled-back row still holds. Now
// Replace fails with ErrScopeEnded and removes its new file.
func TestReplaceRacingItsScopesEndIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	seed, err := f.Save(ctx, upload("old"))
	require.NoError(t, err)
	seed.Commit(ctx)
	row := seed.New

	sctx, scope := filefield.NewScope(ctx)
	release := make(chan struct{})
	body, sent := slowBody("new", release)
	type res struct {
		ch  *filefield.Change
		err error
	}
	done := make(chan res, 1)
	go func() {
		ch, err := f.Replace(sctx, row, filefield.Upload{Body: body, Name: "n.png"})
		done <- res{ch, err}
	}()
	<-sent
	scope.Rollback(ctx) // the transaction failed: the row keeps seed.New
	close(release)
	r := <-done

	if r.err == nil {
		// The work function goes on as the docs allow inside a scope.
		r.ch.Commit(ctx)
	}
	assert.ErrorIs(t, r.err, filefield.ErrScopeEnded, "a change made in a scope that ended belongs to no transaction")
	assert.Contains(t, files(t, fsys), row, "the rolled-back row's file was deleted")
}

// An owner that is itself a placeholder ("{yyyy}", "{shard}") was expanded
// again: the upload landed in another owner's directory ("qr_codes/2025"),
// though Owner "fills {owner}" and must be "a single safe path segment",
// which "{yyyy}" is.
func TestOwnerIsNotExpandedAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	fsys := afero.NewMemMapFs()
	now := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	qr := filefield.New("qr", fsys, filefield.Options{Dir: "qr_codes/{owner}/{yyyy}", Now: func() time.Time { return now }})
	for _, owner := range []string{"{yyyy}", "{mm}", "{shard}"} {
		up := upload(owner)
		up.Owner = owner
		ch, err := qr.Save(ctx, up)
		if err != nil {
			continue // refusing such an owner is fine
		}
		assert.True(t, strings.HasPrefix(ch.New, "qr_codes/"+owner+"/"), "owner %q stored at %s", owner, ch.New)
	}
}

// The directory a template makes is checked as dir+"/x", not as the
// path the file gets (dir + "/" + 32 hex digits + extension): an owner
// that fit the check gave a stored path longer than MaxPathLen, which
// ValidPath refuses. The file was written; its own Rollback then refused
// to remove it (kept as unsafe_path), and a row holding it can never be
// replaced or deleted (CheckPath refuses it).
func TestStoredPathIsAlwaysValid(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	f := filefield.New("pics", rfs, filefield.Options{Dir: "pics/{owner}/{owner}/{owner}/{owner}"})
	up := upload("long")
	up.Owner = strings.Repeat("a", 245)
	ch, err := f.Save(ctx, up)
	if err != nil {
		require.ErrorIs(t, err, filefield.ErrUnsafePath) // refusing it is fine
		assert.Empty(t, files(t, rfs))
		return
	}
	assert.LessOrEqual(t, len(ch.New), storage.MaxPathLen, "stored a file at a path ValidPath refuses")
	r := ch.Rollback(ctx)
	assert.Empty(t, r.Kept, "rollback kept its own new file")
}

// Options.PendingTimeout says of an abandoned change: "Its files stay,
// and it stays claimable (Claim), so that a statement that writes its
// path later still finishes it". A change no scope holds is dropped from
// the field at its timeout instead: a statement that writes its path
// later (an integration's Claim in the row's transaction) gets nothing,
// and the handler's deferred Rollback, which the docs recommend and which
// would have been a no-op after the claiming scope's commit, deleted the
// file the committed row points at. Such a change is still forgotten (so
// that leaked changes do not pile up in memory), but its Rollback now
// keeps the new file (KeptAbandoned), and the docs say so.
func TestAbandonedChangesRollbackKeepsItsFile(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{-1, 20 * time.Millisecond} {
		ctx := t.Context()
		fsys := afero.NewMemMapFs()
		abandoned := make(chan struct{}, 1)
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: timeout,
			OnEvent: func(e filefield.Event) {
				if e.Action == filefield.ActionAbandon {
					abandoned <- struct{}{}
				}
			}})
		ch, err := f.Save(ctx, upload("slow-job"))
		require.NoError(t, err)
		func() {
			defer ch.Rollback(ctx) // "removes the new file unless committed"
			if timeout > 0 {
				<-abandoned // a slow job: the change is reported abandoned
			}
			// The row's transaction writes ch.New; the integration claims
			// the upload into its scope (as gormfield's claim does), and
			// the transaction commits.
			_, s := filefield.NewScope(ctx)
			if c := f.Claim(ch.New); c != nil {
				_, _ = s.Add(c, nil)
			}
			s.Commit(ctx)
		}()
		assert.Contains(t, files(t, fsys), ch.New, "PendingTimeout %v: the committed row's file was deleted by the deferred Rollback", timeout)
	}
}

// Change doc: "A scope that rolls back leaves it to another that still
// holds it; if that one then commits without registering it again (no
// retry wrote the path), both files stay, since the row may hold
// either." The mark a savepoint's rollback leaves (undone) was one per
// change, not per scope tree: a registration of the change in an
// unrelated transaction's scope (another WithTx that writes the upload's
// path into its own row, registering it as the README shows) cleared it.
// The caller's scope then committed without ever having written the path
// again, and deleted the old file its row holds again after the
// savepoint's rollback. The mark is now per tree.
func TestUnrelatedRegistrationDoesNotUndoSavepointRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", PendingTimeout: -1})
	seed, err := f.Save(ctx, upload("old"))
	require.NoError(t, err)
	seed.Commit(ctx)
	row := seed.New // row 1 holds the old file

	pctx, parent := filefield.NewScope(ctx) // tx A
	ch, err := f.Replace(pctx, row, upload("new"))
	require.NoError(t, err)
	_, sp := filefield.NewScope(pctx) // SAVEPOINT: UPDATE row 1 SET picture = ch.New
	_, err = sp.Add(ch, nil)
	require.NoError(t, err)
	sp.Rollback(ctx) // ROLLBACK TO SAVEPOINT: row 1 holds the old file again

	// An unrelated transaction B (a WithTx of its own) writes ch.New
	// into row 2 and registers the upload; it is still open.
	_, txB := filefield.NewScope(context.Background())
	_, err = txB.Add(ch, nil)
	require.NoError(t, err)

	parent.Commit(ctx) // tx A commits: row 1 holds the old file
	assert.Contains(t, files(t, fsys), row, "tx A's committed row 1 points at a deleted file")
	txB.Rollback(ctx)
	assert.Contains(t, files(t, fsys), row, "tx A's committed row 1 points at a deleted file")
}
