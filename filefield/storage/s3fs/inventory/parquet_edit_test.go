package inventory_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/inventory/inventorytest"
)

// Hand-edited Parquet files, as an attacker who can write the report
// bucket (and so the manifest's size and MD5) could make them.

func footerOf(t *testing.T, b []byte) (format.FileMetaData, int) {
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	start := len(b) - 8 - n
	var md format.FileMetaData
	if err := thrift.Unmarshal(&thrift.CompactProtocol{}, b[start:len(b)-8], &md); err != nil {
		t.Fatal(err)
	}
	return md, start
}

func withFooter(t *testing.T, body []byte, md *format.FileMetaData) []byte {
	f, err := thrift.Marshal(&thrift.CompactProtocol{}, md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(slices.Clone(body), f...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(f)))
	return append(out, "PAR1"...)
}

// buildEdited builds a report and lets edit replace its (single) data file;
// the manifest's size, MD5 and checksum are fixed, as an attacker with
// write access to the report bucket would.
func buildEdited(t *testing.T, r inventorytest.Report, edit func([]byte) []byte) (afero.Fs, string) {
	files, err := inventorytest.Build("inventory/", r)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		if err := files.Replace(files.DataFile(), edit(files[files.DataFile()])); err != nil {
			t.Fatal(err)
		}
	}
	fsys := afero.NewMemMapFs()
	for p, b := range files {
		afero.WriteFile(fsys, "/inv/"+p, b, 0o644)
	}
	return fsys, "/inv/" + files.ManifestPath()
}

// A page header whose compressed_page_size is 2 GiB - 1, in a file of a
// few KB whose manifest matches, is refused with ErrInvalid before the
// decoder allocates what it says (it used to allocate 2.8 GiB, and die
// under a memory limit).
func TestParquetHugePageHeaderRefused(t *testing.T) {
	edit := func(b []byte) []byte {
		md, fstart := footerOf(t, b)
		body := slices.Clone(b[:fstart])
		for ci := range md.RowGroups[0].Columns {
			cc := &md.RowGroups[0].Columns[ci]
			start := cc.MetaData.DataPageOffset
			if cc.MetaData.DictionaryPageOffset != 0 && cc.MetaData.DictionaryPageOffset < start {
				start = cc.MetaData.DictionaryPageOffset
			}
			var hdr format.PageHeader
			rd := bytes.NewReader(b[start:])
			if err := thrift.NewDecoder((&thrift.CompactProtocol{}).NewReader(rd)).Decode(&hdr); err != nil {
				t.Fatal(err)
			}
			hlen := int64(len(b[start:]) - rd.Len())
			hdr.CompressedPageSize = 1<<31 - 1
			hdr.UncompressedPageSize = 1<<31 - 1
			hdr.CRC = 0
			nh, err := thrift.Marshal(&thrift.CompactProtocol{}, &hdr)
			if err != nil {
				t.Fatal(err)
			}
			newStart := int64(len(body))
			delta := int64(len(nh)) - hlen
			body = append(body, nh...)
			body = append(body, b[start+hlen:start+cc.MetaData.TotalCompressedSize]...)
			shift := func(o int64) int64 {
				if o == 0 {
					return 0
				}
				if o == start {
					return newStart
				}
				return o - start + newStart + delta
			}
			cc.MetaData.DataPageOffset = shift(cc.MetaData.DataPageOffset)
			cc.MetaData.DictionaryPageOffset = shift(cc.MetaData.DictionaryPageOffset)
			cc.FileOffset = shift(cc.FileOffset)
			cc.MetaData.TotalCompressedSize += delta
			cc.OffsetIndexOffset, cc.OffsetIndexLength, cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0, 0, 0
		}
		return withFooter(t, body, &md)
	}
	fsys, m := buildEdited(t, inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objects(20)}, edit)
	r, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	got, err := list(t, r, storage.ListOptions{})
	runtime.ReadMemStats(&after)
	t.Logf("%d entries, err %v; %s; TotalAlloc +%d MiB", len(got), err, time.Since(start), (after.TotalAlloc-before.TotalAlloc)>>20)
	if !errors.Is(err, inventory.ErrInvalid) || len(got) > 0 {
		t.Errorf("%d entries, %v", len(got), err)
	}
	if after.TotalAlloc-before.TotalAlloc > 64<<20 {
		t.Errorf("a data file of %d rows allocated %d MiB", 20, (after.TotalAlloc-before.TotalAlloc)>>20)
	}
}

// Two top-level columns named "key" (the second renamed from "kez" in the
// footer) refuse the file: neither is trusted.
func TestParquetDuplicateColumnRefused(t *testing.T) {
	r := inventorytest.Report{SourceBucket: "b", Created: created, Parquet: true, Objects: objects(5),
		ParquetColumns: func(g parquet.Group) { g["kez"] = parquet.String() },
		ParquetRow:     func(i int, row map[string]any) { row["kez"] = fmt.Sprintf("media/other/%d.jpg", i) },
	}
	edit := func(b []byte) []byte {
		md, fstart := footerOf(t, b)
		for i := range md.Schema {
			if md.Schema[i].Name == "kez" {
				md.Schema[i].Name = "key"
			}
		}
		for ri := range md.RowGroups {
			for ci := range md.RowGroups[ri].Columns {
				p := md.RowGroups[ri].Columns[ci].MetaData.PathInSchema
				for k := range p {
					if p[k] == "kez" {
						p[k] = "key"
					}
				}
			}
		}
		return withFooter(t, b[:fstart], &md)
	}
	fsys, m := buildEdited(t, r, edit)
	rep, err := inventory.OpenFs(t.Context(), fsys, m, target("b", "media/"), inventory.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := list(t, rep, storage.ListOptions{})
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if !errors.Is(err, inventory.ErrInvalid) || !strings.Contains(err.Error(), `two columns named "key"`) {
		t.Errorf("a data file with two columns named key: listed %q, %v", paths, err)
	}
}
