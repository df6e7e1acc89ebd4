package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// target is an Fs that is never asked anything: the report is read from
// disk, and only its bucket and prefix count.
func target(bucket, prefix string) *s3fs.Fs {
	return s3fs.New(nil, bucket, s3fs.Options{Prefix: prefix})
}

func list(t *testing.T, r *inventory.Report, opts storage.ListOptions) ([]storage.Entry, error) {
	t.Helper()
	var out []storage.Entry
	err := r.ListFiles(t.Context(), opts, func(e storage.Entry) error { out = append(out, e); return nil })
	return out, err
}

// TestReadsTheReport reads a report written by hand in AWS's format (not
// by inventorytest): the manifest's extra columns, the data file found
// under CONFIG/data whatever its key's destination prefix, keys decoded as
// AWS encodes them ("+" and "%20" a space, "%2B" a plus sign, UTF-8
// escapes), folder markers, the quarantine area and other prefixes left
// out, and a key outside the prefix not even validated.
func TestReadsTheReport(t *testing.T) {
	manifest := filepath.Join("testdata", "media-src", "daily", "2026-11-30T01-00Z", "manifest.json")
	r, err := inventory.Open(t.Context(), manifest, target("media-src", "uploads"), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC); !r.CreatedAt().Equal(want) {
		t.Errorf("CreatedAt = %v, want %v", r.CreatedAt(), want)
	}
	got, err := list(t, r, storage.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339Nano, s); return tm }
	want := []storage.Entry{
		{Path: "profile_pics/a.jpg", Size: 1234, ModTime: at("2026-11-20T10:00:00Z"), ETag: `"5d41402abc4b2a76b9719d911017c592"`},
		{Path: "profile_pics/my holiday photo.jpg", Size: 20, ModTime: at("2026-11-21T10:00:00Z"), ETag: `"7d793037a0760186574b0282f2f435e7"`},
		{Path: "profile_pics/one two.jpg", Size: 21, ModTime: at("2026-11-21T11:00:00Z"), ETag: `"9e107d9d372bb6826bd81d3542a419d6"`},
		{Path: "profile_pics/c++.png", Size: 22, ModTime: at("2026-11-21T12:00:00.123Z"), ETag: `"e4d909c290d0fb1ca068ffaddf22cbd0"`},
		{Path: "forum/café.gif", Size: 3000000, ModTime: at("2026-11-22T00:00:00Z"), ETag: `"a3cca2b2aa1e3b5b3b5aad99a8529074-2"`},
	}
	if !slices.EqualFunc(got, want, func(a, b storage.Entry) bool {
		return a.Path == b.Path && a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.ETag == b.ETag && a.Type == 0
	}) {
		t.Errorf("listed\n%v\nwant\n%v", got, want)
	}

	// Dir, From and To narrow it as storage.ListOptions say.
	got, _ = list(t, r, storage.ListOptions{Dir: "forum"})
	if len(got) != 1 || got[0].Path != "forum/café.gif" {
		t.Errorf("Dir forum: %v", got)
	}
	got, _ = list(t, r, storage.ListOptions{From: "profile_pics/b", To: "profile_pics/my holiday photo.jpg"})
	if len(got) != 2 || got[0].Path != "profile_pics/my holiday photo.jpg" || got[1].Path != "profile_pics/c++.png" {
		t.Errorf("From..To: %v", got)
	}

	// Through storage.List, a Report is a Lister like any backend.
	n := 0
	err = storage.List(t.Context(), listingFs{afero.NewMemMapFs(), r}, storage.ListOptions{}, func(storage.Entry) error { n++; return nil })
	if err != nil || n != 5 {
		t.Errorf("storage.List: %d entries, %v", n, err)
	}
}

type listingFs struct {
	afero.Fs
	*inventory.Report
}

func objects(n int) []inventorytest.Object {
	var out []inventorytest.Object
	for i := range n {
		out = append(out, inventorytest.Object{Key: fmt.Sprintf("media/d%d/f%05d.jpg", i%7, i), Size: int64(i), ModTime: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), ETag: fmt.Sprintf(`"%032x"`, i)})
	}
	return out
}

var created = time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)

// TestRoundTrip: what inventorytest writes, spread over data files, lists
// back as the objects under the prefix.
func TestRoundTrip(t *testing.T) {
	fsys := afero.NewMemMapFs()
	objs := append(objects(50), inventorytest.Object{Key: "other/x.jpg", Size: 1, ModTime: created})
	m, err := inventorytest.Write(fsys, "/inv", inventorytest.Report{SourceBucket: "b", Created: created, DataFiles: 3, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	if err != nil || len(got) != 50 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	for i, e := range got {
		o := objs[i]
		if "media/"+e.Path != o.Key || e.Size != o.Size || !e.ModTime.Equal(o.ModTime) || e.ETag != o.ETag {
			t.Fatalf("entry %d = %+v, want %+v", i, e, o)
		}
	}
}

// TestNoDuplicateCheck: by default a key listed twice refuses the report;
// with Options.NoDuplicateCheck the listing passes both entries on, for a
// consumer that refuses them itself, and holds nothing per key.
func TestNoDuplicateCheck(t *testing.T) {
	fsys := afero.NewMemMapFs()
	objs := objects(20)
	objs = append(objs, objs[3])
	m, err := inventorytest.Write(fsys, "/inv", inventorytest.Report{SourceBucket: "b", Created: created, DataFiles: 2, Objects: objs})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []bool{false, true} {
		r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{NoDuplicateCheck: off})
		if err != nil {
			t.Fatal(err)
		}
		got, err := list(t, r, storage.ListOptions{})
		switch {
		case !off && !errors.Is(err, inventory.ErrInvalid):
			t.Fatalf("with the check: %d entries, %v", len(got), err)
		case off && (err != nil || len(got) != 21):
			t.Fatalf("without the check: %d entries, %v", len(got), err)
		}
	}
}

// TestHostileReportsRefused: every report below is refused, with an
// error wrapping ErrInvalid, whether by Open or by the listing; a listing
// that fails lists no error-free result.
func TestHostileReportsRefused(t *testing.T) {
	base := func() inventorytest.Report {
		return inventorytest.Report{SourceBucket: "b", Created: created, Objects: objects(20)}
	}
	row := func(at int, edit func([]string) []string) func(inventorytest.Report) inventorytest.Report {
		return func(r inventorytest.Report) inventorytest.Report {
			r.Row = func(i int, f []string) []string {
				if i == at {
					return edit(f)
				}
				return f
			}
			return r
		}
	}
	setKey := func(k string) func([]string) []string {
		return func(f []string) []string { f[1] = k; return f }
	}
	type edit func(files inventorytest.Files)
	manifestOf := func(files inventorytest.Files) string { return files.ManifestPath() }
	dataOf := func(files inventorytest.Files) string { return files.DataFile() }
	resign := func(files inventorytest.Files, m string) { files.Resign([]byte(m)) }
	// regzip replaces the data file and fixes the manifest's size and MD5,
	// so that only the content is wrong.
	regzip := func(files inventorytest.Files, body []byte) {
		if err := files.Replace(dataOf(files), body); err != nil {
			panic(err)
		}
	}
	cases := []struct {
		name   string
		report func(inventorytest.Report) inventorytest.Report
		files  edit
		target *s3fs.Fs
	}{
		{name: "manifest edited, checksum not", files: func(f inventorytest.Files) {
			f[manifestOf(f)] = bytes.Replace(f[manifestOf(f)], []byte(`"b"`), []byte(`"c"`), 1)
		}},
		{name: "no manifest.checksum", files: func(f inventorytest.Files) {
			delete(f, strings.TrimSuffix(manifestOf(f), ".json")+".checksum")
		}},
		{name: "another bucket", target: target("other", "media/")},
		{name: "a row of another bucket", report: row(3, func(f []string) []string { f[0] = "other"; return f })},
		{name: "dot-dot key", report: row(3, setKey("media/d1/../../secret.jpg"))},
		{name: "encoded dot-dot key", report: row(3, setKey("media/d1/%2E%2E/x.jpg"))},
		{name: "key invalid as a stored path", report: row(3, setKey("media/d1/.htaccess"))},
		{name: "control character in key", report: row(3, setKey("media/d1/a%0Ab.jpg"))},
		{name: "key not URL-encoded", report: row(3, setKey("media/d1/100%.jpg"))},
		{name: "key twice", report: row(3, setKey("media/d0/f00000.jpg"))},
		{name: "a row longer than 64 KiB", report: row(3, setKey("media/"+strings.Repeat("a", 70_000)))},
		{name: "size not a number", report: row(3, func(f []string) []string { f[2] = "12kB"; return f })},
		{name: "negative size", report: row(3, func(f []string) []string { f[2] = "-1"; return f })},
		{name: "bad time", report: row(3, func(f []string) []string { f[3] = "yesterday"; return f })},
		{name: "a column missing in a row", report: row(3, func(f []string) []string { return f[:4] })},
		{name: "a column missing in the schema", report: func(r inventorytest.Report) inventorytest.Report {
			r.Schema = "Bucket, Key, LastModifiedDate, ETag"
			return r
		}},
		{name: "a column twice in the schema", report: func(r inventorytest.Report) inventorytest.Report {
			r.Schema = "Bucket, Key, Size, Size, LastModifiedDate"
			return r
		}},
		{name: "data file MD5 wrong", files: func(f inventorytest.Files) {
			m := strings.Replace(string(f[manifestOf(f)]), inventorytest.Checksum(f[dataOf(f)]), strings.Repeat("0", 32), 1)
			resign(f, m)
		}},
		{name: "data file size wrong", files: func(f inventorytest.Files) {
			m := strings.Replace(string(f[manifestOf(f)]), fmt.Sprintf(`"size": %d`, len(f[dataOf(f)])), `"size": 1`, 1)
			resign(f, m)
		}},
		{name: "data file replaced", files: func(f inventorytest.Files) {
			b := bytes.Clone(f[dataOf(f)])
			b[len(b)/2] ^= 0xff
			f[dataOf(f)] = b
		}},
		{name: "truncated gzip, checksums fixed", files: func(f inventorytest.Files) {
			b := f[dataOf(f)]
			regzip(f, b[:len(b)/2])
		}},
		{name: "not gzip, checksums fixed", files: func(f inventorytest.Files) {
			regzip(f, []byte(`"b","media/x.jpg","1","2026-01-01T00:00:00.000Z","e"`+"\n"))
		}},
		{name: "data file missing", files: func(f inventorytest.Files) { delete(f, dataOf(f)) }},
		{name: "data file key escapes the report", files: func(f inventorytest.Files) {
			m := strings.Replace(string(f[manifestOf(f)]), dataOf(f), "../../../etc/data/../passwd", 1)
			resign(f, m)
		}},
		{name: "CSV data in a Parquet report", files: func(f inventorytest.Files) {
			resign(f, strings.Replace(string(f[manifestOf(f)]), `"CSV"`, `"Parquet"`, 1))
		}},
		{name: "ORC", files: func(f inventorytest.Files) {
			resign(f, strings.Replace(string(f[manifestOf(f)]), `"CSV"`, `"ORC"`, 1))
		}},
		{name: "creationTimestamp not a number", files: func(f inventorytest.Files) {
			m := string(f[manifestOf(f)])
			i := strings.Index(m, `"creationTimestamp": "`) + len(`"creationTimestamp": "`)
			resign(f, m[:i]+"2026-11-30"+m[strings.Index(m[i:], `"`)+i:])
		}},
		{name: "manifest not JSON", files: func(f inventorytest.Files) { resign(f, "{") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			if tc.report != nil {
				r = tc.report(r)
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
			tg := tc.target
			if tg == nil {
				tg = target("b", "media/")
			}
			rep, err := inventory.OpenFs(t.Context(), fsys, "/inv/"+files.ManifestPath(), tg, inventory.Options{})
			if err == nil {
				_, err = list(t, rep, storage.ListOptions{})
			}
			if err == nil {
				t.Fatal("the report was not refused")
			}
			if !errors.Is(err, inventory.ErrInvalid) && !errors.Is(err, afero.ErrFileNotFound) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			t.Log(err)
		})
	}
}

// TestCancelledListing returns ctx.Err() unwrapped.
func TestCancelledListing(t *testing.T) {
	fsys := afero.NewMemMapFs()
	m, _ := inventorytest.Write(fsys, "/inv", inventorytest.Report{SourceBucket: "b", Created: created, Objects: objects(5000)})
	r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	err = r.ListFiles(ctx, storage.ListOptions{}, func(storage.Entry) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if err != context.Canceled {
		t.Fatalf("err = %v after %d entries", err, n)
	}
}

// TestOpenS3 reads a report from a bucket of the test server, by s3:// URL.
func TestOpenS3(t *testing.T) {
	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "media")
	dest := srv.NewBucket(t)
	key, err := inventorytest.Put(t.Context(), srv.Client(nil), dest, "inv/", inventorytest.Report{SourceBucket: fsys.Bucket, Created: created, DataFiles: 2, Objects: objects(30)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := inventory.Open(t.Context(), "s3://"+dest+"/"+key, fsys.Fs, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, r, storage.ListOptions{})
	if err != nil || len(got) != 30 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
}

// BenchmarkListFiles reads a report of 100,000 objects in 4 data files
// from memory, in CSV and in Parquet (each Parquet data file copied to a
// temporary file and checked before it is decoded): ns/op divided by
// 100,000 is the cost per object.
func BenchmarkListFiles(b *testing.B) {
	const n = 100_000
	objs := make([]inventorytest.Object, n)
	for i := range objs {
		objs[i] = inventorytest.Object{Key: fmt.Sprintf("media/profile_pics/%08x-%04d.jpg", i*2654435761, i%10000), Size: int64(i), ModTime: created.Add(-time.Duration(i) * time.Second), ETag: fmt.Sprintf(`"%032x"`, i)}
	}
	for _, format := range []string{"CSV", "Parquet"} {
		b.Run(format, func(b *testing.B) {
			fsys := afero.NewMemMapFs()
			m, err := inventorytest.Write(fsys, "/inv", inventorytest.Report{SourceBucket: "b", Created: created, DataFiles: 4, Objects: objs, Parquet: format == "Parquet"})
			if err != nil {
				b.Fatal(err)
			}
			r, err := inventory.OpenFs(b.Context(), fsys, m, target("b", "media/"), inventory.Options{TempDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				got := 0
				if err := r.ListFiles(b.Context(), storage.ListOptions{}, func(storage.Entry) error { got++; return nil }); err != nil || got != n {
					b.Fatal(got, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/n, "µs/object")
		})
	}
}
