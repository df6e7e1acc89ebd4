package filefield

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

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

// store writes the upload to its final path through a careful write
// (storage.PendingFile): validate and sniff, write to a temporary name
// with O_EXCL in the target directory, sync, close, rename into place
// without replacing anything, sync the directory; on object stores
// the final key is written directly, create-only. On any failure what
// was written is discarded; nothing that this call did not create is
// ever removed.
func (f *Field) store(ctx context.Context, up Upload, res *reservation) (stored, error) {
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
	// The stored path, whatever its name: a long owner in a long
	// template may make one longer than a stored path may be, which no
	// later Rollback or Replace could act on.
	zeros := strings.Repeat("0", 32)
	if err := storage.ValidPath(path.Join(f.resolveShard(tmpl, zeros), zeros+ext)); err != nil {
		return st, &PathError{Op: "save", Path: up.Owner, Err: errors.Join(ErrUnsafePath, fmt.Errorf("the path it makes is not a safe stored path: %w", err))}
	}
	if f.opts.HashNames {
		if storage.FeaturesOf(f.fs).AtomicCreate {
			return f.storeHashedDirect(ctx, up, head, tmpl, ext, ctype, res)
		}
		return f.storeHashed(ctx, up, head, tmpl, ext, ctype, res)
	}
	name := randomName()
	final := path.Join(f.resolveShard(tmpl, name), name+ext)
	res.add(final)
	pf, err := storage.Create(ctx, f.fs, final, storage.WriteOptions{FreshName: true})
	if err != nil {
		return st, err
	}
	size, err := copyLimited(ctx, pf, head, up.Body, f.maxSize)
	if err != nil {
		pf.Abort()
		return st, writeError(ctx, err, up.Name, final)
	}
	if err := pf.Commit(final); err != nil {
		// fs.ErrExist: 128 random bits do not collide, so the random
		// source is broken; nothing was replaced.
		return st, writeError(ctx, err, up.Name, final)
	}
	return stored{path: final, size: size, contentType: ctype, created: true}, nil
}

// storeHashed writes a content-named file: to a temporary name in the
// template's directory (before {shard}, which needs the name), then,
// once the hash is known, renamed to it without replacing anything. If
// the name is taken by a file that can stand for the upload (see
// reuse), that file is used and touched, so that its age says it is in
// use again; by anything else, the bytes go under a random name of
// their own.
func (f *Field) storeHashed(ctx context.Context, up Upload, head []byte, tmpl, ext, ctype string, res *reservation) (stored, error) {
	// A provisional name in the directory before {shard}; Commit gives
	// the real one.
	pf, err := storage.Create(ctx, f.fs, path.Join(f.resolveShard(tmpl, ""), "pending"+ext), storage.WriteOptions{})
	if err != nil {
		return stored{}, err
	}
	h := sha256.New()
	size, err := copyLimited(ctx, io.MultiWriter(pf, h), head, up.Body, f.maxSize)
	if err != nil {
		pf.Abort()
		return stored{}, writeError(ctx, err, up.Name, "")
	}
	name := hex.EncodeToString(h.Sum(nil)[:16])
	st := stored{path: path.Join(f.resolveShard(tmpl, name), name+ext), size: size, contentType: ctype, created: true}
	res.add(st.path)
	own := func() (stored, error) {
		rname := randomName()
		st.path = path.Join(f.resolveShard(tmpl, rname), rname+ext)
		res.add(st.path)
		if err := pf.Commit(st.path); err != nil {
			return stored{}, writeError(ctx, err, up.Name, st.path)
		}
		return st, nil
	}
	unlock := f.locks.share(st.path)
	if unlock == nil {
		// This process is deleting the file with these bytes right now:
		// they are stored under a name of their own instead.
		return own()
	}
	defer unlock()
	if reused, taken := f.reuse(ctx, st.path, size, nil); taken {
		if !reused {
			return own()
		}
		pf.Abort()
		st.created = false
		return st, nil
	}
	err = pf.Commit(st.path)
	if errors.Is(err, fs.ErrExist) {
		// Stored in between, by another process: just written, so it
		// can stand for the upload unless it is not such a file at all.
		// If not, the bytes are gone with the failed move; the client can
		// upload again.
		if reused, _ := f.reuse(ctx, st.path, size, nil); reused {
			st.created = false
			return st, nil
		}
	}
	if err != nil {
		return stored{}, writeError(ctx, err, up.Name, st.path)
	}
	return st, nil
}

// storeHashedDirect is storeHashed for object stores, where a file is
// written under its final key: the name is known only after the last
// byte, so the upload is spooled to a local temporary file (within the
// size limit) and hashed, then written create-only. If the key exists
// and that object can stand for the upload (see reuse), it is used;
// otherwise the bytes go under a random name of their own.
func (f *Field) storeHashedDirect(ctx context.Context, up Upload, head []byte, tmpl, ext, ctype string, res *reservation) (stored, error) {
	spool, err := storage.CreateTemp("", "mediaclean-spool-")
	if err != nil {
		return stored{}, err
	}
	defer spool.Close() // and removed: the local spool, not user storage
	h := sha256.New()
	size, err := copyLimited(ctx, io.MultiWriter(spool, h), head, up.Body, f.maxSize)
	if err != nil {
		return stored{}, writeError(ctx, err, up.Name, "spool")
	}
	name := hex.EncodeToString(h.Sum(nil)[:16])
	st := stored{path: path.Join(f.resolveShard(tmpl, name), name+ext), size: size, contentType: ctype, created: true}
	res.add(st.path)
	rewrite := func(opts storage.WriteOptions) error {
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		pf, err := storage.Create(ctx, f.fs, st.path, opts)
		if err != nil {
			return err
		}
		if _, err := copyLimited(ctx, pf, nil, spool, -1); err != nil {
			pf.Abort()
			return err
		}
		return pf.Commit(st.path)
	}
	own := func() (stored, error) {
		rname := randomName()
		st.path = path.Join(f.resolveShard(tmpl, rname), rname+ext)
		st.created = true
		res.add(st.path)
		if err := rewrite(storage.WriteOptions{FreshName: true}); err != nil {
			return stored{}, writeError(ctx, err, up.Name, st.path)
		}
		return st, nil
	}
	unlock := f.locks.share(st.path)
	if unlock == nil {
		// This process is deleting the object with these bytes right
		// now: they are stored under a name of their own instead.
		return own()
	}
	defer unlock()
	err = rewrite(storage.WriteOptions{})
	if errors.Is(err, fs.ErrExist) {
		// An object has the name (perhaps a concurrent upload of the
		// same bytes won the create-only write). It is someone else's as
		// much as ours, so nothing is removed: it is used if it can
		// stand for the upload, else the bytes get a name of their own.
		if reused, _ := f.reuse(ctx, st.path, size, func() error { return rewrite(storage.WriteOptions{Replace: true}) }); !reused {
			return own()
		}
		st.created = false
		return st, nil
	}
	if err != nil {
		return stored{}, writeError(ctx, err, up.Name, st.path)
	}
	return st, nil
}

// reuse renews the file stored at the content name p for an upload of
// size bytes, if it can stand for it, and reports whether it did
// (reused) and whether something is stored there (taken). It can if it
// is a regular file of that size, written or reused less than half of
// ReuseGrace ago when the renewal lands (never, with a negative
// ReuseGrace). A deletion of a content-named file, by this Field or by
// another process's, needs the file older than ReuseGrace when it is
// checked for the last time, and the orphan finder needs it older than
// its grace period; a reuse renews the file only while it is younger
// than either. So no deletion is under way while a reuse happens, though
// neither sees the other's locks, and though on an object store the
// renewal, which stores the same bytes again, keeps the ETag a
// conditional delete compares. A file it cannot stand for is left alone;
// a failed check or renewal says taken and not reused.
func (f *Field) reuse(ctx context.Context, p string, size int64, rewrite func() error) (reused, taken bool) {
	var now *storage.Entry
	err := storage.Restat(ctx, f.fs, []string{p}, func(_ int, e storage.Entry) error { now = &e; return nil })
	switch {
	case err != nil:
		return false, true
	case now == nil:
		return false, false
	case f.reuseGrace < 0, // no grace: a deletion may be under way at any age
		!now.Type.IsRegular(), now.Size != size, time.Since(now.ModTime) >= f.reuseGrace/2:
		return false, true
	case f.touch(ctx, p, rewrite) != nil:
		return false, true
	}
	// The renewal took time (a whole upload again, on an object store):
	// the file must still have been young when it landed.
	return time.Since(now.ModTime) < f.reuseGrace/2, true
}

// touch marks the content-named file p as in use again by setting its
// modification time to now: the orphan finder's grace period and
// filefield's own ReuseGrace then keep it while the row that reuses it
// commits. On backends that cannot set times (object stores) rewrite,
// when given, stores the same bytes again, which renews the time.
func (f *Field) touch(ctx context.Context, p string, rewrite func() error) error {
	now := time.Now()
	err := storage.WithContext(ctx, f.fs).Chtimes(p, now, now)
	if errors.Is(err, errors.ErrUnsupported) && rewrite != nil {
		err = rewrite()
	}
	if err != nil {
		// Gone in between (a delete raced the reuse): report it, the
		// client can upload again. Nothing was stored.
		return &PathError{Op: "touch", Path: p, Err: err}
	}
	return nil
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
	var pe *PathError
	if errors.As(err, &pe) {
		return err // named already
	}
	return &PathError{Op: "write", Path: p, Err: err}
}

type typeError struct{ ctype string }

func (e *typeError) Error() string        { return ErrTypeNotAllowed.Error() + ": " + e.ctype }
func (e *typeError) Is(target error) bool { return target == ErrTypeNotAllowed }

// extension picks the stored file's extension: the sniffed type's own when
// it has one, else ".bin" for a field that takes any type with no
// extension list, else the client's, lowercased; it must be allowed.
func (f *Field) extension(ctype, clientName string) (string, bool) {
	if e, ok := typeExtensions[ctype]; ok {
		return e, f.exts[e]
	}
	if f.binary {
		return ".bin", true
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
		// Braces too: an owner "{yyyy}" would be read as the placeholder
		// after it is put in, and land in another owner's directory.
		if err := storage.ValidPath(owner); err != nil || strings.ContainsAny(owner, "/{}") {
			return "", &PathError{Op: "save", Path: owner, Err: errors.Join(ErrUnsafePath, errors.New("owner must be one safe path segment, without braces"))}
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
	// An owner that is safe alone may not be within a segment: a
	// combining accent after "user" is no longer in normal form C.
	if err := storage.ValidPath(strings.ReplaceAll(d, "{shard}", "ab") + "/x"); err != nil {
		return "", &PathError{Op: "save", Path: owner, Err: errors.Join(ErrUnsafePath, fmt.Errorf("the directory it makes is not a safe stored path: %w", err))}
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
