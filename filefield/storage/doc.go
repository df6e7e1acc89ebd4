// Package storage is the storage layer that filefield, sweep and orphan
// stand on. It holds, once, the parts where a mistake deletes the wrong
// file: stored-path validation, listing, the careful write, and the one
// deletion pipeline. The backends live beside it: package rootfs (a local
// disk) and package s3fs (S3 and S3-compatible stores).
//
// It lives below filefield because mediaclean's top level is fixed to its
// three user-facing packages; sweep and orphan import it too.
//
// # Stored paths
//
// A stored path is the value a database row keeps: slash-separated and
// relative to the storage root. [ValidPath] refuses anything that could
// name a file outside the root or a different file on another system
// (absolute paths, "..", backslashes, drive letters, NUL and control
// characters, non-NFC text, Windows device names, dot-files). [Clean]
// normalises references (leading "/", "./", backslashes, repeated slashes)
// in the direction that can only keep more files.
//
// # Backends
//
// Any [afero.Fs] works. For a local disk use package rootfs, built on
// [os.Root]: nothing done through it leaves its root, through ".." or
// through a symbolic link, and its destructive operations follow no link
// at all.
// afero.BasePathFs is not a safe substitute: it checks names as text only,
// so "../media-secret/x" reaches a sibling directory, and it follows links
// out of its base (TestBasePathFsEscapes shows both).
//
// # The deletion pipeline
//
// [Delete] is the one place where anything in user storage is deleted or
// moved: filefield, sweep and orphan (quarantine, restore and purge
// included) all call it, and a test checks that nothing else in the
// module calls Remove, RemoveAll or Rename on user storage. It refuses
// what may not be touched (a path [ValidPath] refuses, a protected glob,
// a quarantine area), removes or moves only regular files, follows no
// link, never replaces a file by a move, can re-check each file's size
// and time just before acting, and reports exactly one [Outcome] per
// file. [PendingFile] is the one careful write, and removes nothing it
// did not create.
//
// # Quarantine areas
//
// A directory named [QuarantineDirName] is reserved: every listing skips
// it, and Delete touches what is inside only when asked to
// ([AllowQuarantine]), so quarantined files are safe from any sweep or
// orphan search, whatever its options.
//
// # Features and fast paths
//
// Code above the storage layer chooses a strategy from [Features]
// (cheap names, atomic creates, range listings, no links followed), which
// backends and wrappers report, never from which interfaces a value
// happens to implement. Backends may implement fast paths: [Lister] (one
// listing entry point: a directory or a key range, measuring what the
// caller asks), [Stater] (stats of many files per call), [Remover]
// (removal of many files per call, and of an empty directory alone) and
// [Mover] (a safe move). [List], [Restat], [RemoveFiles] and [MoveFile]
// use them when present and fall back to portable code otherwise, with
// the same results; [Restat], the re-check of files decided on earlier,
// picks its own strategy (a listing of the key range where that is cheap).
// The portable listing reads each directory once with Readdir(-1); it
// never uses afero.Walk (which stats every entry again) nor Readdir(n)
// paging (which panics on MemMapFs when entries are removed in between).
//
// # Object stores
//
// Backends reporting [Features].AtomicCreate (package s3fs) store a file
// whole on Close and copy on rename; [PendingFile] then writes final
// names directly, and aborts a failed write. Their directories are
// virtual. [WithContext] binds such a backend to a context, so that every
// request honours it.
//
// # Errors
//
// Failures are [*PathError] values carrying the operation and the path,
// wrapping a sentinel ([ErrUnsafePath], [ErrSymlink], [ErrNotRegular],
// [ErrChanged]) or the backend's error, so errors.Is(err, fs.ErrNotExist)
// keeps working. Context errors are returned unwrapped.
//
// # Caveats
//
// On backends that do not report Features.NoFollow, the pipeline and the
// careful write check each directory segment with Lstat before acting,
// which leaves a window between the check and the act; use rootfs on a
// local disk.
package storage
