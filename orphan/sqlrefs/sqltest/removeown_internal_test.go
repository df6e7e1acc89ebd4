package sqltest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// removeOwn removes only the harness's own folders (and paths inside
// them): anything else, such as an empty or relative path, the temporary
// directory itself, another folder in it, or a path that climbs out of
// an own folder, stays.
func TestRemoveOwnRemovesOnlyOwnFolders(t *testing.T) {
	own, err := newDir("removeown", nil)
	require.NoError(t, err)
	inside := filepath.Join(own, "pwfile")
	require.NoError(t, os.WriteFile(inside, []byte("x"), 0o600))
	other := t.TempDir() // not an own folder
	keep := filepath.Join(other, "keep")
	require.NoError(t, os.WriteFile(keep, []byte("x"), 0o600))

	for _, p := range []string{"", ".", "relative/" + filepath.Base(own), os.TempDir(), other, keep,
		own + "/../" + filepath.Base(other), filepath.Join(os.TempDir(), "mediaclean-sqltes")} {
		removeOwn(p)
	}
	assert.FileExists(t, keep)
	assert.FileExists(t, inside)

	removeOwn(inside)
	assert.NoFileExists(t, inside)
	removeOwn(own)
	assert.NoDirExists(t, own)
}
