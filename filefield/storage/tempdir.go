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
