package gormfield_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libtnb/sqlite"
	"github.com/spf13/afero"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// A handler that replaces a user's picture holds no file code: it stores
// the upload and saves the row.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	type Profile struct {
		ID      uint
		Picture string
	}
	_ = db.AutoMigrate(&Profile{})

	fsys := afero.NewMemMapFs()
	pics := filefield.New("pics", fsys, filefield.Options{Dir: "pics"})
	if err := db.Use(gormfield.New(gormfield.Options{}).Track(&Profile{}, "Picture", pics)); err != nil {
		fmt.Println(err)
		return
	}

	p := Profile{}
	for range 3 { // create, then replace twice
		ch, err := pics.Save(ctx, filefield.Upload{Body: bytes.NewReader(pngBytes), Name: "me.png"})
		if err != nil {
			fmt.Println(err)
			return
		}
		p.Picture = ch.New
		if err := db.WithContext(ctx).Save(&p).Error; err != nil {
			fmt.Println(err)
			return
		}
	}
	names, _ := afero.ReadDir(fsys, "pics")
	fmt.Println("files:", len(names), "the row's:", "pics/"+names[0].Name() == p.Picture)
	// Output: files: 1 the row's: true
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 16)...)
