package filefield

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Upload is one file to store.
type Upload struct {
	// Body is read once, up to MaxSize+1 bytes. The caller closes it.
	Body io.Reader
	// Name is the client's file name. It is never used as a path; only its
	// extension may be used, lowercased and checked against the allowlist,
	// when the sniffed content type does not decide the extension.
	Name string
	// Owner fills {owner} in the directory template; it must be a single
	// safe path segment ("42", "user-42").
	Owner string
}

// stored describes a file written into place.
type stored struct {
	path        string
	size        int64
	contentType string
	created     bool // false when hash naming found the file already there
}

// randomName returns 128 random bits in hex.
func randomName() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("filefield: crypto/rand failed: " + err.Error()) // never returns an error on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// store writes up to the final path: validate and sniff, then write a temp
// file with O_EXCL in the target directory, sync, close, rename into place
// and sync the directory (F2). On any failure it removes what it wrote and
// returns the error; nothing is left behind.
//
// Those two removals are the only ones outside the field's choke point,
// remove: each undoes a file this very call created (the O_EXCL temp name,
// or the fresh random final name), which no row can reference yet, so none
// of the choke point's checks (protection, references, keep mode) apply.
func (f *Field) store(ctx context.Context, up Upload) (stored, error) {
	var st stored
	if err := ctx.Err(); err != nil {
		return st, err
	}
	fail := func(err error) (stored, error) {
		return st, &PathError{Op: "save", Path: up.Name, Err: err}
	}
	if up.Body == nil {
		return fail(ErrEmpty)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(up.Body, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	head = head[:n]
	if n == 0 {
		return fail(ErrEmpty)
	}
	if f.maxSize >= 0 && int64(n) > f.maxSize {
		return fail(ErrTooLarge)
	}
	ctype, _, _ := mime.ParseMediaType(http.DetectContentType(head))
	if !f.anyType && !f.types[ctype] {
		return fail(&typeError{ctype})
	}
	ext, ok := f.extension(ctype, up.Name)
	if !ok {
		return fail(ErrExtensionNotAllowed)
	}
	tmpl, err := f.dirFor(up.Owner)
	if err != nil {
		return st, err
	}
	// With random names the name is known now, so the temp file goes into
	// the final directory. With hash names and a {shard} template it goes
	// into the shard's parent until the hash is known.
	name := ""
	if !f.opts.HashNames {
		name = randomName()
	}
	if storage.CreatesAtomically(f.fs) {
		if name == "" {
			return f.storeHashedDirect(ctx, up, head, tmpl, ext, ctype)
		}
		return f.storeDirect(ctx, up, head, storage.Join(f.resolveShard(tmpl, name), name+ext), ctype)
	}
	dir := f.resolveShard(tmpl, name)
	tmp := storage.Join(dir, storage.TempPrefix+randomName())
	file, err := f.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory is made on first use only: most writes go to a
		// directory that exists, and checking every time costs a lookup.
		if err := f.fs.MkdirAll(dir, 0o755); err != nil {
			return st, storage.Wrap("mkdir", dir, err)
		}
		file, err = f.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		return st, storage.Wrap("create", tmp, err)
	}
	// From here every failure removes tmp; after a successful rename the
	// temp name no longer exists and only the final file may be removed.
	committed := false
	defer func() {
		if !committed {
			_ = f.fs.Remove(tmp)
		}
	}()
	var h hash.Hash
	w := io.Writer(file)
	if f.opts.HashNames {
		h = sha256.New()
		w = io.MultiWriter(file, h)
	}
	size, werr := copyLimited(ctx, w, head, up.Body, f.maxSize)
	if werr == nil {
		werr = file.Sync()
	}
	if cerr := file.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return st, writeError(ctx, werr, up.Name, tmp)
	}

	if h != nil {
		name = hex.EncodeToString(h.Sum(nil)[:16])
	}
	final := storage.Join(f.resolveShard(tmpl, name), name+ext)
	if storage.Dir(final) != dir {
		if err := f.fs.MkdirAll(storage.Dir(final), 0o755); err != nil {
			return st, storage.Wrap("mkdir", storage.Dir(final), err)
		}
	}
	st = stored{path: final, size: size, contentType: ctype, created: true}
	if h != nil {
		if _, err := f.fs.Stat(final); err == nil {
			// The same bytes are already stored: use that file, and never
			// delete it on rollback, since something else made it.
			st.created = false
			return st, nil
		}
	} else if _, err := f.fs.Stat(final); !errors.Is(err, fs.ErrNotExist) {
		// 128 random bits do not collide; an existing file here means the
		// random source is broken. Refuse rather than overwrite.
		return st, &PathError{Op: "save", Path: final, Err: fs.ErrExist}
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if err := f.fs.Rename(tmp, final); err != nil {
		return st, storage.Wrap("rename", tmp, err)
	}
	committed = true
	if err := storage.SyncDir(f.fs, storage.Dir(final)); err != nil {
		// The file is in place but may not survive a crash: report failure
		// and take it back, so no row comes to point at it.
		_ = f.fs.Remove(final)
		return st, err
	}
	return st, nil
}

// storeDirect writes the final name at once, on backends where a file
// created with O_EXCL appears whole when it is closed (object stores, see
// storage.AtomicCreator): no temp name, and no rename, which would be a
// copy there. A failure before Close aborts the upload. A failed Close may
// or may not have stored the object, so the name is then removed, best
// effort; it is a fresh random name no row can reference.
func (f *Field) storeDirect(ctx context.Context, up Upload, head []byte, final, ctype string) (stored, error) {
	file, err := f.fs.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return stored{}, storage.Wrap("create", final, err)
	}
	size, err := copyLimited(ctx, file, head, up.Body, f.maxSize)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if a, ok := file.(storage.Aborter); ok {
			_ = a.Abort()
		} else {
			_ = file.Close()
			_ = f.fs.Remove(final)
		}
		return stored{}, writeError(ctx, err, up.Name, final)
	}
	if err := file.Close(); err != nil {
		_ = f.fs.Remove(final)
		return stored{}, storage.Wrap("close", final, err)
	}
	return stored{path: final, size: size, contentType: ctype, created: true}, nil
}

// storeHashedDirect is storeDirect for content-hash names: the name is
// known only after the last byte, so the upload is spooled to a local
// temporary file (within the size limit) and hashed, then written to its
// final key. If that key exists, the same bytes are already stored.
func (f *Field) storeHashedDirect(ctx context.Context, up Upload, head []byte, tmpl, ext, ctype string) (stored, error) {
	spool, err := os.CreateTemp("", "mediaclean-spool-")
	if err != nil {
		return stored{}, err
	}
	defer func() {
		spool.Close()
		os.Remove(spool.Name())
	}()
	h := sha256.New()
	size, err := copyLimited(ctx, io.MultiWriter(spool, h), head, up.Body, f.maxSize)
	if err != nil {
		return stored{}, writeError(ctx, err, up.Name, "spool")
	}
	name := hex.EncodeToString(h.Sum(nil)[:16])
	final := storage.Join(f.resolveShard(tmpl, name), name+ext)
	existing := stored{path: final, size: size, contentType: ctype, created: false}
	if _, err := f.fs.Stat(final); err == nil {
		return existing, nil
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return stored{}, err
	}
	st, err := f.storeDirect(ctx, Upload{Body: spool, Name: up.Name}, nil, final, ctype)
	if errors.Is(err, fs.ErrExist) {
		return existing, nil // a concurrent upload of the same bytes won
	}
	return st, err
}

// writeError reports a failed write: a size rejection as ErrTooLarge on
// the client's name, a context error unwrapped, anything else on the path.
func writeError(ctx context.Context, err error, clientName, p string) error {
	switch {
	case errors.Is(err, ErrTooLarge):
		return &PathError{Op: "save", Path: clientName, Err: ErrTooLarge}
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	return storage.Wrap("write", p, err)
}

type typeError struct{ ctype string }

func (e *typeError) Error() string        { return ErrTypeNotAllowed.Error() + ": " + e.ctype }
func (e *typeError) Is(target error) bool { return target == ErrTypeNotAllowed }

// extension picks the stored file's extension: the sniffed type's own when
// it has one, else the client's, lowercased; either must be allowed.
func (f *Field) extension(ctype, clientName string) (string, bool) {
	if e, ok := typeExtensions[ctype]; ok {
		return e, f.exts[e]
	}
	base := clientName[strings.LastIndexAny(clientName, `/\`)+1:]
	e := strings.ToLower(path.Ext(base))
	if len(e) < 2 || len(e) > 11 {
		return "", false
	}
	for _, r := range e[1:] {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return "", false
		}
	}
	return e, f.exts[e]
}

// dirFor expands the date and owner placeholders of the directory template.
func (f *Field) dirFor(owner string) (string, error) {
	d := f.opts.Dir
	if strings.Contains(d, "{owner}") {
		if err := storage.ValidPath(owner); err != nil || strings.Contains(owner, "/") {
			return "", &PathError{Op: "save", Path: owner, Err: errors.Join(ErrUnsafePath, errors.New("owner must be one safe path segment"))}
		}
		d = strings.ReplaceAll(d, "{owner}", owner)
	}
	if strings.Contains(d, "{yyyy}") || strings.Contains(d, "{mm}") || strings.Contains(d, "{dd}") {
		now := f.clockNow().UTC()
		d = strings.NewReplacer("{yyyy}", now.Format("2006"), "{mm}", now.Format("01"), "{dd}", now.Format("02")).Replace(d)
	}
	if d == "" {
		return ".", nil
	}
	return d, nil
}

// resolveShard fills {shard} from name, or, with no name yet, cuts the
// template before {shard}.
func (f *Field) resolveShard(tmpl, name string) string {
	i := strings.Index(tmpl, "{shard}")
	switch {
	case i < 0:
		return tmpl
	case name != "":
		return strings.ReplaceAll(tmpl, "{shard}", name[:2])
	case i == 0:
		return "."
	}
	return strings.TrimSuffix(tmpl[:i], "/")
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyLimited writes head then the rest of r to w, failing with ErrTooLarge
// past max bytes (max < 0: no limit) and checking ctx between chunks.
func copyLimited(ctx context.Context, w io.Writer, head []byte, r io.Reader, max int64) (int64, error) {
	n, err := w.Write(head)
	total := int64(n)
	if err != nil {
		return total, err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			total += int64(m)
			if max >= 0 && total > max {
				return total, ErrTooLarge
			}
			if _, err := w.Write(buf[:m]); err != nil {
				return total, err
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
