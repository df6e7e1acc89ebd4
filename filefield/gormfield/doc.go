// Package gormfield keeps the file columns of GORM models in step with
// their files, the way Django's signals and django-cleanup do, with no
// file code at the call sites: a handler stores the upload and saves the
// row; the old file goes after the commit, the new one if the scope that
// holds the upload rolls back.
//
//	files := gormfield.New(gormfield.Options{})
//	files.Track(&User{}, "Picture", pics).Track(&Message{}, "Image", images)
//	if err := db.Use(files); err != nil { ... }
//
//	ch, err := pics.FormFile(ctx, r, "picture", "", owner) // the upload
//	...
//	u.Picture = ch.New
//	err = db.WithContext(ctx).Save(&u).Error // the old picture goes after the commit
//
// # How it works
//
// Before gorm runs an update or a delete on a tracked table, the plugin
// builds the statement (without running it) and reads the tracked columns
// of the rows its WHERE clause selects, in the same transaction, locking
// them on PostgreSQL and MySQL. After the statement it reads those rows
// again by primary key. A path is stale when its row is gone (a hard
// delete) or its column now holds another path; a soft delete leaves the
// row, so its files stay. Stale paths become filefield deletions, and the
// pending upload of each new path (filefield.Field.Claim) joins the same
// unit of work. Inserts claim their new paths; upserts also delete what
// they overwrote, found by primary key (one whose conflict target is
// another unique column leaves the overwritten file to the orphan
// finder). An update that changes a primary key claims the paths its map
// assigns. This covers Save, Update, Updates, Create, bulk
// Where(...).Delete and deletes by primary key, and the associations gorm
// saves with a statement, which join its unit of work.
//
// An upload stored in no scope (with a context no Transaction or
// filefield.NewScope made) stays its handler's: a statement that writes
// its path takes it into its transaction, which commits it with the row,
// but a rollback gives it back (filefield.KeptGivenBack) instead of
// deleting it, since the handler may retry with the same path (an insert
// that breaks a unique index, then an update of the existing row; a
// retried Transaction). Roll such an upload back (Change.Rollback) if the
// handler gives up on it, or store it in the transaction's scope, whose
// rollback removes it. One left pending is reported at filefield's
// PendingTimeout and left to the orphan finder.
//
// Who finishes the files depends on the transaction:
//
//   - A statement in a transaction gorm began for it (the default), or in
//     none (SkipDefaultTransaction): the plugin commits its files after
//     gorm's commit. When the statement or its commit fails, the stale
//     files stay, and so do the uploads it meant to write. When the
//     outcome is unknown (the connection failed during the commit), every
//     file stays for good.
//   - A statement inside Transaction, or with a context that carries a
//     filefield.Scope: the scope finishes them, after the outermost
//     commit. Transaction nests with savepoints. A statement belongs to
//     the innermost Transaction open on its transaction, as in the
//     database, even when it is issued with an outer handle (the outer tx
//     captured by a nested Transaction's closure): a rollback to that
//     savepoint rolls its file changes back too.
//   - A statement in a transaction no scope covers (db.Begin(), or gorm's
//     db.Transaction alone): the plugin cannot know when, or whether, it
//     commits, and refuses the statement with ErrNoScope, unless
//     Options.LeaveUnscoped leaves its files to the orphan finder.
//
// # Guarantees
//
//   - No file is deleted before the commit of the transaction that made it
//     stale, and none is deleted while any tracked column of any table
//     still holds its path in a committed row (soft-deleted rows
//     included): every deletion asks the database again after the commit.
//     That includes the old file of an upload a statement wrote (the
//     plugin claims its change, and adds the check with
//     filefield.Change.CheckRefs), so a savepoint rolled back behind the
//     plugin's back (gorm's own nested db.Transaction) keeps its row's
//     file. A nested Transaction under gorm's DisableNestedTransaction
//     has no savepoint: its statements, and their files, stay with the
//     caller's transaction whatever fn returns. A PrepareStmt session
//     shares its transaction's savepoints.
//   - Deletions go through filefield, so its guarantees hold: stored paths
//     are validated, protected and default files stay, failures are
//     reported, never raised after a commit.
//   - A statement that cannot read the rows it touches fails, and its
//     transaction rolls back: no change goes unseen.
//
// # Caveats
//
//   - Raw SQL (db.Exec) is not seen: its stale files are left to the
//     orphan finder.
//   - Without a transaction (SkipDefaultTransaction), the reads before and
//     after a statement are separate from it: a concurrent writer can
//     leave a stale file behind (never delete a live one, since every
//     deletion checks the committed rows).
//   - A tracked model needs a primary key; Track panics otherwise.
//   - The plugin registers callbacks before and after gorm:create,
//     gorm:update and gorm:delete, and at the end of each chain; a plugin
//     that replaces those callbacks must keep their names.
package gormfield
