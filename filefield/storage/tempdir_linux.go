package storage

import "golang.org/x/sys/unix"

// inMemory reports whether dir is on a file system held in memory.
func inMemory(dir string) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

// writableDir reports whether dir is a directory this process may create
// files in.
func writableDir(dir string) bool {
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && unix.Access(dir, unix.W_OK|unix.X_OK) == nil
}
