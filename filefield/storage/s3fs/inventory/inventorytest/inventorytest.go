// Package inventorytest writes S3 Inventory reports in AWS's format (CSV
// and gzip, or Parquet, with manifest.json and manifest.checksum), for
// tests of code that reads them.
package inventorytest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
)

// DefaultSchema is the fileSchema of reports whose Schema is empty.
const DefaultSchema = "Bucket, Key, Size, LastModifiedDate, ETag"

// Object is one row of a report.
type Object struct {
	Key     string // the full key, prefix included
	Size    int64
	ModTime time.Time
	ETag    string // quoted or not
}

// Objects turns a listing of an Fs with the given prefix into rows.
func Objects(prefix string, entries []storage.Entry) []Object {
	out := make([]Object, 0, len(entries))
	for _, e := range entries {
		if e.Type.IsRegular() {
			out = append(out, Object{Key: prefix + e.Path, Size: e.Size, ModTime: e.ModTime, ETag: e.ETag})
		}
	}
	return out
}

// Report is a report to write.
type Report struct {
	// SourceBucket is the bucket the report lists.
	SourceBucket string
	// ConfigID names the inventory configuration; "" means "daily".
	ConfigID string
	// Created is the report's creationTimestamp.
	Created time.Time
	// Schema is the fileSchema; "" means DefaultSchema. Columns other
	// than Bucket, Key, Size, LastModifiedDate and ETag are written empty.
	Schema string
	// DataFiles is the number of .csv.gz files the rows are spread over;
	// zero means one.
	DataFiles int
	Objects   []Object
	// Row, when set, may change each CSV row's fields (in Schema's order)
	// before it is written: for hostile reports.
	Row func(i int, fields []string) []string
	// Parquet writes the data files as Parquet, with AWS's column names
	// and types (bucket, key, size, last_modified_date as milliseconds,
	// e_tag, is_latest, ...) for the columns of Schema; keys are not
	// URL-encoded.
	Parquet bool
	// ParquetColumns, when set, may change the Parquet schema's columns,
	// and ParquetRow each row (a column's value, nil for null) before it
	// is written: for hostile reports.
	ParquetColumns func(parquet.Group)
	ParquetRow     func(i int, row map[string]any)
}

// EncodeKey URL-encodes a key as S3 Inventory does: form encoding, a
// space as "+" and "+" as "%2B", slashes kept.
func EncodeKey(k string) string {
	return strings.ReplaceAll(url.QueryEscape(k), "%2F", "/")
}

// Files are the files of a written report, by path relative to the
// destination prefix (SOURCE/CONFIG/DATE/manifest.json, ...).
type Files map[string][]byte

// ManifestPath is the manifest's path in f.
func (f Files) ManifestPath() string {
	for p := range f {
		if path.Base(p) == "manifest.json" {
			return p
		}
	}
	return ""
}

// Build makes the files of r: data files under SOURCE/CONFIG/data/, the
// manifest and its checksum under SOURCE/CONFIG/YYYY-MM-DDTHH-MMZ/. The
// manifest names data files by their key under destPrefix.
func Build(destPrefix string, r Report) (Files, error) {
	cfg := r.ConfigID
	if cfg == "" {
		cfg = "daily"
	}
	schema := r.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	var cols []string
	for c := range strings.SplitSeq(schema, ",") {
		cols = append(cols, strings.TrimSpace(c))
	}
	n := max(r.DataFiles, 1)
	base := r.SourceBucket + "/" + cfg
	files := Files{}
	m := inventory.Manifest{
		SourceBucket: r.SourceBucket, DestinationBucket: "arn:aws:s3:::destination", Version: "2016-11-30",
		CreationTimestamp: strconv.FormatInt(r.Created.UnixMilli(), 10), FileFormat: "CSV", FileSchema: schema,
		Files: []inventory.File{},
	}
	if r.Parquet {
		m.FileFormat, m.FileSchema = "Parquet", parquetSchema(cols, r.ParquetColumns).String()
	}
	per := (len(r.Objects) + n - 1) / n
	for i := range n {
		objs := r.Objects[i*per : min((i+1)*per, len(r.Objects))]
		data, ext := []byte(nil), ".csv.gz"
		if r.Parquet {
			var err error
			if data, err = r.parquetFile(cols, objs, i*per); err != nil {
				return nil, err
			}
			ext = ".parquet"
		} else {
			data = r.csvFile(cols, objs, i*per)
		}
		name := fmt.Sprintf("%s/data/%08d-inventory%s", base, i, ext)
		files[name] = data
		sum := md5.Sum(data)
		m.Files = append(m.Files, inventory.File{Key: destPrefix + name, Size: int64(len(data)), MD5Checksum: hex.EncodeToString(sum[:])})
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	dir := base + "/" + r.Created.UTC().Format("2006-01-02T15-04Z")
	files[dir+"/manifest.json"] = raw
	files[dir+"/manifest.checksum"] = []byte(Checksum(raw) + "\n")
	return files, nil
}

// csvFile is one gzipped CSV data file of objs, the first of which is the
// report's row first.
func (r Report) csvFile(cols []string, objs []Object, first int) []byte {
	var csv bytes.Buffer
	for j, o := range objs {
		fields := make([]string, len(cols))
		for k, c := range cols {
			switch c {
			case "Bucket":
				fields[k] = r.SourceBucket
			case "Key":
				fields[k] = EncodeKey(o.Key)
			case "Size":
				fields[k] = strconv.FormatInt(o.Size, 10)
			case "LastModifiedDate":
				fields[k] = o.ModTime.UTC().Format("2006-01-02T15:04:05.000Z")
			case "ETag":
				fields[k] = strings.Trim(o.ETag, `"`)
			case "IsLatest":
				fields[k] = "true"
			case "IsDeleteMarker":
				fields[k] = "false"
			}
		}
		if r.Row != nil {
			fields = r.Row(first+j, fields)
		}
		for k, f := range fields {
			if k > 0 {
				csv.WriteByte(',')
			}
			csv.WriteString(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
		}
		csv.WriteByte('\n')
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(csv.Bytes())
	w.Close() // writing to memory cannot fail
	return gz.Bytes()
}

// ParquetName is the name AWS gives a column in Parquet reports:
// "LastModifiedDate" is "last_modified_date", "ETag" "e_tag".
func ParquetName(column string) string {
	var b strings.Builder
	for i, c := range column {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// parquetSchema is the schema of a Parquet report with the columns cols,
// typed as AWS types them.
func parquetSchema(cols []string, change func(parquet.Group)) *parquet.Schema {
	g := parquet.Group{}
	for _, c := range cols {
		var n parquet.Node
		switch c {
		case "Bucket":
			// One value repeated: dictionary-encoded, as writers do.
			n = parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
		case "Key":
			n = parquet.String()
		case "Size":
			n = parquet.Optional(parquet.Int(64))
		case "LastModifiedDate", "ObjectLockRetainUntilDate":
			n = parquet.Optional(parquet.Timestamp(parquet.Millisecond))
		case "IsLatest", "IsDeleteMarker", "IsMultipartUploaded":
			n = parquet.Optional(parquet.Leaf(parquet.BooleanType))
		default:
			n = parquet.Optional(parquet.String())
		}
		g[ParquetName(c)] = n
	}
	if change != nil {
		change(g)
	}
	return parquet.NewSchema("s3.inventory", g)
}

// parquetFile is one Parquet data file of objs, the first of which is the
// report's row first.
func (r Report) parquetFile(cols []string, objs []Object, first int) ([]byte, error) {
	var buf bytes.Buffer
	schema := parquetSchema(cols, r.ParquetColumns)
	// At least four row groups when there are rows enough, so that
	// readers meet several in a file, and Snappy pages, as AWS writes
	// them.
	w := parquet.NewGenericWriter[map[string]any](&buf, schema, parquet.MaxRowsPerRowGroup(int64(max(16, len(objs)/4))), parquet.Compression(&parquet.Snappy))
	for j, o := range objs {
		row := map[string]any{}
		for _, c := range cols {
			var v any
			switch c {
			case "Bucket":
				v = r.SourceBucket
			case "Key":
				v = o.Key
			case "Size":
				v = o.Size
			case "LastModifiedDate":
				v = o.ModTime.UTC()
			case "ETag":
				v = strings.Trim(o.ETag, `"`)
			case "IsLatest":
				v = true
			case "IsDeleteMarker":
				v = false
			}
			row[ParquetName(c)] = v
		}
		if r.ParquetRow != nil {
			r.ParquetRow(first+j, row)
		}
		// The writer takes a zero value in an optional column for a null
		// (size 0, is_delete_marker false); a pointer to it is the value.
		for _, f := range schema.Fields() {
			if v := row[f.Name()]; f.Optional() && v != nil && reflect.TypeOf(v).Kind() != reflect.Pointer {
				p := reflect.New(reflect.TypeOf(v))
				p.Elem().Set(reflect.ValueOf(v))
				row[f.Name()] = p.Interface()
			}
		}
		if _, err := w.Write([]map[string]any{row}); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DataFile is the path in f of its first data file, in byte order.
func (f Files) DataFile() string {
	var first string
	for p := range f {
		if path.Base(path.Dir(p)) == "data" && (first == "" || p < first) {
			first = p
		}
	}
	return first
}

// Resign makes manifest the manifest.json of f, with a manifest.checksum
// that matches it: a manifest edited by someone who can write the report
// bucket.
func (f Files) Resign(manifest []byte) {
	m := f.ManifestPath()
	f[m] = manifest
	f[strings.TrimSuffix(m, ".json")+".checksum"] = []byte(Checksum(manifest) + "\n")
}

// Replace puts body in place of the data file at p and gives the
// manifest body's size and MD5 for it, resigned: a report whose checksums
// all hold and whose data is whatever body is.
func (f Files) Replace(p string, body []byte) error {
	var m inventory.Manifest
	if err := json.Unmarshal(f[f.ManifestPath()], &m); err != nil {
		return err
	}
	found := false
	for i := range m.Files {
		if m.Files[i].Key == p || strings.HasSuffix(m.Files[i].Key, "/"+p) {
			sum := md5.Sum(body)
			m.Files[i].Size, m.Files[i].MD5Checksum, found = int64(len(body)), hex.EncodeToString(sum[:]), true
		}
	}
	if !found {
		return fmt.Errorf("no data file %q in the manifest", p)
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f[p] = body
	f.Resign(raw)
	return nil
}

// Checksum is the manifest.checksum of a manifest.json.
func Checksum(manifest []byte) string {
	sum := md5.Sum(manifest)
	return hex.EncodeToString(sum[:])
}

// Write writes r into dir of fsys (as "aws s3 sync" would copy it) and
// returns the manifest's path.
func Write(fsys afero.Fs, dir string, r Report) (string, error) {
	files, err := Build("", r)
	if err != nil {
		return "", err
	}
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := fsys.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return "", err
		}
		if err := afero.WriteFile(fsys, full, b, 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, filepath.FromSlash(files.ManifestPath())), nil
}

// Put uploads r into bucket under prefix ("" or ending in "/") and
// returns the manifest's key.
func Put(ctx context.Context, client *s3.Client, bucket, prefix string, r Report) (string, error) {
	files, err := Build(prefix, r)
	if err != nil {
		return "", err
	}
	for p, b := range files {
		key := prefix + p
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(b)}); err != nil {
			return "", err
		}
	}
	return prefix + files.ManifestPath(), nil
}
