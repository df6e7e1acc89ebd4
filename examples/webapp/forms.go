package main

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"

	"github.com/dustin/go-humanize"
)

// Request body limits. Every body is read through http.MaxBytesReader:
// forms with a file up to the field's MaxSize plus formAllowance (the
// multipart headers and the text fields next to the file), every other
// form up to maxTextForm.
const (
	maxUpload     = 10 << 20 // every file field's MaxSize
	formAllowance = 64 << 10
	maxTextForm   = 64 << 10
	maxField      = 8 << 10 // one text field
	maxParts      = 16      // parts of a multipart form
)

// httpError is a failure with the status and the message the user sees;
// err, when set, is the detail that goes to the log only.
type httpError struct {
	code int
	msg  string
	err  error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func userErr(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// limitBody bounds r's body to n bytes. A body that declares more is
// refused at once, without reading it.
func limitBody(w http.ResponseWriter, r *http.Request, n int64) error {
	if r.ContentLength > n {
		w.Header().Set("Connection", "close")
		return tooLarge(n)
	}
	r.Body = http.MaxBytesReader(w, r.Body, n)
	return nil
}

func tooLarge(n int64) error {
	return userErr(http.StatusRequestEntityTooLarge, "the request is too large (the limit is %s)", humanize.IBytes(uint64(n)))
}

// readForm reads r's form as a stream: a multipart form part by part, or
// an urlencoded one. Text fields, each at most maxField bytes, go into the
// returned values. The part named "file", if it carries a file, is given
// to onFile with the fields before it, while it streams: it is never
// buffered. Fields must come before the file (browsers send them in the
// form's order, and every form here puts the file last); a field after it
// is refused.
func readForm(r *http.Request, onFile func(url.Values, *multipart.Part) error) (url.Values, error) {
	values := url.Values{}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "multipart/form-data":
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, bodyError(err)
		}
		return r.PostForm, nil
	case "":
		return values, nil
	default:
		return nil, userErr(http.StatusUnsupportedMediaType, "the form must be sent as multipart/form-data or urlencoded")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, bodyError(err)
	}
	gotFile := false
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return values, nil
		}
		if err != nil {
			return nil, bodyError(err)
		}
		if parts == maxParts {
			return nil, userErr(http.StatusBadRequest, "the form has too many fields")
		}
		name := p.FormName()
		switch {
		case p.FileName() != "" && name == "file" && !gotFile:
			gotFile = true
			// On an error the rest of the part is not drained: the
			// server discards a little of what is left, then closes.
			if err := onFile(values, p); err != nil {
				return nil, err
			}
			continue
		case p.FileName() != "":
			return nil, userErr(http.StatusBadRequest, "the form has an unexpected file %q", name)
		case gotFile:
			return nil, userErr(http.StatusBadRequest, "the form's fields must come before its file")
		}
		v, err := io.ReadAll(io.LimitReader(p, maxField+1))
		if err != nil {
			return nil, bodyError(err)
		}
		if len(v) > maxField {
			return nil, userErr(http.StatusRequestEntityTooLarge, "the field %q is too long", name)
		}
		values.Add(name, string(v))
	}
}

// bodyError turns an error reading the body into what the user is told:
// too large, or malformed.
func bodyError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &httpError{code: http.StatusRequestEntityTooLarge, msg: tooLarge(mbe.Limit).Error(), err: err}
	case isTimeout(err):
		return &httpError{code: http.StatusRequestTimeout, msg: "the request took too long to send", err: err}
	}
	return &httpError{code: http.StatusBadRequest, msg: "the form could not be read", err: err}
}
