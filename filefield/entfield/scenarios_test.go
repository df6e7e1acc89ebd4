package entfield_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/message"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/user"
)

// The seed's first scenario, with each way ent writes a field: the
// handler stores the upload and saves the row; the old file goes after
// the commit, and nothing else is deleted.
func TestReplaceAPictureWithNoFileCode(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"UpdateOneID", "UpdateOne", "entity Update", "Update Where", "WithTx"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				u := a.newUser(t, "ada")
				other := a.newUser(t, "bob")
				p := a.newPicture(t, "new")
				var err error
				switch how {
				case "UpdateOneID":
					err = a.client.User.UpdateOneID(u.ID).SetPicture(p).Exec(ctx)
				case "UpdateOne":
					err = a.client.User.UpdateOne(u).SetPicture(p).Exec(ctx)
				case "entity Update":
					_, err = u.Update().SetPicture(p).SetName("ada2").Save(ctx)
				case "Update Where":
					err = a.client.User.Update().Where(user.Name("ada")).SetPicture(p).Exec(ctx)
				case "WithTx":
					var res filefield.Result
					res, err = entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
						return tx.User.UpdateOneID(u.ID).SetPicture(p).Exec(ctx)
					})
					assert.Equal(t, []string{u.Picture}, res.Deleted)
				}
				require.NoError(t, err)
				assert.Equal(t, p, a.user(t, u.ID).Picture)
				assert.ElementsMatch(t, []string{p, other.Picture}, a.stored(t))
				assert.Nil(t, a.pics.Claim(p), "the upload's change was taken into the statement's unit of work")
				noAbandoned(t, a)
			})
		})
	}
}

// UpdateOne(entity) with an entity older than its row: the stale path is
// the row's, not the entity's (ent's OldField would answer from the
// entity and miss it).
func TestAStaleEntityStillFindsTheRowsPath(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		second := a.newPicture(t, "second")
		require.NoError(t, a.client.User.UpdateOneID(u.ID).SetPicture(second).Exec(ctx))
		third := a.newPicture(t, "third")
		require.NoError(t, a.client.User.UpdateOne(u).SetPicture(third).Exec(ctx), "u still says %s", u.Picture)
		assert.Equal(t, []string{third}, a.stored(t))
	})
}

// Updates that do not touch a file field read nothing and delete
// nothing.
func TestUnrelatedUpdatesLeaveFilesAlone(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		require.NoError(t, a.client.User.UpdateOneID(u.ID).SetName("ada2").Exec(ctx))
		require.NoError(t, a.client.User.Update().Where(user.ID(u.ID)).SetName("ada3").Exec(ctx))
		assert.Equal(t, []string{u.Picture}, a.stored(t))
		assert.Equal(t, "ada3", a.user(t, u.ID).Name)
	})
}

// The QR code, a nullable field: regenerated, then cleared.
func TestRegenerateAndClearAQRCode(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		var last string
		for i := range 3 {
			ch, err := a.qr.Save(ctx, upload(fmt.Sprint("qr", i)))
			require.NoError(t, err)
			require.NoError(t, a.client.User.UpdateOneID(u.ID).SetQrCode(ch.New).Exec(ctx))
			last = ch.New
		}
		assert.ElementsMatch(t, []string{u.Picture, last}, a.stored(t))
		require.NoError(t, a.client.User.UpdateOneID(u.ID).ClearQrCode().Exec(ctx))
		assert.Equal(t, []string{u.Picture}, a.stored(t))
		assert.Nil(t, a.user(t, u.ID).QrCode)
	})
}

// A bulk update from NULL: the rows held no QR code, so nothing is stale,
// and the upload commits with the update.
func TestBulkUpdateFromNull(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		ada, bob := a.newUser(t, "ada"), a.newUser(t, "bob")
		ch, err := a.qr.Save(ctx, upload("shared"))
		require.NoError(t, err)
		n, err := a.client.User.Update().Where(user.IDIn(ada.ID, bob.ID)).SetQrCode(ch.New).Save(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.Nil(t, a.qr.Claim(ch.New), "claimed by the update")
		assert.Empty(t, ch.Rollback(ctx).Deleted, "committed with the update")
		assert.ElementsMatch(t, []string{ada.Picture, bob.Picture, ch.New}, a.stored(t))
		noAbandoned(t, a)
	})
}

// newMessages creates n messages with images for u, each stored first.
func (a *app) newMessages(t *testing.T, u *entdemo.User, n int) []string {
	t.Helper()
	var images []string
	for i := range n {
		ch, err := a.images.Save(t.Context(), upload(fmt.Sprint("img", i, u.Name)))
		require.NoError(t, err)
		require.NoError(t, a.client.Message.Create().SetUserID(u.ID).SetImage(ch.New).Exec(t.Context()))
		images = append(images, ch.New)
	}
	return images
}

// Deleting a user and their messages in bulk, in one transaction: every
// file stays until the commit, then theirs go and nobody else's. A bulk
// delete outside a transaction deletes at once.
func TestDeleteAUserAndTheirMessages(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		keep := a.newUser(t, "bob")
		ch, err := a.qr.Save(ctx, upload("qr"))
		require.NoError(t, err)
		require.NoError(t, a.client.User.UpdateOneID(u.ID).SetQrCode(ch.New).Exec(ctx))
		images := a.newMessages(t, u, 3)
		kept := a.newMessages(t, keep, 3)
		before := a.stored(t)
		require.Len(t, before, 9)

		res, err := entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
			n, err := tx.Message.Delete().Where(message.UserID(u.ID)).Exec(ctx)
			if err != nil {
				return err
			}
			assert.Equal(t, 3, n)
			if err := tx.User.DeleteOneID(u.ID).Exec(ctx); err != nil {
				return err
			}
			assert.Equal(t, before, a.stored(t), "nothing goes before the commit")
			return nil
		})
		require.NoError(t, err)
		assert.ElementsMatch(t, append([]string{u.Picture, ch.New}, images...), res.Deleted)
		assert.ElementsMatch(t, append([]string{keep.Picture}, kept...), a.stored(t))

		n, err := a.client.Message.Delete().Where(message.UserID(keep.ID)).Exec(ctx)
		require.NoError(t, err)
		assert.Equal(t, 3, n)
		assert.Equal(t, []string{keep.Picture}, a.stored(t))
		noAbandoned(t, a)
	})
}

// Roll back after an error, after a panic and after a failed commit: the
// new file goes, the old one and the row stay.
func TestTransactionRollsBackFiles(t *testing.T) {
	t.Parallel()
	errApp := errors.New("application error")
	for _, end := range []string{"error", "panic", "failed commit"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				u := a.newUser(t, "ada")
				run := func() (filefield.Result, error) {
					return entfield.WithTx(ctx, a.client, func(ctx context.Context, tx *entdemo.Tx) error {
						ch, err := a.pics.Save(ctx, upload("new"))
						if err != nil {
							return err
						}
						if err := tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx); err != nil {
							return err
						}
						switch end {
						case "error":
							return errApp
						case "panic":
							panic("handler bug")
						}
						_, err = tx.ExecContext(ctx, `INSERT INTO audits (id, user_id) VALUES (1, 999)`) // fails at commit
						return err
					})
				}
				if end == "panic" {
					assert.PanicsWithValue(t, "handler bug", func() { _, _ = run() })
				} else {
					res, err := run()
					require.Error(t, err)
					assert.False(t, errors.Is(err, filefield.ErrCommitUnknown), "%v", err)
					assert.Len(t, res.Deleted, 1, "the new file")
				}
				assert.Equal(t, u.Picture, a.user(t, u.ID).Picture)
				assert.Equal(t, []string{u.Picture}, a.stored(t))
			})
		})
	}
}

// A mutation that fails on its own (no transaction: a create refused by
// a unique index, an update of a row that is not there, a bulk create
// refused by a foreign key) leaves the uploads it meant to write to the
// handler, which may retry with the same paths: they stay, claimable,
// until the handler rolls them back.
func TestFailedMutationsLeaveUploadsToTheHandler(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		dup, err := a.pics.Save(ctx, upload("dup"))
		require.NoError(t, err)
		err = a.client.User.Create().SetName("ada").SetPicture(dup.New).Exec(ctx)
		require.Error(t, err, "the name is unique")
		nobody, err := a.pics.Save(ctx, upload("nobody"))
		require.NoError(t, err)
		err = a.client.User.UpdateOneID(u.ID + 100).SetPicture(nobody.New).Exec(ctx)
		require.True(t, entdemo.IsNotFound(err), "%v", err)
		changes := []*filefield.Change{dup, nobody}
		var bulk []*entdemo.MessageCreate
		for i := range 2 {
			ch, err := a.images.Save(ctx, upload(fmt.Sprint("orphan", i)))
			require.NoError(t, err)
			changes = append(changes, ch)
			bulk = append(bulk, a.client.Message.Create().SetUserID(999).SetImage(ch.New))
		}
		require.Error(t, a.client.Message.CreateBulk(bulk...).Exec(ctx), "user 999 does not exist")
		want := []string{u.Picture}
		for _, ch := range changes {
			require.False(t, ch.Held())
			want = append(want, ch.New)
		}
		assert.ElementsMatch(t, want, a.stored(t), "the handler's uploads stay")
		for _, ch := range changes {
			assert.Equal(t, []string{ch.New}, ch.Rollback(ctx).Deleted)
		}
		assert.Equal(t, []string{u.Picture}, a.stored(t))
		noAbandoned(t, a)
	})
}

// A create refused by a unique index, then an update of the existing row
// with the same upload (an upsert by hand, with no scope): the upload
// must still be there for the row the update commits.
func TestFailedCreateThenUpdateKeepsUpload(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		ch, err := a.pics.Save(ctx, upload("new"))
		require.NoError(t, err)
		err = a.client.User.Create().SetName("ada").SetPicture(ch.New).Exec(ctx)
		require.Error(t, err, "the name is unique")
		require.NoError(t, a.client.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx))
		require.Equal(t, ch.New, a.user(t, u.ID).Picture)
		assert.Equal(t, []string{ch.New}, a.stored(t), "the row's file stays and the old one goes")
	})
}

// A bulk create takes each upload into its unit of work: committed with
// it, so a later Rollback of the upload's change deletes nothing.
func TestBulkCreateClaimsItsFiles(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		var bulk []*entdemo.MessageCreate
		var changes []*filefield.Change
		for i := range 3 {
			ch, err := a.images.Save(ctx, upload(fmt.Sprint("bulk", i)))
			require.NoError(t, err)
			changes = append(changes, ch)
			bulk = append(bulk, a.client.Message.Create().SetUserID(u.ID).SetImage(ch.New))
		}
		require.NoError(t, a.client.Message.CreateBulk(bulk...).Exec(ctx))
		for _, ch := range changes {
			assert.Empty(t, ch.Rollback(ctx).Deleted, "committed with the insert")
		}
		assert.Len(t, a.stored(t), 4)
		noAbandoned(t, a)
	})
}

// The same path in two rows: the deletion of one row keeps the file the
// other still holds.
func TestAPathTwoRowsHoldIsKept(t *testing.T) {
	t.Parallel()
	forEachDB(t, entfield.Options{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		u := a.newUser(t, "ada")
		require.NoError(t, a.client.User.Create().SetName("copy").SetPicture(u.Picture).Exec(ctx))
		require.NoError(t, a.client.User.DeleteOneID(u.ID).Exec(ctx))
		assert.Equal(t, []string{u.Picture}, a.stored(t))
	})
}
