package orphan_test

import (
	"io/fs"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// A file whose name is not a valid stored path is kept as unsafe, the
// reason every package gives for that refusal; a valid name that matches
// no shape is kept as unrecognised, and only those are listed.
func TestUnsafeAndUnrecognisedAreTwoReasons(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		unsafe := []string{`pics/a\b.jpg`, "pics/a:b.jpg"}
		for _, p := range append(unsafe, "pics/ref.jpg", "pics/orphan.jpg", "pics/notes.txt") {
			put(t, fsys, p, 10, 10*day)
		}
		f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1, Shapes: []string{"pics/*.jpg"}, MeasureAll: true})
		plan, err := f.Find(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []orphan.Orphan{{Path: "pics/orphan.jpg", Size: 10, ModTime: now.Add(-10 * day)}}, normalise(plan.Orphans))
		assert.Equal(t, storage.Count{Files: 2, Bytes: 20}, plan.Kept[orphan.KeptUnsafe])
		assert.Equal(t, storage.Count{Files: 1, Bytes: 10}, plan.Kept[orphan.KeptUnrecognised])
		assert.Equal(t, []string{"pics/notes.txt"}, plan.Unrecognised)
		assert.Equal(t, storage.KeptUnsafe, orphan.KeptUnsafe)

		rep, err := f.Apply(t.Context(), plan)
		require.NoError(t, err)
		assert.Equal(t, 1, rep.Deleted.Files)
		for _, p := range append(unsafe, "pics/ref.jpg", "pics/notes.txt") {
			_, err := fsys.Stat(p)
			assert.NoError(t, err, "%q kept", p)
		}
	})
}

// A key XML cannot carry (a control character) is listed by a server
// that does not URL-encode listings (versitygw) as another name, one with
// U+FFFD in its place: that name is planned, found gone at Apply, and the
// real object stays.
func TestKeysAListingCannotCarryAreKept(t *testing.T) {
	t.Parallel()
	fsys := s3test.Shared(t).Fs(t, "")
	for _, p := range []string{"pics/bell\a.jpg", "pics/ref.jpg", "pics/orphan.jpg"} {
		put(t, fsys, p, 10, 10*day)
	}
	f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Deleted.Files, "only pics/orphan.jpg")
	for _, p := range []string{"pics/bell\a.jpg", "pics/ref.jpg"} {
		_, err := fsys.Stat(p)
		assert.NoError(t, err, "%q kept", p)
	}
	_, err = fsys.Stat("pics/orphan.jpg")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}
