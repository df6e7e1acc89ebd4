//go:build unix

package filefield_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// TestS16HashReuseOnlyOfRegularFile: with HashNames, an upload whose
// content name is already taken reuses what is there as "the same
// bytes". What is there must be a regular file: a symbolic link planted
// at the name (to another upload), a directory, a FIFO or a file of
// another size is not the upload's content, and a row pointing at it has
// lost the upload. The upload gets a name of its own.
func TestS16HashReuseOnlyOfRegularFile(t *testing.T) {
	for _, kind := range []string{"symlink", "dir", "fifo", "short"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "pics"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "pics", "victim.png"), png("someone else"), 0o644))
			body := png("mine")
			p := hashPathS16("pics", body)
			host := filepath.Join(dir, filepath.FromSlash(p))
			switch kind {
			case "symlink":
				require.NoError(t, os.Symlink("victim.png", host))
			case "dir":
				require.NoError(t, os.Mkdir(host, 0o755))
			case "fifo":
				require.NoError(t, syscall.Mkfifo(host, 0o644))
			case "short": // a regular file of another size: not these bytes
				require.NoError(t, os.WriteFile(host, []byte("\x89PNG"), 0o644))
			}
			fsys, err := rootfs.New(dir)
			require.NoError(t, err)
			t.Cleanup(func() { fsys.Close() })
			f := filefield.New("pics", fsys, filefield.Options{Dir: "pics", HashNames: true})
			ch, err := f.Save(t.Context(), filefield.Upload{Body: bytes.NewReader(body), Name: "a.png"})
			if err != nil {
				return // refused: nothing lost
			}
			defer ch.Rollback(t.Context())
			fi, lerr := os.Lstat(filepath.Join(dir, filepath.FromSlash(ch.New)))
			require.NoError(t, lerr)
			require.Truef(t, fi.Mode().IsRegular(), "Save returned %s, a %v, as the upload's stored file", ch.New, fi.Mode().Type()&fs.ModeType)
			got, rerr := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ch.New)))
			require.NoError(t, rerr)
			require.Equal(t, string(body), string(got), "the row would point at other bytes than the upload's")
		})
	}
}
