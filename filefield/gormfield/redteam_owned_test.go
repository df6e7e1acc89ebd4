package gormfield_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// A *gorm.DB handle reused for a second statement (gorm reuses the
// Statement of a handle with no pending clone, so its instance settings
// survive): mediaclean:gormfield_own, set by ownScope for the first
// statement and never cleared, makes ownScope skip the second statement,
// and start() takes the first statement's ended scope. The second
// statement's upload is never claimed (AddClaimed into an ended scope is
// ignored) and its stale picture is never deleted (DeleteUnreferenced
// refuses with ErrScopeEnded, only a warning). Before e259b6a start()
// made a fresh scope for each statement.
func TestRTOwnedReusedHandleKeepsEndedScope(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"Create then Update", "Model then Update twice"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
				ctx := t.Context()
				ch1, err := a.pics.Save(ctx, upload("one"))
				require.NoError(t, err)
				u := User{Name: "ada", Picture: ch1.New}
				var q *gorm.DB
				switch how {
				case "Create then Update":
					q = a.db.WithContext(ctx).Create(&u)
					require.NoError(t, q.Error)
					q = q.Model(&u)
				case "Model then Update twice":
					require.NoError(t, a.db.WithContext(ctx).Create(&u).Error)
					ch0, err := a.pics.Save(ctx, upload("zero"))
					require.NoError(t, err)
					q = a.db.WithContext(ctx).Model(&User{ID: u.ID})
					require.NoError(t, q.Update("picture", ch0.New).Error)
					require.ElementsMatch(t, []string{ch0.New}, a.files(t))
					ch1 = ch0
				}
				ch2, err := a.pics.Save(ctx, upload("two"))
				require.NoError(t, err)
				require.NoError(t, q.Update("picture", ch2.New).Error)
				require.Equal(t, ch2.New, a.user(t, u.ID).Picture)
				assert.ElementsMatch(t, []string{ch2.New}, a.files(t),
					"the replaced picture %s should go after the commit", ch1.New)
				assert.Nil(t, a.pics.Claim(ch2.New),
					"the upload the committed row took should be finished, not left pending")
			})
		})
	}
}

// The same reused handle, for a statement whose associations gorm saves:
// the second statement's context is the caller's (no scope), and its
// association statements run in gorm's transaction, so the plugin refuses
// them with ErrNoScope and the whole Create fails, though a fresh handle
// succeeds.
func TestRTOwnedReusedHandleAssociationsRefused(t *testing.T) {
	t.Parallel()
	forEachDB(t, gormfield.Options{}, gorm.Config{}, func(t *testing.T, a *app) {
		ctx := t.Context()
		res := a.db.WithContext(ctx).Create(&User{Name: "ada"})
		require.NoError(t, res.Error)
		img, err := a.images.Save(ctx, upload("img"))
		require.NoError(t, err)
		bob := User{Name: "bob", Messages: []Message{{Image: img.New}}}
		err = res.Create(&bob).Error
		assert.NoError(t, err, "a second statement on a reused handle, with associations")
		assert.NotErrorIs(t, err, gormfield.ErrNoScope)
	})
}
