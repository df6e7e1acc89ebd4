//go:build !unix

package s3test

import "os"

// lockFile does nothing where flock is missing: concurrent test binaries
// may then both install versitygw, which is slower but still correct.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
