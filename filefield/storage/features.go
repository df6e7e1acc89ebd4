package storage

import "github.com/spf13/afero"

// Features says what a backend does, so that code built on it chooses a
// strategy by asking rather than by probing which interfaces a value
// happens to implement. The zero value describes a plain afero.Fs: names
// and sizes cost the same to list, files are written in place, renames
// are atomic.
type Features struct {
	// CheapNames: listing names is much cheaper than listing sizes and
	// times, as on a local disk, where each size is one more system call.
	// Callers then list names and measure only the files they need.
	CheapNames bool `json:"cheap_names"`
	// AtomicCreate: a file created with O_CREATE|O_EXCL appears whole on
	// Close, or not at all, and never replaces an existing one; rename is
	// a copy. Object stores are like this: filefield then writes final
	// names directly, never temporary names, and never renames.
	AtomicCreate bool `json:"atomic_create"`
	// RangeListing: a range of paths in byte order lists cheaply (an
	// object store's listing from a start key), so a re-check of many
	// files is one listing rather than one request per file.
	RangeListing bool `json:"range_listing"`
	// NoFollow: destructive operations and listings follow no symbolic
	// link in any segment of a path, and a move never replaces a file
	// (RootFs). Elsewhere the deletion pipeline checks each directory
	// segment with Lstat first, which leaves a window between check and
	// act.
	NoFollow bool `json:"no_follow"`
	// ConditionalDeletes says how the backend's [Remover] makes the
	// deletion of a Target with an ETag conditional on it, in the same
	// request, so that an object rewritten since it was seen is kept:
	// "batch" (many objects a request), "single" (one request each), or
	// "none" (it cannot: such a target is deleted whatever the object
	// holds by then, after the pipeline's re-check). It is "" on backends
	// without entity tags, and on an object store that has not found out
	// yet (s3fs asks each bucket on its first conditional deletion).
	ConditionalDeletes string `json:"conditional_deletes,omitempty"`
	// ChecksOnRemove: the backend's [Remover] checks a Target with Check
	// itself, in the stat it makes just before removing the file (RootFs:
	// fstatat, then unlinkat), and refuses one whose size or modification
	// time differs with [ErrChanged]. [Delete] then skips its own re-check
	// of such targets, which would stat each file once more: the outcome
	// is the same, decided a moment later.
	ChecksOnRemove bool `json:"checks_on_remove,omitempty"`
}

// FeaturesOf returns what fsys says of itself through a method
// Features() Features (backends have one, and wrappers report their
// base's), or the zero Features for a backend that says nothing.
func FeaturesOf(fsys afero.Fs) Features {
	if r, ok := fsys.(interface{ Features() Features }); ok {
		return r.Features()
	}
	return Features{}
}
