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
// the same report.
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
//     nothing. A budget (Options.Budget: files, bytes, time) stops cleanly
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
// disks. Just before removal, files are re-checked for validity and
// protection, and a file without an entity tag (a local disk) for its size
// and modification time too: one rewritten under the same name since it
// was listed is kept, as changed. An object's removal is made conditional
// on the ETag listed where the store can ([storage.Features]). Where it
// is known not to (MinIO, once a first conditional deletion found out),
// objects are re-checked by a listing of each batch just before it, and
// one rewritten in the moment between that listing and its deletion is
// removed; so is one rewritten during the first batch that finds out.
package sweep
