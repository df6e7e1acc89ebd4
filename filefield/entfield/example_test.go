package entfield_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/spf13/afero"
	_ "modernc.org/sqlite" // registers "sqlite"; ent's dialect name is "sqlite3"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/entfield"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/migrate"
	"github.com/mediaclean/mediaclean/filefield/entfield/internal/entdemo/user"
)

// A handler that replaces a user's picture holds no file code: it stores
// the upload and updates the row. The old picture is still there until
// the transaction commits, and gone after.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:example?mode=memory&_pragma=foreign_keys(1)")
	if err != nil {
		fmt.Println(err)
		return
	}
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	drv := entsql.OpenDB(dialect.SQLite, db)
	client := entdemo.NewClient(entdemo.Driver(drv))
	defer client.Close()
	if err := client.Schema.Create(ctx); err != nil {
		fmt.Println(err)
		return
	}

	// Once, where the client is made: which field holds which files.
	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	files := entfield.New(drv, entfield.Options{})
	client.User.Use(files.Track(pics, migrate.UsersTable, user.FieldPicture))

	// Sign-up: store the upload, create the row.
	ch, err := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "me.png"})
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := client.User.Create().SetName("ada").SetPicture(ch.New).Save(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The handler: a new picture, in a transaction.
	_, err = entfield.WithTx(ctx, client, func(ctx context.Context, tx *entdemo.Tx) error {
		ch, err := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "new.png"})
		if err != nil {
			return err
		}
		if err := tx.User.UpdateOneID(u.ID).SetPicture(ch.New).Exec(ctx); err != nil {
			return err
		}
		there, _ := afero.Exists(fsys, u.Picture)
		fmt.Println("old picture before the commit:", there)
		return nil
	})
	there, _ := afero.Exists(fsys, u.Picture)
	fmt.Println("old picture after the commit:", there, err)
	now := client.User.GetX(ctx, u.ID).Picture
	names, _ := afero.ReadDir(fsys, "pics")
	fmt.Println("files:", len(names), "the row's:", "pics/"+names[0].Name() == now)
	// Output:
	// old picture before the commit: true
	// old picture after the commit: false <nil>
	// files: 1 the row's: true
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 16)...)
