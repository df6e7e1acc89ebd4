package storage

import (
	"crypto/rand"
	"encoding/hex"
	"os"

	"github.com/spf13/afero"
)

// WriteFileAtomic replaces name with data so that a reader, or a crash,
// sees the old content or the new, never a mix or an empty file: it writes
// a temporary name (TempPrefix) in the same directory, syncs, closes,
// renames over name and syncs the directory. On an [AtomicCreator] it
// writes name directly, since the object appears whole on Close. On any
// failure the old content stays and the temporary file is removed.
func WriteFileAtomic(fsys afero.Fs, name string, data []byte) error {
	if CreatesAtomically(fsys) {
		return wrap("write", name, afero.WriteFile(fsys, name, data, 0o644))
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	tmp := Join(Dir(name), TempPrefix+hex.EncodeToString(b[:]))
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return wrap("write", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return wrap("write", name, err)
	}
	return SyncDir(fsys, Dir(name))
}
