package rootfs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// A rootfs.Fs is a local media folder as an afero.Fs: nothing through it
// reaches outside the folder, not by "..", not by a symbolic link.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "media")
	defer os.RemoveAll(dir)
	secret, _ := os.MkdirTemp("", "secret")
	defer os.RemoveAll(secret)
	_ = os.WriteFile(filepath.Join(secret, "key.pem"), []byte("private"), 0o600)
	_ = os.Symlink(secret, filepath.Join(dir, "escape")) // planted by someone

	fsys, err := rootfs.New(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fsys.Close()

	_ = fsys.MkdirAll("avatars", 0o755)
	err = afero.WriteFile(fsys, "avatars/1.png", []byte("png"), 0o644)
	fmt.Println("write inside:", err)
	_, err = fsys.Stat("../etc/passwd")
	fmt.Println("dot-dot refused:", err != nil)
	err = fsys.Remove("escape/key.pem")
	fmt.Println("link refused:", err != nil)
	_, err = os.Stat(filepath.Join(secret, "key.pem"))
	fmt.Println("secret still there:", !errors.Is(err, os.ErrNotExist))
	// Output:
	// write inside: <nil>
	// dot-dot refused: true
	// link refused: true
	// secret still there: true
}
