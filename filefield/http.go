package filefield

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
)

// FormFile stores the file of the multipart form field key of r, for a
// record whose row holds old ("" for a new record). It streams the request
// body part by part, without buffering the upload in memory or on disk
// first, and stops reading after the field's size limit. Other form fields
// before the file are skipped; read them from the URL or a separate request.
//
// Rejections are typed: the error wraps ErrTooLarge, ErrTypeNotAllowed,
// ErrExtensionNotAllowed, ErrEmpty or ErrUnsafePath, or http.ErrMissingFile
// when the form has no such file.
func (f *Field) FormFile(ctx context.Context, r *http.Request, key, old, owner string) (*Change, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, http.ErrMissingFile
			}
			return nil, err
		}
		if p.FormName() != key || p.FileName() == "" {
			p.Close()
			continue
		}
		defer p.Close()
		return f.Replace(ctx, old, Upload{Body: p, Name: p.FileName(), Owner: owner})
	}
}

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
