package orphan

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// A plan made from an inventory report is re-checked against live storage
// by Apply even on a finder whose re-check is turned off: an object
// rewritten after the report (another size, still old) is kept as
// changed, on the finder that made the plan and on another finder given
// the plan as JSON. The report has no ETag column, so nothing else (no
// conditional delete) would keep the object.
func TestListedPlanIsRecheckedEvenWithRecheckOff(t *testing.T) {
	t.Parallel()
	srv := s3test.Shared(t)
	for _, viaJSON := range []bool{false, true} {
		fsys := srv.Fs(t, "media")
		old := time.Now().Add(-10 * 24 * time.Hour)
		for _, p := range []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg"} {
			storagetest.WriteFile(t, fsys, p, []byte(p), old)
		}
		var entries []storage.Entry
		if err := storage.List(t.Context(), fsys, storage.ListOptions{}, func(e storage.Entry) error { entries = append(entries, e); return nil }); err != nil {
			t.Fatal(err)
		}
		m, err := inventorytest.Write(afero.NewOsFs(), t.TempDir(), inventorytest.Report{
			SourceBucket: fsys.Bucket, Created: time.Now().Add(-time.Hour), Schema: "Bucket, Key, Size, LastModifiedDate",
			Objects: inventorytest.Objects("media/", entries),
		})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := inventory.Open(t.Context(), m, fsys.Fs, inventory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		// c.jpg is rewritten after the report, and is still old.
		if _, err := srv.Client(nil).PutObject(t.Context(), &s3.PutObjectInput{Bucket: &fsys.Bucket, Key: aws.String("media/pics/c.jpg"), Body: bytes.NewReader([]byte("a new picture"))}); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Chtimes("pics/c.jpg", old.Add(time.Hour), old.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}

		opts := Options{MaxFraction: -1}
		f := New(fsys, Paths("pics/a.jpg"), Options{MaxFraction: -1, Listing: rep})
		f.guards.recheck = false
		plan, err := f.Find(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Orphans) != 2 || plan.Listed == nil {
			t.Fatalf("plan: %+v", plan)
		}
		applier := f
		if viaJSON {
			b, _ := json.Marshal(plan)
			plan = &Plan{}
			if err := json.Unmarshal(b, plan); err != nil {
				t.Fatal(err)
			}
			applier = New(fsys, Paths("pics/a.jpg"), opts)
			applier.guards.recheck = false
		}
		r, err := applier.Apply(t.Context(), plan)
		if err != nil {
			t.Fatal(err)
		}
		if r.Deleted.Files != 1 || r.Kept[KeptChanged].Files != 1 {
			t.Errorf("via JSON %v: deleted %d, kept as changed %d; want 1 and 1", viaJSON, r.Deleted.Files, r.Kept[KeptChanged].Files)
		}
		if got := storagetest.Files(t, fsys); len(got) != 2 || got[1] != "pics/c.jpg" {
			t.Errorf("via JSON %v: left %v, want a.jpg and the rewritten c.jpg", viaJSON, got)
		}
	}
}
