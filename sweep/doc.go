// Package sweep removes files by age under rules: the seed's
// "cleanup_media --qr-age 7" as a library type a service runs on a schedule
// ([Sweeper.Run]) or a command runs once ([Sweeper.Sweep]).
//
// # How a sweep works
//
// A sweep lists the tree once (the backend's fast listing when it has one),
// decides every file, then deletes the planned files in batches of 1000
// with bounded concurrency. The first rule whose glob matches a file
// decides it. A dry run is the same sweep without the deletions, and gives
// the same report, but for Report.DirsRemoved: directories a real run
// would find empty afterwards are not counted (0).
//
// On a backend that lists names faster than sizes (rootfs.Fs), the
// listing stats only the files a rule matches by name, and filefield temp
// files: a QR-code sweep ("qr_codes/**") of a large media folder no longer
// stats every avatar. Report.Unmeasured counts the files it did not stat.
// A rule matching every file ("**") measures everything.
//
// # Guarantees
//
//   - Only regular files are removed: never a symbolic link's target, a
//     directory (except empty ones with RemoveEmptyDirs, never the root or
//     Options.Dir), a FIFO, a socket or a device.
//   - Nothing outside the root: listing never follows a symbolic link, and
//     on rootfs.Fs removal follows none either.
//   - A path that is not a valid stored path (storage.ValidPath) or matches
//     Options.Protected is never removed; the deletion choke point checks
//     again what the plan already checked.
//   - Future modification times count as young. Temp files written by
//     filefield are kept until older than TempMaxAge (default one day).
//   - A listing error or a cancelled context during listing deletes
//     nothing; nor does a plan Options.Approve refuses (a guard of the
//     caller's that judges the whole plan, from the same listing). A budget (Options.Budget: files, bytes, time) stops cleanly
//     and the report says which; with a count or bytes budget the plan is
//     taken in path order, so a dry run and the real run stop at the same
//     file.
//   - Deletions that fail (a full disk, a server gone away) are reported
//     file by file, and Sweep returns [ErrDeleteFailed] with the report.
//
// # Concurrency
//
// A Sweeper is safe for concurrent use; sweeps run one at a time. Events
// and log lines may come from several goroutines at once, up to
// Options.Concurrency.
//
// # Caveats
//
// On backends other than rootfs.Fs, a directory swapped for a link
// between listing and removal can redirect a removal; use RootFs on local
// disks. Just before removal, every file is re-checked for validity,
// protection, size and modification time (on an object store, by a
// listing of each batch's key range, or a HEAD each for small batches):
// one rewritten under the same name since it was listed is kept, as
// changed, also with the same bytes. An object's removal is then made
// conditional on its ETag where the store can ([storage.Features]), which
// keeps one rewritten with other bytes in the moment between the re-check
// and the removal. Where the store is known not to (MinIO, once a first
// conditional deletion found out), such an object is removed; so is one
// rewritten with the same bytes in that moment anywhere.
package sweep
