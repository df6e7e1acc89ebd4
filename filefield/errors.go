package filefield

import (
	"errors"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Errors returned by Save, Replace and Delete, wrapped in a [*PathError].
// Each rejection happens before anything is stored.
var (
	// ErrUnsafePath: a stored path read back from a row is not a valid
	// stored path, or lies outside the field's directory. It is the storage
	// layer's sentinel, so errors.Is matches either name.
	ErrUnsafePath = storage.ErrUnsafePath
	// ErrTooLarge: the upload is larger than Options.MaxSize.
	ErrTooLarge = errors.New("file too large")
	// ErrEmpty: the upload has no bytes.
	ErrEmpty = errors.New("empty file")
	// ErrTypeNotAllowed: the sniffed content type is not in
	// Options.AllowedTypes.
	ErrTypeNotAllowed = errors.New("content type not allowed")
	// ErrExtensionNotAllowed: no extension from Options.Extensions fits
	// the upload.
	ErrExtensionNotAllowed = errors.New("extension not allowed")
)

// PathError is the storage layer's error type, carrying the operation and
// the path (for rejected uploads, the client's file name).
type PathError = storage.PathError
