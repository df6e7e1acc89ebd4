package filefield_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/spf13/afero"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield"
)

var pngBytes = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR example")

func count(fsys afero.Fs, dir string) int {
	n := 0
	entries, _ := afero.ReadDir(fsys, dir)
	for range entries {
		n++
	}
	return n
}

func ExampleField_Save() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})

	ch, err := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "../../me.PNG"})
	if err != nil {
		log.Fatal(err)
	}
	defer ch.Rollback(ctx) // does nothing once committed
	// ... INSERT the row with ch.New, commit the transaction ...
	ch.Commit(ctx)

	fmt.Println(filepath.Dir(ch.New), filepath.Ext(ch.New), len(filepath.Base(ch.New)), ch.ContentType)
	// Output: profile_pics .png 36 image/png
}

func ExampleField_Replace_commit() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})
	first, _ := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "a.png"})

	ch, err := pics.Replace(ctx, first.New, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "b.png"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before commit:", count(fsys, "profile_pics"))
	// ... UPDATE the row to ch.New, commit the transaction ...
	res := ch.Commit(ctx)
	fmt.Println("after commit:", count(fsys, "profile_pics"), "deleted old:", res.Deleted[0] == first.New)
	// Output:
	// before commit: 2
	// after commit: 1 deleted old: true
}

func ExampleField_Replace_rollback() {
	ctx := context.Background()
	fsys := afero.NewMemMapFs()
	pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})
	first, _ := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "a.png"})

	ch, _ := pics.Replace(ctx, first.New, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "b.png"})
	// ... the UPDATE fails, the transaction rolls back ...
	res := ch.Rollback(ctx)
	_, err := fsys.Stat(first.New)
	fmt.Println("new file deleted:", res.Deleted[0] == ch.New, "old file kept:", err == nil)
	// Output: new file deleted: true old file kept: true
}

func ExampleWithTx() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", filepath.Join(dir, "app.db"))
	defer db.Close()
	db.Exec(`CREATE TABLE users (id INTEGER PRIMARY KEY, picture TEXT); INSERT INTO users VALUES (1, '')`)

	fsys := afero.NewMemMapFs()
	pics := filefield.New("profile_pics", fsys, filefield.Options{Dir: "profile_pics"})
	for range 3 {
		_, err := filefield.WithTx(ctx, db, nil, func(ctx context.Context, tx *sql.Tx) error {
			var old string
			if err := tx.QueryRow(`SELECT picture FROM users WHERE id = 1`).Scan(&old); err != nil {
				return err
			}
			ch, err := pics.Replace(ctx, old, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "me.png"})
			if err != nil {
				return err
			}
			_, err = tx.Exec(`UPDATE users SET picture = ? WHERE id = 1`, ch.New)
			return err
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	var current string
	db.QueryRow(`SELECT picture FROM users WHERE id = 1`).Scan(&current)
	_, err := fsys.Stat(current)
	fmt.Println("files:", count(fsys, "profile_pics"), "row points at it:", err == nil)
	// Output: files: 1 row points at it: true
}
