//go:build !linux

package storage

// inMemory reports whether dir is on a file system held in memory; only
// Linux is asked.
func inMemory(string) bool { return false }

// writableDir is not asked where inMemory is always false.
func writableDir(string) bool { return false }
