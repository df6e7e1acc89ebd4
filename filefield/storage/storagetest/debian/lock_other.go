//go:build !linux

package debian

import "os"

// lockFile does nothing outside Linux, where Ensure installs nothing.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
