package storage

import "strings"

// QuarantineDirName names the directory that holds quarantined files: a
// quarantine at "trash" keeps run R's files under
// "trash/.mediaclean-quarantine/R/". Since it starts with a dot, no valid
// stored path passes through it, so no mediaclean component deletes what
// is inside except the quarantine's own restore and purge. Every listing
// skips it, so no sweep or orphan search ever sees a quarantined file,
// whatever its options: the reservation is in storage, not in a setting
// that the next run might forget.
const QuarantineDirName = ".mediaclean-quarantine"

// InQuarantine reports whether a segment of p is [QuarantineDirName]; a
// name that only contains it ("x.mediaclean-quarantine") is no such
// segment.
func InQuarantine(p string) bool {
	if !strings.Contains(p, QuarantineDirName) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == QuarantineDirName {
			return true
		}
	}
	return false
}

// quarantinePath splits a path inside a quarantine area into the
// quarantine's directory ("" for the root), the run and the rest: the
// stored path the file had, or the run's manifest. ok is false unless p
// has exactly that shape, with a valid directory, run and rest.
func quarantinePath(p string) (dir, run, rest string, ok bool) {
	i := 0 // where the reserved segment starts
	if !strings.HasPrefix(p, QuarantineDirName+"/") {
		j := strings.Index(p, "/"+QuarantineDirName+"/")
		if j < 0 {
			return "", "", "", false
		}
		i, dir = j+1, p[:j]
		if ValidPath(dir) != nil {
			return "", "", "", false
		}
	}
	run, rest, found := strings.Cut(p[i+len(QuarantineDirName)+1:], "/")
	if !found || ValidPath(run) != nil || ValidPath(rest) != nil {
		return "", "", "", false
	}
	return dir, run, rest, true
}
