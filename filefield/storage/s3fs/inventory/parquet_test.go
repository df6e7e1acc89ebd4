package inventory_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// awkward are keys as a Parquet report holds them, not URL-encoded: a
// plus sign is a plus sign, a '%' a '%'.
var awkward = []inventorytest.Object{
	{Key: "media/a b.jpg", Size: 1, ModTime: created.Add(-time.Hour), ETag: `"e1"`},
	{Key: "media/c+d.jpg", Size: 2, ModTime: created.Add(-2 * time.Hour), ETag: `"e2"`},
	{Key: "media/100%.jpg", Size: 3, ModTime: created.Add(-3 * time.Hour), ETag: `"e3"`},
	{Key: "media/café/x?y#z.jpg", Size: 4, ModTime: created.Add(-4*time.Hour + 123*time.Millisecond), ETag: `"e4-2"`},
	{Key: "media/", Size: 0, ModTime: created},                             // a folder marker
	{Key: "media/.mediaclean-quarantine/q.jpg", Size: 5, ModTime: created}, // the quarantine
	{Key: "other/x.jpg", Size: 6, ModTime: created},                        // outside the prefix
}

func sameEntries(got []storage.Entry, want []inventorytest.Object, prefix string) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d entries, want %d: %v", len(got), len(want), got)
	}
	for i, e := range got {
		o := want[i]
		if prefix+e.Path != o.Key || e.Size != o.Size || !e.ModTime.Equal(o.ModTime) || e.ETag != o.ETag || e.ModTime.Location() != time.UTC {
			return fmt.Errorf("entry %d = %+v, want %+v", i, e, o)
		}
	}
	return nil
}

// TestParquetReport lists a Parquet report as its CSV twin lists: the same
// entries in the same order, keys read as they are (not URL-decoded),
// folder markers, the quarantine and other prefixes left out, Dir, From
// and To honoured; with AWS's columns for all versions, only current
// versions that are not delete markers count. The temporary copies are
// gone afterwards.
func TestParquetReport(t *testing.T) {
	objs := append(objects(40), awkward...)
	for _, schema := range []string{"", "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded"} {
		fsys := afero.NewMemMapFs()
		report := inventorytest.Report{SourceBucket: "b", Created: created, Schema: schema, DataFiles: 3, Objects: objs}
		csvManifest, err := inventorytest.Write(fsys, "/csv", report)
		if err != nil {
			t.Fatal(err)
		}
		report.Parquet = true
		pqManifest, err := inventorytest.Write(fsys, "/pq", report)
		if err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		for _, opts := range []storage.ListOptions{{}, {Dir: "café"}, {From: "d1/", To: "d3/f00030.jpg"}} {
			var lists [2][]storage.Entry
			for i, m := range []string{csvManifest, pqManifest} {
				r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{TempDir: tmp})
				if err != nil {
					t.Fatal(err)
				}
				if lists[i], err = list(t, r, opts); err != nil {
					t.Fatalf("%s: %v", m, err)
				}
			}
			if !slices.EqualFunc(lists[0], lists[1], func(a, b storage.Entry) bool {
				return a.Path == b.Path && a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.ETag == b.ETag
			}) {
				t.Errorf("schema %q, %+v:\nCSV     %v\nParquet %v", schema, opts, lists[0], lists[1])
			}
			if opts.Dir == "" && opts.To == "" {
				if err := sameEntries(lists[1], append(objects(40), awkward[:4]...), "media/"); err != nil {
					t.Errorf("schema %q: %v", schema, err)
				}
			}
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("left in TempDir: %v", left)
		}
	}

	// The fixture's data files have several row groups each, so the
	// listing above read across their boundaries.
	files, err := inventorytest.Build("", inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		if strings.HasSuffix(p, ".parquet") {
			pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil || len(pf.RowGroups()) < 3 {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}

	// Old versions and delete markers are not listed.
	fsys := afero.NewMemMapFs()
	m, err := inventorytest.Write(fsys, "/pq", inventorytest.Report{
		SourceBucket: "b", Created: created, Parquet: true, Objects: objects(10),
		Schema: "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
		ParquetRow: func(i int, row map[string]any) {
			switch i {
			case 2:
				row["is_latest"] = false
			case 4:
				row["is_delete_marker"], row["size"] = true, nil
			case 6:
				row["is_latest"] = nil
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	want := slices.Delete(slices.Delete(slices.Delete(objects(10), 6, 7), 4, 5), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntries(got, want, "media/"); err != nil {
		t.Error(err)
	}
}

// TestParquetTimestampUnits: last_modified_date is read in the unit its
// column declares, milliseconds as AWS writes it, or micro- or
// nanoseconds.
func TestParquetTimestampUnits(t *testing.T) {
	objs := objects(5)
	objs[1].ModTime = created.Add(-1234567 * time.Microsecond)
	objs[2].ModTime = created.Add(-1234567891 * time.Nanosecond)
	for _, unit := range []parquet.TimeUnit{parquet.Microsecond, parquet.Nanosecond} {
		fsys := afero.NewMemMapFs()
		m, err := inventorytest.Write(fsys, "/pq", inventorytest.Report{
			SourceBucket: "b", Created: created, Parquet: true, Objects: objs,
			ParquetColumns: func(g parquet.Group) { g["last_modified_date"] = parquet.Optional(parquet.Timestamp(unit)) },
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := list(t, r, storage.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(objs)
		for i := range want {
			want[i].ModTime = want[i].ModTime.Truncate(unit.Duration())
		}
		if err := sameEntries(got, want, "media/"); err != nil {
			t.Errorf("%v: %v", unit, err)
		}
	}
}

// TestHostileParquetRefused: every Parquet report below is refused with an
// error wrapping ErrInvalid; where the data file does not match the
// manifest, before a single entry is handed on.
func TestHostileParquetRefused(t *testing.T) {
	row := func(at int, edit func(map[string]any)) func(*inventorytest.Report) {
		return func(r *inventorytest.Report) {
			r.ParquetRow = func(i int, row map[string]any) {
				if i == at {
					edit(row)
				}
			}
		}
	}
	columns := func(edit func(parquet.Group)) func(*inventorytest.Report) {
		return func(r *inventorytest.Report) { r.ParquetColumns = edit }
	}
	dataOf := func(files inventorytest.Files) string { return files.DataFile() }
	resign := func(files inventorytest.Files, m string) { files.Resign([]byte(m)) }
	// replace puts body in place of the data file and fixes the manifest's
	// size and MD5, so that only the content is wrong.
	replace := func(files inventorytest.Files, body []byte) {
		if err := files.Replace(dataOf(files), body); err != nil {
			panic(err)
		}
	}
	cases := []struct {
		name    string
		report  func(*inventorytest.Report)
		files   func(inventorytest.Files)
		noEntry bool // refused before any entry is handed on
	}{
		{name: "a row of another bucket", report: row(3, func(r map[string]any) { r["bucket"] = "other" })},
		{name: "dot-dot key", report: row(3, func(r map[string]any) { r["key"] = "media/d1/../../secret.jpg" })},
		{name: "key invalid as a stored path", report: row(3, func(r map[string]any) { r["key"] = "media/d1/.htaccess" })},
		{name: "control character in key", report: row(3, func(r map[string]any) { r["key"] = "media/d1/a\nb.jpg" })},
		{name: "key twice", report: row(3, func(r map[string]any) { r["key"] = "media/d0/f00000.jpg" })},
		{name: "null size", report: row(3, func(r map[string]any) { r["size"] = nil })},
		{name: "negative size", report: row(3, func(r map[string]any) { r["size"] = int64(-1) })},
		{name: "null time", report: row(3, func(r map[string]any) { r["last_modified_date"] = nil })},
		{name: "no key column", report: columns(func(g parquet.Group) { delete(g, "key") }), noEntry: true},
		{name: "no size column", report: columns(func(g parquet.Group) { delete(g, "size") }), noEntry: true},
		{name: "size as text", report: func(r *inventorytest.Report) {
			r.ParquetColumns = func(g parquet.Group) { g["size"] = parquet.Optional(parquet.String()) }
			r.ParquetRow = func(_ int, row map[string]any) { row["size"] = fmt.Sprint(row["size"]) }
		}, noEntry: true},
		{name: "time without a timestamp type", report: func(r *inventorytest.Report) {
			r.ParquetColumns = func(g parquet.Group) { g["last_modified_date"] = parquet.Optional(parquet.Int(64)) }
			r.ParquetRow = func(_ int, row map[string]any) {
				row["last_modified_date"] = row["last_modified_date"].(time.Time).UnixMilli()
			}
		}, noEntry: true},
		{name: "repeated key column", report: func(r *inventorytest.Report) {
			r.ParquetColumns = func(g parquet.Group) { g["key"] = parquet.Repeated(parquet.String()) }
			r.ParquetRow = func(_ int, row map[string]any) { row["key"] = []string{row["key"].(string)} }
		}, noEntry: true},
		{name: "data file MD5 wrong", noEntry: true, files: func(f inventorytest.Files) {
			resign(f, strings.Replace(string(f[f.ManifestPath()]), inventorytest.Checksum(f[dataOf(f)]), strings.Repeat("0", 32), 1))
		}},
		{name: "data file longer than the manifest says", noEntry: true, files: func(f inventorytest.Files) {
			f[dataOf(f)] = append(f[dataOf(f)], 0)
		}},
		{name: "data file shorter than the manifest says", noEntry: true, files: func(f inventorytest.Files) {
			f[dataOf(f)] = f[dataOf(f)][:len(f[dataOf(f)])-1]
		}},
		{name: "a byte changed", noEntry: true, files: func(f inventorytest.Files) {
			b := slices.Clone(f[dataOf(f)])
			b[len(b)/2] ^= 0xff
			f[dataOf(f)] = b
		}},
		{name: "truncated, checksums fixed", noEntry: true, files: func(f inventorytest.Files) {
			replace(f, f[dataOf(f)][:len(f[dataOf(f)])/2])
		}},
		{name: "not Parquet, checksums fixed", noEntry: true, files: func(f inventorytest.Files) {
			replace(f, []byte("PAR1 but not really PAR1"))
		}},
		{name: "empty, checksums fixed", noEntry: true, files: func(f inventorytest.Files) { replace(f, nil) }},
		{name: "pages damaged, footer intact, checksums fixed", files: func(f inventorytest.Files) {
			b := slices.Clone(f[dataOf(f)])
			for i := 4; i < len(b)/3; i++ {
				b[i] ^= 0x5a
			}
			replace(f, b)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objects(20)}
			if tc.report != nil {
				tc.report(&r)
			}
			files, err := inventorytest.Build("inventory/", r)
			if err != nil {
				t.Fatal(err)
			}
			if tc.files != nil {
				tc.files(files)
			}
			fsys := afero.NewMemMapFs()
			for p, b := range files {
				afero.WriteFile(fsys, "/inv/"+p, b, 0o644)
			}
			tmp := t.TempDir()
			rep, err := inventory.OpenFs(t.Context(), fsys, "/inv/"+files.ManifestPath(), target("b", "media/"), inventory.Options{TempDir: tmp})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := list(t, rep, storage.ListOptions{})
			if err == nil {
				t.Fatal("the report was not refused")
			}
			if !errors.Is(err, inventory.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			if tc.noEntry && len(got) > 0 {
				t.Errorf("%d entries handed on before the refusal", len(got))
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("left in TempDir: %v", left)
			}
			t.Log(err)
		})
	}
}

// TestParquetTempDir: a TempDir that cannot hold the copy fails the
// listing with the reason; nothing is listed.
func TestParquetTempDir(t *testing.T) {
	fsys := afero.NewMemMapFs()
	m, err := inventorytest.Write(fsys, "/pq", inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objects(5)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{TempDir: "/nonexistent/dir"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	if !errors.Is(err, os.ErrNotExist) || len(got) > 0 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
}

// TestParquetOnS3 reads a Parquet report from a bucket of the test server
// by s3:// URL, as the CSV one.
func TestParquetOnS3(t *testing.T) {
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media")
	dest := srv.NewBucket(t)
	objs := append(objects(30), awkward[:4]...)
	key, err := inventorytest.Put(t.Context(), srv.Client(nil), dest, "inv/", inventorytest.Report{SourceBucket: fsys.Bucket, Created: created, DataFiles: 2, Parquet: true, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inventory.Open(t.Context(), "s3://"+dest+"/"+key, fsys.Fs, inventory.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameEntries(got, objs, "media/"); err != nil {
		t.Error(err)
	}
}

// listDataFile lists a report of files whose data file is body, with a
// manifest that matches it, as an attacker who controls the report bucket
// could make it. Whatever body is, the listing must refuse it with
// ErrInvalid or list valid paths only; listDataFile fails t otherwise.
func listDataFile(t *testing.T, files inventorytest.Files, body []byte) ([]storage.Entry, error) {
	t.Helper()
	files = maps.Clone(files)
	if err := files.Replace(files.DataFile(), body); err != nil {
		t.Fatal(err)
	}
	fsys := afero.NewMemMapFs()
	for p, b := range files {
		afero.WriteFile(fsys, "/inv/"+p, b, 0o644)
	}
	r, err := inventory.OpenFs(t.Context(), fsys, "/inv/"+files.ManifestPath(), target("b", "media/"), inventory.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	if err != nil && !errors.Is(err, inventory.ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	for _, e := range got {
		if storage.ValidPath(e.Path) != nil {
			t.Fatalf("listed %q", e.Path)
		}
	}
	return got, err
}

// parquetReport is a small Parquet report in one data file.
func parquetReport(t testing.TB) inventorytest.Files {
	files, err := inventorytest.Build("", inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objects(20)})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// FuzzParquetDataFile hands the reader any bytes as a data file whose
// manifest matches them (listDataFile): it must refuse or list, never
// panic, and list only valid paths.
func FuzzParquetDataFile(f *testing.F) {
	files := parquetReport(f)
	valid := files[files.DataFile()]
	f.Add(valid)
	f.Add(valid[:len(valid)-8])
	f.Add(append(slices.Clone(valid[:4]), valid[len(valid)/2:]...))
	f.Fuzz(func(t *testing.T, body []byte) {
		listDataFile(t, files, body)
	})
}

// TestParquetMutations: 2,000 data files, each a valid one with up to
// four bytes changed and a manifest that matches it, are each refused
// with ErrInvalid or listed with valid paths only (listDataFile), quickly:
// a damaged footer length once had the decoder allocate what it said (39
// s for one file here).
func TestParquetMutations(t *testing.T) {
	files := parquetReport(t)
	valid := files[files.DataFile()]
	r := rand.New(rand.NewPCG(1, 2))
	refused := 0
	for i := range 2000 {
		body := slices.Clone(valid)
		for range 1 + r.IntN(4) {
			body[r.IntN(len(body))] = byte(r.IntN(256))
		}
		start := time.Now()
		if _, err := listDataFile(t, files, body); err != nil {
			refused++
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("mutation %d took %v", i, d)
		}
	}
	if refused < 1000 {
		t.Errorf("only %d of 2000 damaged files refused", refused)
	}
	t.Logf("%d of 2000 refused", refused)
}
