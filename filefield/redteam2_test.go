package filefield_test

// Found by a second red-team pass: each test asserts the safe behaviour.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

var redteamLocal = storagetest.LocalBackends()

// Change.Old and Change.New are exported, writable fields; Commit and
// Rollback act on the paths Replace validated, so a handler that sets
// ch.Old from a (tampered) row after Save, or rewrites ch.New, cannot
// redirect a deletion outside the field's directory.
func TestMutatedChangeOldCannotRedirectCommit(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		storagetest.WriteFile(t, fsys, "invoices/secret.pdf", []byte("%PDF-other field"), time.Time{})
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		require.ErrorIs(t, pics.CheckPath("invoices/secret.pdf"), filefield.ErrUnsafePath)

		ch, err := pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		ch.Old = "invoices/secret.pdf" // from the row, which an attacker controls
		res := ch.Commit(ctx)
		_, err = fsys.Stat("invoices/secret.pdf")
		assert.NoError(t, err, "another field's file was deleted: %+v", res)
	})
}

// The same through Rollback: it removes the file the change created,
// whatever ch.New says by then.
func TestMutatedChangeNewCannotRedirectRollback(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		storagetest.WriteFile(t, fsys, "invoices/secret.pdf", []byte("%PDF-other field"), time.Time{})
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		ch, err := pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		stored := ch.New
		ch.New = "invoices/secret.pdf"
		res := ch.Rollback(ctx)
		_, err = fsys.Stat("invoices/secret.pdf")
		assert.NoError(t, err, "Rollback deleted a file it never created: %+v", res)
		_, err = fsys.Stat(stored)
		assert.ErrorIs(t, err, os.ErrNotExist, "and left its own new file")
		assert.Equal(t, []string{stored}, res.Deleted)
	})
}

// "defer ch.Rollback(ctx)" is the documented idiom. Inside a WithTx or
// RunInScope callback the deferred Rollback runs when the callback
// returns, before the transaction commits: it used to delete the new file
// the committed row then pointed at. A scope that holds the change now
// decides: after a commit both files stay (the row may hold either), and
// after a rollback the new file goes and the old stays.
func TestDeferredRollbackInsideScopeKeepsCommittedFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		old, err := pics.Save(ctx, upload("old"))
		require.NoError(t, err)
		old.Commit(ctx)
		row := old.New
		_, err = filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
			ch, err := pics.Replace(ctx, row, upload("new"))
			if err != nil {
				return nil, err
			}
			defer ch.Rollback(ctx) // "safe": documented idiom
			pending := ch.New
			return func() error { row = pending; return nil }, nil // the DB commit
		})
		require.NoError(t, err)
		_, err = fsys.Stat(row)
		assert.NoError(t, err, "the committed row points at a file that was deleted")
		_, err = fsys.Stat(old.New)
		assert.NoError(t, err, "the old file went although a rollback was asked")

		// The transaction fails: the deferred rollback's wish and the
		// scope's outcome agree.
		before := row
		var made string
		_, err = filefield.RunInScope(ctx, func(ctx context.Context) (func() error, error) {
			ch, err := pics.Replace(ctx, before, upload("newer"))
			if err != nil {
				return nil, err
			}
			defer ch.Rollback(ctx)
			made = ch.New
			return func() error { return errors.New("the commit failed") }, nil
		})
		require.Error(t, err)
		_, err = fsys.Stat(made)
		assert.ErrorIs(t, err, os.ErrNotExist, "the rolled-back upload stayed")
		_, err = fsys.Stat(before)
		assert.NoError(t, err, "the row's file went with a rolled-back transaction")
	})
}

// Default is cleaned as a reference is: "/pics/default.png" protects the
// stored "pics/default.png" (it used to be compared byte for byte, and
// protected nothing). A Default that is no stored path panics in New.
func TestDefaultIsCleaned(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal, func(t *testing.T, fsys afero.Fs, _ string) {
		ctx := t.Context()
		storagetest.WriteFile(t, fsys, "pics/default.png", png("default"), time.Time{})
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Default: "/pics/default.png"})
		ch, err := pics.Replace(ctx, "pics/default.png", upload("a"))
		require.NoError(t, err)
		res := ch.Commit(ctx)
		_, err = fsys.Stat("pics/default.png")
		assert.NoError(t, err, "the shared default file was deleted: %+v", res)
		assert.Equal(t, []filefield.Kept{{Path: "pics/default.png", Reason: filefield.KeptProtected}}, res.Kept)
		assert.Panics(t, func() { filefield.New("pics", fsys, filefield.Options{Dir: "pics", Default: "../default.png"}) })
		assert.Panics(t, func() {
			filefield.New("pics", fsys, filefield.Options{Dir: "pics", Protected: []string{"/pics/keep/**"}})
		})
	})
}

// Dir with a literal before a placeholder in one segment
// ("pics/user-{owner}"): the field's directory is "pics", not the
// "pics/user-" that refused every path the field stored itself.
func TestMidSegmentPlaceholderAcceptsOwnPaths(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	ctx := t.Context()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics/user-{owner}"})
	ch, err := pics.Save(ctx, upload("a")) // owner 42
	require.NoError(t, err)
	ch.Commit(ctx)
	assert.NoError(t, pics.CheckPath(ch.New), "the field refuses a path it stored itself: %s", ch.New)
	_, err = pics.Replace(ctx, ch.New, upload("b"))
	assert.NoError(t, err)
	assert.ErrorIs(t, pics.CheckPath("docs/x.pdf"), filefield.ErrUnsafePath)
}

// An owner safe on its own may make an unsafe directory: a combining
// mark right after a template letter leaves the path out of normal form
// C, so the row could never be replaced or deleted. It is refused.
func TestOwnerComposesWithTemplate(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics/{owner}/user{owner}"})
	up := upload("a")
	up.Owner = "\u0301"
	_, err := pics.Save(t.Context(), up)
	require.ErrorIs(t, err, filefield.ErrUnsafePath)
	assert.Empty(t, files(t, fsys), "nothing is stored")
}

// On RootFs, os.Root creates files through links that stay inside the
// root, and refuses them when it renames and removes: with the field's
// directory a link to another directory, a temporary file was left
// there. The link is refused before anything is written.
func TestNoTempFileLeftThroughInRootLink(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal[:1], func(t *testing.T, fsys afero.Fs, dir string) {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "invoices"), 0o755))
		require.NoError(t, os.Symlink("invoices", filepath.Join(dir, "pics")))
		pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
		_, err := pics.Save(t.Context(), upload("a"))
		require.ErrorIs(t, err, storage.ErrSymlink)
		ents, err := os.ReadDir(filepath.Join(dir, "invoices"))
		require.NoError(t, err)
		for _, e := range ents {
			assert.False(t, strings.HasPrefix(e.Name(), storage.TempPrefix), "temp file left in invoices/: %s", e.Name())
		}
	})
}

// foldFs simulates a case-insensitive, case-preserving disk (macOS's
// default APFS, NTFS): names are compared without case.
type foldFs struct{ afero.Fs }

func fold(n string) string { return strings.ToLower(n) }

func (f foldFs) Create(n string) (afero.File, error) { return f.Fs.Create(fold(n)) }
func (f foldFs) Mkdir(n string, p os.FileMode) error { return f.Fs.Mkdir(fold(n), p) }
func (f foldFs) MkdirAll(n string, p os.FileMode) error {
	return f.Fs.MkdirAll(fold(n), p)
}
func (f foldFs) Open(n string) (afero.File, error) { return f.Fs.Open(fold(n)) }
func (f foldFs) OpenFile(n string, fl int, p os.FileMode) (afero.File, error) {
	return f.Fs.OpenFile(fold(n), fl, p)
}
func (f foldFs) Remove(n string) error              { return f.Fs.Remove(fold(n)) }
func (f foldFs) RemoveAll(n string) error           { return f.Fs.RemoveAll(fold(n)) }
func (f foldFs) Rename(o, n string) error           { return f.Fs.Rename(fold(o), fold(n)) }
func (f foldFs) Stat(n string) (os.FileInfo, error) { return f.Fs.Stat(fold(n)) }
func (f foldFs) Chmod(n string, m os.FileMode) error {
	return f.Fs.Chmod(fold(n), m)
}
func (f foldFs) Chtimes(n string, a, m time.Time) error { return f.Fs.Chtimes(fold(n), a, m) }

// On a case-insensitive disk a row holding "pics/Default.png" names the
// shared default file "pics/default.png", and "pics/KEEP/x.png" a file the
// glob "pics/keep/**" protects: Default and Protected are compared
// without regard to case.
func TestCaseInsensitiveDiskKeepsDefault(t *testing.T) {
	t.Parallel()
	fsys := foldFs{afero.NewMemMapFs()}
	ctx := t.Context()
	require.NoError(t, afero.WriteFile(fsys, "pics/default.png", png("default"), 0o644))
	require.NoError(t, afero.WriteFile(fsys, "pics/keep/x.png", png("keep"), 0o644))
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics", Default: "pics/default.png", Protected: []string{"pics/keep/**"}})
	for _, old := range []string{"pics/Default.png", "pics/KEEP/x.png"} {
		ch, err := pics.Replace(ctx, old, upload("a"))
		require.NoError(t, err)
		res := ch.Commit(ctx)
		assert.Empty(t, res.Deleted, "%s: deleted a protected file through another case", old)
		assert.Equal(t, []filefield.Kept{{Path: old, Reason: filefield.KeptProtected}}, res.Kept)
	}
}

// Fault injection with HashNames and {shard} (fault_test.go covers only
// random names): failing any single operation of a Save whose bytes are
// already stored (a reuse), or of a fresh one, never loses or alters the
// existing file and leaves no temporary file; a Save that succeeds names
// a complete file.
func TestFaultInjectionHashNames(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, redteamLocal, func(t *testing.T, base afero.Fs, _ string) {
		ctx := t.Context()
		refs := filefield.RefCheckerFunc(func(context.Context, string) (bool, error) { return false, nil })
		opts := filefield.Options{Dir: "pics/{shard}", HashNames: true, Refs: refs, ReuseGrace: -1}
		setup := filefield.New("pics", base, opts)
		existing, err := setup.Save(ctx, upload("same"))
		require.NoError(t, err)
		existing.Commit(ctx)
		for _, tag := range []string{"same", "fresh"} {
			for n := 1; n < 200; n++ {
				ffs := storagetest.NewFaultFs(base, storagetest.Fault{N: n})
				f := filefield.New("pics", ffs, opts)
				ch, err := f.Save(ctx, upload(tag))
				fired := ffs.Fired() > 0
				got := map[string]string{}
				for _, p := range files(t, base) {
					got[p] = read(t, base, p)
				}
				assert.Equal(t, string(png("same")), got[existing.New], "%s op %d", tag, n)
				for p := range got {
					if ops := ffs.Ops(); strings.Contains(p, storage.TempPrefix) && !(fired && ops[n-1].Kind == storagetest.OpRemove) {
						t.Errorf("%s: failing op %d left %s (err %v); ops %v", tag, n, p, err, ffs.Ops())
					}
				}
				if err == nil {
					assert.Equal(t, string(png(tag)), got[ch.New], "%s op %d: row would point at", tag, n)
					if tag == "fresh" {
						ch.Rollback(ctx) // ReuseGrace -1, Refs false: deleted
					}
				}
				for p := range got {
					if p != existing.New {
						_ = base.Remove(p)
					}
				}
				if !fired {
					break
				}
			}
		}
	})
}

// A template that starts with a placeholder ("{owner}/avatars") has no
// literal directory: stored paths must fit the template, so a tampered
// row naming another field's file ("invoices/x.pdf") is refused.
func TestLeadingPlaceholderRefusesOtherPaths(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	ctx := t.Context()
	storagetest.WriteFile(t, fsys, "invoices/x.pdf", []byte("%PDF-"), time.Time{})
	avatars := filefield.New("avatars", fsys, filefield.Options{Dir: "{owner}/avatars"})
	require.ErrorIs(t, avatars.CheckPath("invoices/x.pdf"), filefield.ErrUnsafePath)
	_, err := avatars.Replace(ctx, "invoices/x.pdf", upload("a"))
	require.ErrorIs(t, err, filefield.ErrUnsafePath)
	_, err = fsys.Stat("invoices/x.pdf")
	assert.NoError(t, err)
	up := upload("b")
	up.Owner = "42"
	ch, err := avatars.Save(ctx, up)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(ch.New, "42/avatars/"), ch.New)
	assert.NoError(t, avatars.CheckPath(ch.New))
	_, err = avatars.Replace(ctx, ch.New, upload("c"))
	assert.NoError(t, err)
}
