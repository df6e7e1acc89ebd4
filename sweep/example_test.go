package sweep_test

import (
	"context"
	"errors"
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

// A guard over the whole plan: here, no sweep may delete more than half of
// the QR codes at once. The plan is refused, and nothing is deleted.
func ExampleOptions_approve() {
	fsys := afero.NewMemMapFs()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for name, age := range map[string]int{"qr_codes/1/a.png": 10, "qr_codes/2/b.png": 9, "qr_codes/3/c.png": 1} {
		afero.WriteFile(fsys, name, []byte("png"), 0o644)
		mt := now.AddDate(0, 0, -age)
		fsys.Chtimes(name, mt, mt)
	}
	errTooMany := errors.New("more than half of the QR codes")
	s := sweep.New(fsys, sweep.Options{
		Rules: []sweep.Rule{{Glob: "qr_codes/**", MaxAge: 7 * 24 * time.Hour}},
		Now:   func() time.Time { return now },
		Approve: func(_ context.Context, paths []string) error {
			fmt.Println("plan:", paths)
			if 2*len(paths) > 3 {
				return errTooMany
			}
			return nil
		},
	})
	rep, err := s.Sweep(context.Background())
	fmt.Println(errors.Is(err, errTooMany), "deleted", rep.Deleted.Files, "kept refused", rep.Kept[sweep.KeptRefused].Files)
	// Output:
	// plan: [qr_codes/1/a.png qr_codes/2/b.png]
	// true deleted 0 kept refused 2
}
