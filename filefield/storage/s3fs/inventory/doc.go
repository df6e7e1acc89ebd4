// Package inventory reads an Amazon S3 Inventory report as a listing of
// one s3fs.Fs, so that an orphan search (orphan.Options.Listing) can plan
// from the daily or weekly report instead of listing a large bucket: a
// billion keys are a million ListObjectsV2 requests, the report is a few
// gzip files.
//
// # The format read
//
// AWS writes a report under the destination prefix as
//
//	SOURCEBUCKET/CONFIGID/YYYY-MM-DDTHH-MMZ/manifest.json
//	SOURCEBUCKET/CONFIGID/YYYY-MM-DDTHH-MMZ/manifest.checksum
//	SOURCEBUCKET/CONFIGID/data/NAME.csv.gz (or NAME.parquet)
//
// manifest.checksum is the hex MD5 of manifest.json; the manifest gives
// sourceBucket, creationTimestamp (milliseconds since the epoch, as a
// string), fileFormat, fileSchema (the CSV columns, such as "Bucket, Key,
// Size, LastModifiedDate, ETag") and files, each data file's key, size
// and MD5. The CSV has no header. Keys are URL-encoded the way S3 encodes
// them elsewhere (ListObjectsV2 with encoding-type=url, event
// notifications): form encoding, where a space may be "+" or "%20" and a
// plus sign is always "%2B"; they are decoded with url.QueryUnescape, as
// s3fs decodes listings. Bucket, Key, Size and LastModifiedDate are
// required; ETag is used when present; with IsLatest and IsDeleteMarker
// (a report of all versions) only current versions that are not delete
// markers count.
//
// A Parquet report (fileFormat "Parquet") has the same columns under AWS's
// names: bucket, key, size, last_modified_date (a timestamp, in
// milliseconds as AWS writes it, or micro- or nanoseconds), e_tag,
// is_latest and is_delete_marker. Keys are not URL-encoded there. Each
// data file's own schema is checked (the manifest's fileSchema is not
// read), and a required column that is absent or of another type refuses
// the report; a null size or time in a current row refuses it too. ORC
// reports are refused.
//
// [Open] takes a local manifest.json (the report copied with "aws s3
// sync": data files are then found at CONFIGID/data/NAME, whatever the
// destination prefix in their keys) or an s3://BUCKET/KEY URL, read with
// the Fs's client ([OpenS3] takes another).
//
// # Guarantees
//
//   - Nothing is read as a listing unless manifest.checksum matches the
//     manifest, the manifest names the Fs's bucket as its source, and
//     each data file has the size and MD5 the manifest gives. CSV data
//     files are streamed (a gzip reader over the file, never the whole
//     file in memory), so the size and MD5 are known at the file's end:
//     an integrity error comes after the rows before it were handed on,
//     and the caller must discard the whole listing. orphan.Finder.Find
//     does: an error from the listing gives no plan and deletes nothing.
//     A Parquet data file is read from its end, so it is first copied to
//     Options.TempDir (one at a time, unlinked at once where the system
//     allows it) and checked whole before any of its rows is handed on;
//     its footer length and each page header's sizes are bounded before
//     the decoder reads them (it allocates what they say), a schema with
//     two columns of one name is refused, and a panic in the decoder is
//     an error.
//   - Every problem is an error wrapping [ErrInvalid] that names the data
//     file and row: a truncated or corrupt gzip stream, a row with a
//     column missing or extra, another bucket in a row, a size or time
//     that does not parse, a key that does not decode, a key listed twice
//     (unless [Options].NoDuplicateCheck: that check holds a hash of every
//     key for the whole listing), a row longer than 64 KiB (read no
//     further, so a hostile file cannot fill the memory with one row).
//   - Fail-closed on keys: a key under the Fs's prefix that is not a valid
//     stored path (storage.ValidPath: "..", ".", empty or dot-led
//     segments, control characters, a colon, ...) refuses the whole
//     report; nothing is skipped silently. A bucket that holds such keys
//     under the prefix cannot be cleaned from its inventory: use a live
//     listing. Keys outside the prefix are ignored unread, as are folder
//     markers (keys ending in "/") and the quarantine area, which every
//     listing skips.
//   - [Report.ListFiles] implements storage.Lister: Path relative to the
//     prefix, Size, ModTime (LastModifiedDate) and ETag (quoted, as
//     ListObjectsV2 gives it), honouring ListOptions.Dir, From and To.
//
// # Caveats
//
// A report is the bucket as it was at [Report.CreatedAt], at best: it
// may not show objects added or deleted shortly before. orphan refuses a report older than the grace period and re-checks
// every object against the bucket before deleting it; other callers must
// do the same. Each ListFiles call reads the whole report (the rows are
// in no order this package relies on); keeping the keys seen costs a
// 64-bit hash each. A "+" in a report that did not come from AWS and
// meant a plus sign is read as a space: the object is then not found by
// the re-check and kept, and the real one is not listed.
package inventory
