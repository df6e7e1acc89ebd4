package filefield_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// The seed's manual test: upload a picture, upload another, only the new
// one exists.
func TestReplaceCommitLeavesOnlyNewFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})
		first, err := pics.Save(ctx, upload("first"))
		require.NoError(t, err)
		assert.Equal(t, filefield.Result{}, first.Commit(ctx), "committing a Save deletes nothing")
		assert.Equal(t, []string{first.New}, files(t, fsys))
		assert.Regexp(t, `^profile_pics/[0-9a-f]{32}\.png$`, first.New)
		assert.Equal(t, "image/png", first.ContentType)

		second, err := pics.Replace(ctx, first.New, upload("second"))
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{first.New, second.New}, files(t, fsys), "nothing is deleted before commit")
		res := second.Commit(ctx)
		assert.Equal(t, []string{first.New}, res.Deleted)
		assert.Equal(t, []string{second.New}, files(t, fsys))
		assert.Equal(t, string(png("second")), read(t, fsys, second.New))
		assert.Equal(t, res, second.Commit(ctx), "Commit is idempotent")
		assert.Equal(t, filefield.Result{}, second.Rollback(ctx), "Rollback after Commit does nothing")
		assert.Equal(t, []string{second.New}, files(t, fsys))
	})
}

func TestReplaceRollbackKeepsOldFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})
		first, err := pics.Save(ctx, upload("first"))
		require.NoError(t, err)
		second, err := pics.Replace(ctx, first.New, upload("second"))
		require.NoError(t, err)
		res := second.Rollback(ctx)
		assert.Equal(t, []string{second.New}, res.Deleted)
		assert.Equal(t, []string{first.New}, files(t, fsys))
		assert.Equal(t, string(png("first")), read(t, fsys, first.New))
		assert.Equal(t, res, second.Rollback(ctx), "Rollback is idempotent")
		assert.Equal(t, filefield.Result{}, second.Commit(ctx), "Commit after Rollback does nothing")
		assert.Equal(t, []string{first.New}, files(t, fsys))
	})
}

// The seed's QR case: generating twice leaves one file per user.
func TestQRCodeOnePerOwner(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		qr := filefield.New("qr_codes", fsys, filefield.Options{Dir: "qr_codes/{owner}"})
		current := map[string]string{}
		for round := range 3 {
			for _, user := range []string{"1", "2"} {
				up := upload(user)
				up.Owner = user
				ch, err := qr.Replace(ctx, current[user], up)
				require.NoError(t, err, "round %d", round)
				ch.Commit(ctx)
				current[user] = ch.New
				assert.True(t, strings.HasPrefix(ch.New, "qr_codes/"+user+"/"))
			}
		}
		assert.ElementsMatch(t, []string{current["1"], current["2"]}, files(t, fsys))
	})
}

func TestIdenticalUploadsGetDifferentNames(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		a, err := f.Save(t.Context(), upload("same"))
		require.NoError(t, err)
		b, err := f.Replace(t.Context(), a.New, upload("same"))
		require.NoError(t, err)
		assert.NotEqual(t, a.New, b.New)
		b.Commit(t.Context())
		assert.Equal(t, []string{b.New}, files(t, fsys))
	})
}

func TestRejectionsLeaveNothing(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics/{owner}", MaxSize: 1000})
		tests := []struct {
			name string
			up   filefield.Upload
			want error
		}{
			{"too large", filefield.Upload{Body: bytes.NewReader(append(png("x"), make([]byte, 2000)...)), Name: "a.png", Owner: "1"}, filefield.ErrTooLarge},
			{"too large after sniff", filefield.Upload{Body: io.MultiReader(bytes.NewReader(png("x")), strings.NewReader(strings.Repeat("y", 995))), Name: "a.png", Owner: "1"}, filefield.ErrTooLarge},
			{"empty", filefield.Upload{Body: strings.NewReader(""), Name: "a.png", Owner: "1"}, filefield.ErrEmpty},
			{"nil body", filefield.Upload{Name: "a.png", Owner: "1"}, filefield.ErrEmpty},
			{"html", filefield.Upload{Body: strings.NewReader("<html><script>alert(1)</script>"), Name: "a.png", Owner: "1"}, filefield.ErrTypeNotAllowed},
			{"exe", filefield.Upload{Body: strings.NewReader("MZ\x90\x00\x03\x00\x00\x00"), Name: "a.png", Owner: "1"}, filefield.ErrTypeNotAllowed},
			{"owner traversal", filefield.Upload{Body: bytes.NewReader(png("x")), Name: "a.png", Owner: "../1"}, filefield.ErrUnsafePath},
			{"owner with slash", filefield.Upload{Body: bytes.NewReader(png("x")), Name: "a.png", Owner: "1/2"}, filefield.ErrUnsafePath},
			{"owner empty", filefield.Upload{Body: bytes.NewReader(png("x")), Name: "a.png", Owner: ""}, filefield.ErrUnsafePath},
		}
		for _, tt := range tests {
			ch, err := f.Save(ctx, tt.up)
			assert.ErrorIs(t, err, tt.want, tt.name)
			assert.Nil(t, ch, tt.name)
			var pe *filefield.PathError
			assert.ErrorAs(t, err, &pe, tt.name)
		}
		assert.Empty(t, files(t, fsys))
		// Exactly at the limit is accepted.
		ok, err := f.Save(ctx, filefield.Upload{Body: io.MultiReader(bytes.NewReader(png("x")), strings.NewReader(strings.Repeat("y", 1000-len(png("x"))))), Name: "a.png", Owner: "1"})
		require.NoError(t, err)
		assert.EqualValues(t, 1000, ok.Size)
	})
}

// F7: hostile stored paths from a tampered row are refused before any
// storage operation.
func TestHostileStoredPathsTouchNothing(t *testing.T) {
	t.Parallel()
	hostile := []string{"../x", "/etc/passwd", `C:\x`, "a/../../b", "pics/../../etc/passwd", "pics/a\x00.png",
		"pics/a\n.png", "pics/./a.png", "pics//a.png", "pics/", "other/a.png", "picsx/a.png", `pics\a.png`, "pics/.htaccess"}
	storagetest.ForEachBackend(t, backends, func(t *testing.T, base afero.Fs, _ string) {
		spy := storagetest.NewSpyFs(base)
		f := filefield.New("pics", spy, filefield.Options{Dir: "pics"})
		for _, p := range hostile {
			_, err := f.Replace(t.Context(), p, upload("x"))
			assert.ErrorIs(t, err, filefield.ErrUnsafePath, "Replace(%q)", p)
			_, err = f.Delete(t.Context(), p)
			assert.ErrorIs(t, err, filefield.ErrUnsafePath, "Delete(%q)", p)
			assert.ErrorIs(t, f.CheckPath(p), filefield.ErrUnsafePath, "CheckPath(%q)", p)
		}
		assert.Empty(t, spy.Ops(), "storage was touched")
	})
}

func TestProtectedKeepAndRefs(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		storagetest.WriteFile(t, fsys, "pics/default.png", png("default"), time.Time{})
		storagetest.WriteFile(t, fsys, "pics/keep/x.png", png("k"), time.Time{})

		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Default: "pics/default.png", Protected: []string{"pics/keep/**"}})
		ch, err := f.Replace(ctx, "pics/default.png", upload("a"))
		require.NoError(t, err)
		assert.Equal(t, []filefield.Kept{{Path: "pics/default.png", Reason: filefield.KeptProtected}}, ch.Commit(ctx).Kept)
		del, err := f.Delete(ctx, "pics/keep/x.png")
		require.NoError(t, err)
		assert.Equal(t, filefield.KeptProtected, del.Commit(ctx).Kept[0].Reason)

		keeper := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Keep: true})
		ch2, err := keeper.Replace(ctx, ch.New, upload("b"))
		require.NoError(t, err)
		assert.Equal(t, filefield.KeptKeepMode, ch2.Commit(ctx).Kept[0].Reason)

		var asked []string
		refs := filefield.RefCheckerFunc(func(_ context.Context, p string) (bool, error) {
			asked = append(asked, p)
			if strings.HasSuffix(p, ch.New[len(ch.New)-8:]) {
				return true, nil
			}
			return false, errors.New("database down")
		})
		shared := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Refs: refs})
		c1, err := shared.Delete(ctx, ch.New)
		require.NoError(t, err)
		assert.Equal(t, filefield.KeptReferenced, c1.Commit(ctx).Kept[0].Reason)
		c2, err := shared.Delete(ctx, ch2.New)
		require.NoError(t, err)
		assert.Equal(t, filefield.KeptCheckFailed, c2.Commit(ctx).Kept[0].Reason, "a failing checker keeps the file")
		assert.Equal(t, []string{ch.New, ch2.New}, asked)
		assert.ElementsMatch(t, []string{"pics/default.png", "pics/keep/x.png", ch.New, ch2.New}, files(t, fsys))
	})
}

func TestCompanionsGoWithTheirFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		thumb := func(p string) []string { return []string{"thumbs/" + p, "../escape"} }
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Companions: thumb})
		a, err := f.Save(ctx, upload("a"))
		require.NoError(t, err)
		storagetest.WriteFile(t, fsys, "thumbs/"+a.New, []byte("t"), time.Time{})
		require.NoError(t, fsys.MkdirAll("other", 0o755))
		del, err := f.Delete(ctx, a.New)
		require.NoError(t, err)
		res := del.Commit(ctx)
		assert.ElementsMatch(t, []string{a.New, "thumbs/" + a.New}, res.Deleted)
		assert.Equal(t, []filefield.Kept{{Path: "../escape", Reason: filefield.KeptUnsafe}}, res.Kept)
		assert.Empty(t, files(t, fsys))
	})
}

func TestFailedDeleteAfterCommitIsReportedNotRaised(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, base afero.Fs, _ string) {
		ctx := t.Context()
		ffs := storagetest.NewFaultFs(base, storagetest.Fault{})
		var events []filefield.Event
		f := filefield.New("pics", ffs, filefield.Options{Dir: "pics", OnEvent: func(e filefield.Event) { events = append(events, e) }})
		a, err := f.Save(ctx, upload("a"))
		require.NoError(t, err)
		b, err := f.Replace(ctx, a.New, upload("b"))
		require.NoError(t, err)
		ffs.Reset(storagetest.Fault{Kind: storagetest.OpRemove, N: 1})
		res := b.Commit(ctx)
		require.Len(t, res.Failed, 1)
		assert.Equal(t, a.New, res.Failed[0].Path)
		assert.Contains(t, res.Failed[0].Error, "no space left")
		assert.Equal(t, filefield.ActionFail, events[len(events)-1].Action)
		assert.ElementsMatch(t, []string{a.New, b.New}, files(t, base))
	})
}

func TestCancelledContextLeavesNothing(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		old, err := f.Save(t.Context(), upload("old"))
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = f.Replace(ctx, old.New, upload("new"))
		assert.ErrorIs(t, err, context.Canceled)

		// Cancelled while the body streams.
		ctx, cancel = context.WithCancel(t.Context())
		body := io.MultiReader(bytes.NewReader(png("new")), &cancelReader{cancel: cancel}, strings.NewReader(strings.Repeat("z", 200<<10)))
		_, err = f.Replace(ctx, old.New, filefield.Upload{Body: body, Name: "x.png"})
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, []string{old.New}, files(t, fsys))
		assert.Equal(t, string(png("old")), read(t, fsys, old.New))
	})
}

type cancelReader struct{ cancel func() }

func (c *cancelReader) Read(p []byte) (int, error) {
	c.cancel()
	p[0] = 'c'
	return 1, io.EOF
}

func TestParallelReplaces(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics/{owner}"})
		var wg sync.WaitGroup
		final := make([]string, 8)
		for w := range 8 {
			wg.Go(func() {
				owner := string(rune('a' + w))
				cur := ""
				for i := range 10 {
					up := upload(owner + string(rune('0'+i)))
					up.Owner = owner
					ch, err := f.Replace(ctx, cur, up)
					if !assert.NoError(t, err) {
						return
					}
					if i%3 == 2 {
						ch.Rollback(ctx)
						continue
					}
					assert.Empty(t, ch.Commit(ctx).Failed)
					cur = ch.New
				}
				final[w] = cur
			})
		}
		wg.Wait()
		assert.ElementsMatch(t, final, files(t, fsys))
	})
}

func TestHashNamesShareAndSurviveRollback(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) { hashNamesShareAndSurviveRollback(t, fsys) })
}

func hashNamesShareAndSurviveRollback(t *testing.T, fsys afero.Fs) {
	ctx := t.Context()
	f := filefield.New("pics", fsys, filefield.Options{Dir: "pics/{shard}", HashNames: true})
	a, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	assert.Regexp(t, `^pics/[0-9a-f]{2}/[0-9a-f]{32}\.png$`, a.New)
	assert.Equal(t, a.New[5:7], a.New[8:10], "shard is the name's first two characters")
	b, err := f.Save(ctx, upload("same"))
	require.NoError(t, err)
	assert.Equal(t, a.New, b.New)
	assert.Equal(t, filefield.KeptNotCreated, b.Rollback(ctx).Kept[0].Reason)
	assert.Equal(t, []string{a.New}, files(t, fsys))
	// Replacing a file with identical bytes keeps it (F4).
	c, err := f.Replace(ctx, a.New, upload("same"))
	require.NoError(t, err)
	assert.Equal(t, filefield.KeptSamePath, c.Commit(ctx).Kept[0].Reason)
	assert.Equal(t, []string{a.New}, files(t, fsys))
}

// The spy pins the write sequence on the local backend (F2).
func TestWriteSequenceOnRootFs(t *testing.T) {
	t.Parallel()
	rfs, err := rootfs.New(t.TempDir())
	require.NoError(t, err)
	defer rfs.Close()
	spy := storagetest.NewSpyFs(rfs)
	f := filefield.New("pics", spy, filefield.Options{Dir: "pics"})
	ch, err := f.Save(t.Context(), upload("a"))
	require.NoError(t, err)
	var seq []string
	for _, op := range spy.Ops() {
		switch op.Kind {
		case storagetest.OpMkdir, storagetest.OpStat:
			continue
		case storagetest.OpCreate:
			require.NotZero(t, op.Flag&0o200, "create is O_EXCL") // syscall.O_EXCL on Linux
			assert.Contains(t, op.Path, storage.TempPrefix)
		case storagetest.OpRename:
			assert.Contains(t, op.Path, storage.TempPrefix)
		}
		if len(seq) > 0 && seq[len(seq)-1] == string(op.Kind) {
			continue // several writes
		}
		seq = append(seq, string(op.Kind))
	}
	// The directory syncs: open, sync, close of "pics", and of the root,
	// which holds the entry of "pics", made by this first write.
	assert.Equal(t, []string{"create", "write", "sync", "close", "rename", "open", "sync", "close", "open", "sync", "close"}, seq)
	ops := spy.Ops()
	assert.Equal(t, storagetest.Op{Kind: storagetest.OpOpen, Path: "pics"}, ops[len(ops)-6])
	assert.Equal(t, storagetest.Op{Kind: storagetest.OpOpen, Path: "."}, ops[len(ops)-3])
	assert.Equal(t, []string{ch.New}, files(t, rfs))
}
