package sweep_test

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/sweep"
)

// The seed's cleanup_media --qr-age 7: QR codes older than 7 days go.
func ExampleSweeper_Sweep() {
	fsys := afero.NewMemMapFs()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for name, age := range map[string]int{"qr_codes/1/a.png": 10, "qr_codes/1/b.png": 1, "profile_pics/c.jpg": 90} {
		afero.WriteFile(fsys, name, []byte("png"), 0o644)
		mt := now.AddDate(0, 0, -age)
		fsys.Chtimes(name, mt, mt)
	}
	s := sweep.New(fsys, sweep.Options{
		Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * 24 * time.Hour}},
		Now:   func() time.Time { return now },
	})
	rep, err := s.Sweep(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("scanned", rep.Scanned.Files, "matched", rep.Matched.Files, "deleted", rep.Deleted.Files, "kept young", rep.Kept[sweep.KeptYoung].Files)
	// Output: scanned 3 matched 2 deleted 1 kept young 1
}
