package storage

import "os"

// TempDir returns the directory for large temporary files when the caller
// names none, such as orphan's merge-mode sort (Options.TempDir) and a
// Parquet inventory report's data files: $TMPDIR when it is set;
// otherwise os.TempDir(), unless that directory is held in memory (tmpfs
// or ramfs on Linux) and /var/tmp is a writable directory on a disk, where
// files that grow with the size of a bucket belong: a sort of a billion
// references in a tmpfs /tmp would take its tens of gigabytes from RAM.
func TempDir() string {
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir()
	}
	return pickTempDir(os.TempDir(), "/var/tmp", inMemory, writableDir)
}

// pickTempDir is TempDir's choice between tmp and alt.
func pickTempDir(tmp, alt string, inMemory, writable func(string) bool) string {
	if inMemory(tmp) && writable(alt) && !inMemory(alt) {
		return alt
	}
	return tmp
}

// TempFile is a scratch file of this process, never user storage: the
// external sort's runs, a Parquet report's data file, an upload's spool.
// It is unlinked as soon as it is created where the system allows it, so
// that nothing is left behind even if the process dies; elsewhere Close
// removes it.
type TempFile struct {
	*os.File
	name string // while the file is not yet removed
}

// CreateTemp creates a TempFile in dir, or in TempDir() when dir is
// empty, named by pattern as os.CreateTemp names files.
func CreateTemp(dir, pattern string) (*TempFile, error) {
	if dir == "" {
		dir = TempDir()
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	t := &TempFile{File: f, name: f.Name()}
	if os.Remove(t.name) == nil {
		t.name = ""
	}
	return t, nil
}

// Close closes the file and removes it, if it is still there.
func (t *TempFile) Close() error {
	err := t.File.Close()
	if t.name != "" {
		os.Remove(t.name)
		t.name = ""
	}
	return err
}
