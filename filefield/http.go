package filefield

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
)

// MaxFormSkip is how many bytes of a multipart body FormFile reads past
// (other fields, their headers) before it reaches the file's part.
const MaxFormSkip = 1 << 20

// FormFile stores the file of the multipart form field key of r, for a
// record whose row holds old ("" for a new record). It streams the request
// body part by part, without buffering the upload in memory or on disk
// first, and reads no further than it must: at most MaxFormSkip bytes of
// other fields before the file (skipped; read them from the URL or a
// separate request), then the file's part up to the field's size limit, or
// its first 512 bytes when its type is refused. The rest of the body is
// left unread, so the server closes the connection instead of draining an
// upload it refused. ctx is checked between chunks; a client that stalls
// is the server's to time out (http.Server's ReadTimeout, or a deadline
// through http.ResponseController).
//
// Rejections are typed: the error wraps ErrTooLarge, ErrTypeNotAllowed,
// ErrExtensionNotAllowed, ErrEmpty or ErrUnsafePath, or http.ErrMissingFile
// when the form has no such file.
func (f *Field) FormFile(ctx context.Context, r *http.Request, key, old, owner string) (*Change, error) {
	if old != "" {
		if err := f.CheckPath(old); err != nil {
			return nil, err // before a byte of the body is read
		}
	}
	body := &countingReader{r: r.Body, limit: MaxFormSkip}
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := mr.NextPart()
		if err != nil {
			switch {
			case errors.Is(err, errSkipLimit):
				return nil, &PathError{Op: "save", Path: key, Err: fmt.Errorf("%w: more than %d bytes of other fields before the file", ErrTooLarge, MaxFormSkip)}
			case errors.Is(err, io.EOF):
				return nil, http.ErrMissingFile
			}
			return nil, err
		}
		if p.FormName() != key || p.FileName() == "" {
			continue // NextPart skips what is left of it
		}
		body.limit = -1 // the file's own limit applies from here
		// Not closed: Close would read the rest of a part that was
		// refused, to its end.
		return f.Replace(ctx, old, Upload{Body: p, Name: p.FileName(), Owner: owner})
	}
}

var errSkipLimit = errors.New("form skip limit")

// countingReader counts the bytes read through it, and fails once they
// pass limit (unless it is negative).
type countingReader struct {
	r     io.ReadCloser
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit >= 0 && c.n > c.limit {
		return 0, errSkipLimit
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// FileHeader stores the file of a parsed multipart form (from
// r.ParseMultipartForm or r.FormFile), for a record whose row holds old
// ("" for a new record). A header that already declares more than the size
// limit is refused without reading; the limit is enforced while streaming
// in any case, since the header is the client's word.
func (f *Field) FileHeader(ctx context.Context, fh *multipart.FileHeader, old, owner string) (*Change, error) {
	if f.maxSize >= 0 && fh.Size > f.maxSize {
		return nil, &PathError{Op: "save", Path: fh.Filename, Err: ErrTooLarge}
	}
	file, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return f.Replace(ctx, old, Upload{Body: file, Name: fh.Filename, Owner: owner})
}
