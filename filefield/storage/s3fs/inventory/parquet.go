package inventory

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// The columns of an AWS Parquet report that this package reads, by the
// names AWS gives them. Keys are not URL-encoded in Parquet.
const (
	pqBucket       = "bucket"
	pqKey          = "key"
	pqSize         = "size"
	pqModified     = "last_modified_date"
	pqETag         = "e_tag"
	pqLatest       = "is_latest"
	pqDeleteMarker = "is_delete_marker"
)

// The slots of those columns in a row as parquetEntry reads it.
const (
	slotBucket = iota
	slotKey
	slotSize
	slotModified
	slotETag
	slotLatest
	slotDeleteMarker
	nSlots
)

// pqColumns are the positions of those columns in one data file's rows; -1
// for an optional one that is absent.
type pqColumns struct {
	bucket, key, size, mod, etag, latest, deleteMarker int
	unit                                               time.Duration // of last_modified_date
	slot                                               []int         // by column index: a slot, or -1
}

// parquetFile lists one Parquet data file. A Parquet file is read from its
// end (the footer says where the columns are), so it cannot be streamed:
// the data file is first copied to an unlinked temporary file in
// Options.TempDir while its size and MD5 are checked, and no row is
// handed on unless both match the manifest.
func (l *lister) parquetFile(ctx context.Context, f File, bad func(row int, format string, args ...any) error) error {
	tmp, err := l.verifiedCopy(ctx, f, bad)
	if err != nil {
		return err
	}
	defer tmp.Close()
	if err := checkFooter(tmp, f.Size); err != nil {
		return bad(0, "not a Parquet file: %v", err)
	}
	var pf *parquet.File
	err = safely(func() (err error) {
		pf, err = parquet.OpenFile(tmp, f.Size, parquet.SkipBloomFilters(true), parquet.SkipPageIndex(true))
		return err
	})
	if err != nil {
		return bad(0, "not a Parquet file: %v", err)
	}
	cols, err := parquetSchema(pf.Schema())
	if err != nil {
		return bad(0, "%v", err)
	}
	if err := checkPages(tmp, f.Size, pf.Metadata()); err != nil {
		return bad(0, "%v", err)
	}
	row := 0
	batch := make([]parquet.Row, 256)
	for _, rg := range pf.RowGroups() {
		if err := l.parquetRows(ctx, rg, &cols, batch, &row, bad); err != nil {
			return err
		}
	}
	if row != int(pf.NumRows()) {
		return bad(0, "%d rows read, the footer says %d", row, pf.NumRows())
	}
	return nil
}

// parquetRows lists the rows of one row group, counting them in row.
func (l *lister) parquetRows(ctx context.Context, rg parquet.RowGroup, cols *pqColumns, batch []parquet.Row, row *int, bad func(row int, format string, args ...any) error) error {
	rows := rg.Rows()
	defer rows.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		err := safely(func() (err error) {
			n, err = rows.ReadRows(batch)
			return err
		})
		for _, r := range batch[:n] {
			*row++
			at := *row
			if err := l.parquetEntry(r, cols, func(format string, args ...any) error { return bad(at, format, args...) }); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return bad(*row+1, "%v", err)
		}
	}
}

// parquetEntry reads one row and hands it to fn if the listing selects it,
// as entry does for CSV.
func (l *lister) parquetEntry(r parquet.Row, cols *pqColumns, bad func(string, ...any) error) error {
	var vals [nSlots]parquet.Value
	for _, v := range r {
		if c := v.Column(); c < len(cols.slot) && cols.slot[c] >= 0 {
			vals[cols.slot[c]] = v
		}
	}
	bucket, key, size, mod := vals[slotBucket], vals[slotKey], vals[slotSize], vals[slotModified]
	etag, latest, deleteMarker := vals[slotETag], vals[slotLatest], vals[slotDeleteMarker]
	if bucket.IsNull() || key.IsNull() {
		return bad("no bucket or no key")
	}
	if err := l.bucket(string(bucket.ByteArray()), bad); err != nil || !cols.current(latest, deleteMarker) {
		return err
	}
	k := string(key.ByteArray())
	rel, err := l.selected(k, bad)
	if err != nil || rel == "" {
		return err
	}
	if size.IsNull() || size.Int64() < 0 {
		return bad("key %q: size %v", k, size)
	}
	if mod.IsNull() {
		return bad("key %q: no last_modified_date", k)
	}
	e := ""
	if cols.etag >= 0 && !etag.IsNull() {
		e = string(etag.ByteArray())
	}
	return l.emit(rel, size.Int64(), cols.time(mod.Int64()), e)
}

// current reports whether a row is a current version that is not a
// delete marker. An absent or null is_latest is not true, and an absent or
// null is_delete_marker not true, as the CSV columns are read.
func (c *pqColumns) current(latest, deleteMarker parquet.Value) bool {
	return (c.latest < 0 || (!latest.IsNull() && latest.Boolean())) &&
		(c.deleteMarker < 0 || deleteMarker.IsNull() || !deleteMarker.Boolean())
}

// time reads last_modified_date in its column's unit, in UTC.
func (c *pqColumns) time(t int64) time.Time {
	switch c.unit {
	case time.Millisecond:
		return time.UnixMilli(t).UTC()
	case time.Microsecond:
		return time.UnixMicro(t).UTC()
	}
	return time.Unix(0, t).UTC()
}

// parquetSchema finds the columns in a data file's schema, refusing one
// without bucket, key, size and last_modified_date, with one of a type
// other than AWS's, or with two columns of one name.
func parquetSchema(s *parquet.Schema) (pqColumns, error) {
	c := pqColumns{etag: -1, latest: -1, deleteMarker: -1}
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		if seen[f.Name()] {
			return c, fmt.Errorf("schema has two columns named %q", f.Name())
		}
		seen[f.Name()] = true
	}
	for _, col := range []struct {
		name     string
		kind     parquet.Kind
		at       *int
		required bool
	}{
		{pqBucket, parquet.ByteArray, &c.bucket, true},
		{pqKey, parquet.ByteArray, &c.key, true},
		{pqSize, parquet.Int64, &c.size, true},
		{pqModified, parquet.Int64, &c.mod, true},
		{pqETag, parquet.ByteArray, &c.etag, false},
		{pqLatest, parquet.Boolean, &c.latest, false},
		{pqDeleteMarker, parquet.Boolean, &c.deleteMarker, false},
	} {
		leaf, ok := s.Lookup(col.name)
		if !ok {
			if col.required {
				return c, fmt.Errorf("schema has no %s column", col.name)
			}
			continue
		}
		if leaf.MaxRepetitionLevel > 0 || leaf.Node.Type().Kind() != col.kind {
			return c, fmt.Errorf("column %s is %v, not a single %v", col.name, leaf.Node, col.kind)
		}
		*col.at = leaf.ColumnIndex
	}
	leaf, _ := s.Lookup(pqModified)
	unit, ok := timestampUnit(leaf.Node.Type())
	if !ok {
		return c, fmt.Errorf("column %s is not a timestamp: %v", pqModified, leaf.Node)
	}
	c.unit = unit
	c.slot = make([]int, len(s.Columns()))
	for i := range c.slot {
		c.slot[i] = -1
	}
	for slot, at := range [nSlots]int{c.bucket, c.key, c.size, c.mod, c.etag, c.latest, c.deleteMarker} {
		if at >= 0 {
			c.slot[at] = slot
		}
	}
	return c, nil
}

// timestampUnit returns the unit of a timestamp column, annotated either
// way Parquet allows: the logical type TIMESTAMP(unit) or the older
// converted type TIMESTAMP_MILLIS or TIMESTAMP_MICROS.
func timestampUnit(t parquet.Type) (time.Duration, bool) {
	if lt := t.LogicalType(); lt != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok {
			switch ts.Unit.Value.(type) {
			case *format.MilliSeconds:
				return time.Millisecond, true
			case *format.MicroSeconds:
				return time.Microsecond, true
			case *format.NanoSeconds:
				return time.Nanosecond, true
			}
		}
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.TimestampMillis:
			return time.Millisecond, true
		case deprecated.TimestampMicros:
			return time.Microsecond, true
		}
	}
	return 0, false
}

// verifiedCopy copies a data file to a temporary file, checking its size
// and MD5 against the manifest; the caller closes it, which removes it.
func (l *lister) verifiedCopy(ctx context.Context, f File, bad func(row int, format string, args ...any) error) (*storage.TempFile, error) {
	body, err := l.r.open(ctx, f)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, fmt.Errorf("inventory %s: %w", l.r.where, err)
		}
		return nil, fmt.Errorf("inventory %s: data file %q: %w", l.r.where, f.Key, err)
	}
	defer body.Close()
	tmp, err := storage.CreateTemp(l.r.opts.TempDir, "mediaclean-inventory-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("inventory %s: data file %q: %w", l.r.where, f.Key, err)
	}
	h := md5.New()
	// One byte more than the manifest says is enough to refuse the file.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, body}, f.Size+1))
	switch {
	case err != nil && ctx.Err() != nil:
		err = ctx.Err()
	case err != nil:
		err = fmt.Errorf("inventory %s: data file %q: %w", l.r.where, f.Key, err)
	case n > f.Size:
		err = bad(0, "more than the %d bytes the manifest says", f.Size)
	case n < f.Size:
		err = bad(0, "%d bytes, the manifest says %d", n, f.Size)
	default:
		if sum := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(sum, f.MD5Checksum) {
			err = bad(0, "MD5 %s, the manifest says %s", sum, f.MD5Checksum)
		}
	}
	if err != nil {
		tmp.Close()
		return nil, err
	}
	return tmp, nil
}

// maxFooter bounds a data file's footer (its schema and where its pages
// are): AWS's are a few KiB. A damaged or hostile length would otherwise
// have the decoder allocate what it says.
const maxFooter = 16 << 20

// checkFooter checks a Parquet file's frame before the decoder reads it:
// "PAR1" at both ends, and a footer length that fits in the file and
// under maxFooter.
func checkFooter(r io.ReaderAt, size int64) error {
	var head, tail [8]byte
	if size < 12 {
		return fmt.Errorf("%d bytes", size)
	}
	if _, err := r.ReadAt(head[:4], 0); err != nil {
		return err
	}
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(head[:4]) != "PAR1" || string(tail[4:]) != "PAR1" {
		return errors.New("no PAR1 at its start and end")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 || n > maxFooter {
		return fmt.Errorf("a footer of %d bytes in a file of %d", n, size)
	}
	return nil
}

// maxPage bounds the size of one page, compressed or not: writers make
// pages of about 1 MiB. The decoder allocates what a page header says.
const maxPage = 64 << 20

// checkPages walks the page headers of every column chunk before the
// decoder reads them, refusing a chunk outside the file or a page that
// is larger than maxPage or overruns its chunk: a damaged or hostile
// header saying 2 GiB would otherwise have the decoder allocate that.
func checkPages(r io.ReaderAt, size int64, md *format.FileMetaData) error {
	window := make([]byte, 64<<10)
	for gi, rg := range md.RowGroups {
		for ci, cc := range rg.Columns {
			m := cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			end := start + m.TotalCompressedSize
			if start < 4 || m.TotalCompressedSize < 0 || end < start || end > size-8 {
				return fmt.Errorf("row group %d, column %d: pages at %d..%d in a file of %d bytes", gi, ci, start, end, size)
			}
			for off := start; off < end; {
				hlen, page, err := pageHeader(r, off, end, window)
				if err != nil {
					return fmt.Errorf("row group %d, column %d: page header at %d: %w", gi, ci, off, err)
				}
				off += hlen + page
			}
		}
	}
	return nil
}

// pageHeader reads the page header at off, before end, and returns its
// length and the length of the page after it.
func pageHeader(r io.ReaderAt, off, end int64, window []byte) (hlen, page int64, err error) {
	// A header is a few dozen bytes, or a few KiB with long statistics:
	// read a small window first, and a larger one if it did not hold it.
	for _, w := range []int64{512, int64(len(window))} {
		buf := window[:min(w, end-off)]
		if _, err = r.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		var hdr format.PageHeader
		pr := (&thrift.CompactProtocol{}).NewReaderFromBytes(buf)
		if err = thrift.NewDecoder(pr).Decode(&hdr); err != nil {
			if int64(len(buf)) == end-off {
				break // the whole chunk is read: no bigger window helps
			}
			continue
		}
		hlen, page = int64(pr.BytesRead()), int64(hdr.CompressedPageSize)
		switch {
		case page < 0 || hdr.UncompressedPageSize < 0 || page > maxPage || int64(hdr.UncompressedPageSize) > maxPage:
			return 0, 0, fmt.Errorf("a page of %d bytes (%d uncompressed)", page, hdr.UncompressedPageSize)
		case off+hlen+page > end:
			return 0, 0, fmt.Errorf("a page of %d bytes overruns its column chunk", page)
		}
		return hlen, page, nil
	}
	return 0, 0, err
}

// safely runs a call into the Parquet decoder, turning a panic on a
// hostile file into an error: only the decoder is run so, never the
// listing's callback.
func safely(call func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the Parquet decoder failed: %v", p)
		}
	}()
	return call()
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
