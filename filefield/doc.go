// Package filefield keeps the files of database rows: profile pictures,
// e-signatures, forum images, receipts, QR codes. A [Field] stores each
// upload under a safe unique name and swaps old files for new ones only when
// the database change that refers to them commits.
//
// # Use
//
// Save, Replace and Delete return a pending [Change]. Write Change.New to the
// row inside the transaction; after the transaction commits, call Commit,
// which deletes the stale file; if it rolls back, call Rollback, which
// deletes the new file and keeps the old one.
//
// A [Scope] does that for every change of a transaction: Save, Replace and
// Delete called with a context from [NewScope] register their change in
// it by themselves, and the scope commits or rolls back all of them
// together. Scopes nest like savepoints; only the outermost commit
// deletes. While a scope holds a change, the change's own Commit and
// Rollback only record a wish and the transaction's outcome decides (see
// [Change]), so a deferred Rollback or an early Commit in the
// transaction's callback cannot delete a file a row points at. [WithTx] runs a database/sql transaction in a scope, and
// [RunInScope] any other transaction API (the subpackages for GORM and
// pgx are built on it). A change neither committed nor rolled back
// within Options.PendingTimeout (an hour by default) is reported: an
// event with [ActionAbandon] and [ErrAbandoned], logged at Warn. The
// field holds a pending change until it is finished, so an integration
// can finish it when a row takes its path ([Field.Claim], then
// [Scope.AddClaimed]). A change made in no scope and taken in so, or
// registered by its maker with [Scope.Add], stays its maker's: the
// transaction's commit finishes it, but its rollback gives it back,
// pending, its file kept ([KeptGivenBack]), since the maker may write the
// path again in a retry; the maker's Rollback removes it when it gives
// up. A change made in a scope belongs to that scope: its rollback
// removes the new file.
//
// # Guarantees
//
//   - No old file is deleted before Commit; an error, a panic, a failed
//     tx.Commit or a cancelled context leaves the old file byte-identical.
//   - A new file is complete before any row can point at it: it is written
//     (storage.PendingFile) to a temporary name with O_EXCL in the target
//     directory, synced, closed, renamed into place without replacing
//     anything, and the directory is synced. A failure at any step removes
//     what was written, and never a file this write did not create. On
//     object stores (storage.Features.AtomicCreate, such as s3fs), where
//     an object appears whole on Close and rename is a copy, the final key
//     is written directly, create-only; a failed write is aborted and
//     stores nothing, and one refused because the key exists leaves that
//     key's object alone.
//   - Stored names are 128 random bits from crypto/rand (or the first 128
//     bits of the content's SHA-256 with Options.HashNames) plus an
//     extension from an allowlist, chosen from the sniffed content type; the
//     client's file name is never part of a path.
//   - Uploads are checked before anything is stored: size while streaming,
//     content type by sniffing the first 512 bytes.
//   - Stored paths read back from rows are validated (storage.ValidPath and
//     the field's directory) before any use; an unsafe one is refused and
//     nothing is touched.
//   - Commit never deletes the new file's own path, the default file,
//     protected globs, files in keep mode, or a file that Options.Refs
//     says is still referenced or cannot vouch for. Deletions go through
//     storage.Delete, the one deletion pipeline.
//   - With HashNames, identical uploads share one file, created once even
//     when they race; a reuse renews the file's modification time; and a
//     shared file is deleted, on Commit or Rollback, only when Options.Refs
//     says no row uses it and it is older than Options.ReuseGrace. An
//     upload reuses only a regular file of its size that is younger than
//     half of ReuseGrace when its renewal lands (else its bytes get a name
//     of their own), so no deletion, in this process or another, nor an
//     orphan search whose grace period is at least ReuseGrace, is under
//     way while a reuse happens.
//   - A delete that fails after the commit is reported in the [Result] and
//     logged, never returned as an error.
//
// # Errors
//
// Rejections wrap [ErrTooLarge], [ErrEmpty], [ErrTypeNotAllowed],
// [ErrExtensionNotAllowed] or [ErrUnsafePath] in a [*PathError]. Context
// errors are returned unwrapped.
//
// # Concurrency
//
// A Field, a Change and a Scope are safe for concurrent use. Commit and
// Rollback take effect once; after one, the other does nothing.
//
// The scopes of one transaction (an outermost scope and its savepoints)
// change state one at a time, under one lock: a savepoint's Commit or
// Rollback racing the transaction's end happens wholly before it (and the
// end sees it) or wholly after (and does nothing), so the files come out
// as in one of the two orders. A change is at every moment held by an
// open scope or by the end that took it, so a Change.Commit or Rollback
// racing an end records a wish rather than acting alone, and a claim
// (Scope.AddClaimed) accepted while a Rollback finishes the change makes
// that Rollback decide again: the claimer then holds it. No lock is held
// while files are deleted or callbacks run (Options.Refs, OnEvent, a
// logger's handler): a callback may use the field, its changes and its
// scopes, except to wait for the very change that called it. One
// exception: with HashNames, Options.Refs is asked while the file's path
// is locked against reuse by an upload of the same content.
//
// # Caveats
//
//   - Durability: the directory sync makes the rename durable on local
//     disks; afero backends that cannot sync a directory skip it.
//   - With HashNames and without Options.Refs, no file is ever deleted: a
//     shared file cannot be vouched for. The orphan finder collects them.
//   - Commit and Rollback ignore cancellation of their context: they are
//     short, and stopping halfway would leave files behind.
//   - A crash between the database commit and Commit leaves the stale file;
//     the orphan finder collects such files.
package filefield
