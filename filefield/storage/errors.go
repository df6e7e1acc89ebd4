package storage

import (
	"errors"
	"strconv"
)

// Sentinel errors of the storage layer. The packages built on it return them
// wrapped in a [*PathError], so callers match them with [errors.Is].
var (
	// ErrUnsafePath reports a stored path that is not a safe, relative,
	// slash-separated name inside the storage root (see [ValidPath]).
	ErrUnsafePath = errors.New("unsafe path")

	// ErrSymlink reports a path that crosses a symbolic link where the
	// operation refuses to follow one.
	ErrSymlink = errors.New("path crosses a symbolic link")

	// ErrNotRegular reports an entry that is not a regular file where only a
	// regular file may be removed.
	ErrNotRegular = errors.New("not a regular file")

	// ErrChanged reports an entry that changed between the moment it was
	// inspected and the moment it was to be acted on.
	ErrChanged = errors.New("entry changed during the operation")

	// ErrBadGlob reports a malformed glob in options.
	ErrBadGlob = errors.New("malformed glob")

	// ErrUnsorted reports a listing or a stream that was to come in byte
	// order and did not: a backend that breaks ListOptions.Sorted, or a
	// source that claims an order it does not keep. Whatever relied on the
	// order stops, and nothing is deleted.
	ErrUnsorted = errors.New("not in byte order")
)

// PathError records an error, the operation and the path that caused it. It
// is the one error type of mediaclean: every package returns its failures as
// a *PathError wrapping a sentinel or the backend's own error, so both
// errors.Is(err, fs.ErrNotExist) and errors.As(err, &pe) work.
//
// Error quotes the path, so hostile names (control characters, newlines)
// cannot forge log lines.
type PathError struct {
	Op   string `json:"op"`   // the operation: "delete", "move", "list", "store", ...
	Path string `json:"path"` // the path as given, possibly hostile
	Err  error  `json:"-"`    // the cause, matched with errors.Is
}

// Error returns "op "path": cause", the path quoted.
func (e *PathError) Error() string {
	return e.Op + " " + strconv.Quote(e.Path) + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *PathError) Unwrap() error { return e.Err }

// wrap returns err as a *PathError for op and path, unless it already is
// one: errors are wrapped exactly once.
func wrap(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *PathError
	if errors.As(err, &pe) {
		return err
	}
	return &PathError{Op: op, Path: path, Err: unwrapOSPathError(err)}
}
