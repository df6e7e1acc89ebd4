// Package entfield keeps the file fields of ent entities in step with
// their files, as gormfield does for GORM models: a handler stores the
// upload and saves the entity; the old file goes after the commit, the
// new one if the scope that holds the upload rolls back. It is a
// subpackage so
// that only its users compile ent.
//
//	drv := entsql.OpenDB(dialect.Postgres, db)
//	client := ent.NewClient(ent.Driver(drv))
//	files := entfield.New(drv, entfield.Options{})
//	client.User.Use(
//		files.Track(pics, migrate.UsersTable, user.FieldPicture),
//		files.Track(qr, migrate.UsersTable, user.FieldQrCode),
//	)
//	client.Message.Use(files.Track(images, migrate.MessagesTable, message.FieldImage))
//
//	ch, err := pics.FormFile(ctx, r, "picture", "", owner) // the upload
//	...
//	err = client.User.UpdateOneID(id).SetPicture(ch.New).Exec(ctx) // the old picture goes after the commit
//
// The generated code needs the sql/execquery feature
// (ent generate --feature sql/execquery ./schema): the hooks read rows
// through the mutation's QueryContext, in its transaction. A hook refuses
// every mutation, with an error that says so, until it is there.
//
// # How it works
//
// Track returns an ent hook for one string field. Before an update that
// writes the field, and before every delete, the hook reads the field in
// the rows the mutation will touch, in the mutation's transaction: their
// IDs with the mutation's own predicates (the generated IDs method), then
// the column by primary key, locked (SELECT ... FOR UPDATE) on PostgreSQL
// and MySQL. An update-one reads its row too, rather than trusting
// OldField, which answers from the entity in memory after
// UpdateOne(entity). After the mutation succeeds, each old path other
// than the one written is stale, and its deletion is registered with
// filefield. A create or an update also takes the pending upload of the
// path it writes into its unit of work (filefield.Field.Claim), so that it
// commits with the mutation. This covers Create, CreateBulk,
// UpdateOne(ID), Update (bulk, with any predicates), ClearX, DeleteOne(ID)
// and Delete (bulk).
//
// An upload stored in no scope stays its handler's: a failed mutation,
// or a WithTx that rolls back, gives it back (filefield.KeptGivenBack)
// instead of deleting it (a mutation that fails inside WithTx, whose write
// may have happened before a hook failed, puts the upload in the
// transaction's scope all the same: if fn goes on and commits, it commits
// with the row, and its old file goes only if no row holds it), since the handler may retry with the same path
// (a create refused by a unique index, then an update of the existing
// row). Roll it back (Change.Rollback) if the handler gives up on it, or
// store it with the transaction's context; one left pending is reported
// at filefield's PendingTimeout and left to the orphan finder.
//
// Who finishes the files depends on the transaction:
//
//   - A mutation outside any ent transaction (ent runs it on its own):
//     the hook finishes its files right after it, deleting the stale ones
//     if it succeeded. If it failed, its upload stays with whoever stored
//     it: the caller's scope, or the handler (above). An outcome that is
//     unknown keeps every file for good.
//   - A mutation inside WithTx, or inside an ent transaction with a
//     context that carries a filefield.Scope: the scope finishes them,
//     after the commit.
//   - A mutation inside an ent transaction no scope covers (client.Tx
//     alone): the hook cannot know when, or whether, it commits, and
//     refuses it with ErrNoScope, unless Options.LeaveUnscoped leaves its
//     files to the orphan finder. Mutations that write no tracked field
//     run.
//
// # Guarantees
//
//   - No file is deleted before the commit of the transaction that made it
//     stale, and none while any tracked column of any table still holds
//     its path in a committed row: every deletion asks the database again
//     after the commit.
//   - WithTx finishes the files by the database's own commit, seen from a
//     commit hook (tx.OnCommit) that runs next to it, whatever the
//     application's commit hooks around it return. A commit whose outcome
//     is unknown (the connection failed while it was on its way, or fn
//     ended the transaction itself) keeps every file, old and new, and
//     the error matches filefield.ErrCommitUnknown.
//   - A mutation whose rows cannot be read fails before it runs, and its
//     transaction rolls back: no change goes unseen.
//   - Deletions go through filefield, so its guarantees hold: stored paths
//     are validated, protected and default files stay, failures are
//     reported, never raised after a commit.
//   - Track panics at start-up on a column that is not a string column of
//     its table; a hook installed on the client of a type without the
//     field refuses that type's mutations.
//
// # Caveats
//
//   - Only mutations through ent's hooks are seen. Raw SQL (ExecContext of
//     the client or a transaction), ON DELETE CASCADE, triggers and other
//     programs are not: their stale files are left to the orphan finder.
//     So are the paths an upsert (the sql/upsert feature's OnConflict)
//     overwrites.
//   - The read of the IDs is a query of the type: its interceptors and
//     privacy rules apply, and rows they hide keep their files.
//   - Outside a transaction the reads before a mutation are separate from
//     it, and the IDs are read without a lock: a concurrent writer can
//     leave a stale file behind (never delete a live one, since every
//     deletion checks the committed rows).
//   - The hook sees the mutation as the hooks outside it leave it. A hook
//     inside it (installed after it, or a schema hook) that sets a tracked
//     field is logged at Warn, and the stale file is left to the orphan
//     finder: install entfield's hooks last.
//   - ent has no savepoints: WithTx always begins a transaction of its
//     own, in a new outermost scope.
//   - A tracked table needs a single-column primary key.
package entfield
