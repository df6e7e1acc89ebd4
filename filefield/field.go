package filefield

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Defaults used when the matching Options field is zero.
const (
	DefaultMaxSize    = 10 << 20 // 10 MiB
	DefaultReuseGrace = 24 * time.Hour
	// DefaultPendingTimeout is how long a change may stay pending before
	// it is reported as abandoned.
	DefaultPendingTimeout = time.Hour
)

// DefaultTypes are the content types a field accepts when
// Options.AllowedTypes is empty: common images and PDF.
var DefaultTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"}

// typeExtensions maps sniffed content types to the extension stored files
// get. The client's file name is used for its extension only when the type
// has no entry here.
var typeExtensions = map[string]string{
	"image/jpeg":      ".jpg",
	"image/png":       ".png",
	"image/gif":       ".gif",
	"image/webp":      ".webp",
	"image/bmp":       ".bmp",
	"application/pdf": ".pdf",
	"text/plain":      ".txt",
}

// RefChecker answers whether any row other than the one being changed still
// references a stored path. Fields consult it before deleting an old
// file; an error or true keeps the file. It is storage.RefChecker, which
// sweep asks too.
type RefChecker = storage.RefChecker

// RefCheckerFunc adapts a function to [RefChecker] (and to the
// storage.RefChecker sweep.Options.Refs takes).
type RefCheckerFunc func(ctx context.Context, path string) (bool, error)

// IsReferenced calls f.
func (f RefCheckerFunc) IsReferenced(ctx context.Context, path string) (bool, error) {
	return f(ctx, path)
}

// Options configure a [Field]. The zero value gives documented defaults.
type Options struct {
	// Dir is the directory template new files go under, slash-separated and
	// relative to the storage root, such as "profile_pics" or
	// "qr_codes/{owner}/{yyyy}/{mm}". Placeholders: {owner} (Upload.Owner,
	// which must be a single safe path segment), {yyyy}, {mm}, {dd} (the
	// clock's UTC date) and {shard} (the first two characters of the new
	// name). The part before the segment of the first placeholder is
	// the field's directory: stored paths outside it are refused. A Dir
	// that starts with a placeholder ("{owner}/avatars") has no such
	// part; stored paths must then fit the template, each placeholder
	// standing for text within its segment ("42/avatars/..."). Empty
	// means the storage root.
	Dir string
	// MaxSize is the largest upload accepted, in bytes, enforced while
	// streaming. Zero means DefaultMaxSize; negative means no limit.
	MaxSize int64
	// AllowedTypes lists the content types accepted, as sniffed from the
	// first 512 bytes (net/http.DetectContentType), without parameters.
	// Empty means DefaultTypes. "*" accepts any type.
	AllowedTypes []string
	// Extensions lists the lowercase extensions (".jpg") stored names may
	// end with. Empty means the extensions of AllowedTypes; with "*" among
	// them, the extension of every type the field knows (.jpg, .png, .gif,
	// .webp, .bmp, .pdf, .txt) and ".bin" for any other type: the client's
	// own extension is used only when Extensions allows it.
	Extensions []string
	// HashNames names files by the SHA-256 of their content (first 128
	// bits, hex) instead of 128 random bits. Identical uploads then share
	// one file, which is touched (its modification time renewed) each time
	// an upload reuses it. A shared file may be in use by rows and by
	// uploads whose rows have not committed, so a HashNames field deletes
	// a file, on Commit or Rollback, only when Refs says no row uses it and
	// it was last written more than ReuseGrace ago; without Refs it never
	// deletes. What it keeps, the orphan finder collects later. An upload
	// reuses only a regular file of its own size that is younger than
	// ReuseGrace/2 when its renewal lands; its bytes otherwise go under a
	// random name.
	// So a reuse never meets a deletion under way, though another
	// process's locks are not seen and an object store's conditional
	// delete cannot tell the same bytes stored again. Within one Field, a
	// deletion and a reuse of the same file also exclude each other; use
	// one Field per kind of file for the life of the process.
	HashNames bool
	// ReuseGrace: with HashNames, files written or reused more recently
	// than this are never deleted, and only files written or reused less
	// than half of it ago are reused. Zero means DefaultReuseGrace (one
	// day, the orphan finder's default grace period; keep the finder's at
	// least this, for room against clock skew); negative means none, and
	// no file is reused.
	ReuseGrace time.Duration
	// Default is the field's default file ("profile_pics/default.png"),
	// which is never deleted. It is cleaned as a stored path ("/pics/a"
	// is "pics/a"); New panics if it cannot be one. A row's path is
	// compared with it without regard to case, as a case-insensitive disk
	// (macOS, Windows) resolves it.
	Default string
	// Protected lists globs (with "**") of stored paths that are never
	// deleted, compared as written and without regard to case; one that
	// matches a directory protects everything in it. A glob
	// that cannot match a stored path ("/pics/**", "pics/") panics in New.
	Protected []string
	// Keep makes the field keep old files instead of deleting them (history,
	// soft delete). Stale files are then reported as kept.
	Keep bool
	// Refs, when set, is asked before an old file is deleted. With
	// HashNames it is asked while the file's path is locked against
	// reuse by an upload of the same content in this process: a Refs
	// that stores or finishes a change of the same content waits for
	// itself.
	Refs RefChecker
	// Companions, when set, returns the stored paths of files that belong
	// with a stored file (thumbnails, variants); they are deleted with it.
	Companions func(path string) []string
	// Logger receives one structured line per event: stores and
	// deletions at Info, failures at Warn, decisions to keep at Debug
	// (see storage.LogEvent). Nil means silent.
	Logger *slog.Logger
	// OnEvent, when set, is called for every event, synchronously. Events
	// of a Commit or Rollback come while the change is being finished,
	// with no lock held (those of a content-named file's deletion once
	// its path lock goes): OnEvent may use the field, its scopes and
	// other changes, but a Commit of the change being committed (a
	// Rollback of one being rolled back) waits for that finish, and so
	// for itself.
	OnEvent func(Event)
	// Now is the clock for directory templates. Nil means time.Now.
	Now func() time.Time
	// PendingTimeout is how long a change may stay neither committed nor
	// rolled back: then it is reported as abandoned (an event with
	// ActionAbandon and ErrAbandoned, logged at Warn). Its files stay.
	// One an open scope holds stays claimable (Claim), so that a
	// statement that writes its path later still finishes it; one no
	// scope holds is forgotten (Claim no longer finds it), and its
	// Rollback, should it come, keeps the new file (KeptAbandoned), since
	// a row may have taken it meanwhile. What no one finishes, the orphan
	// finder collects. Zero means DefaultPendingTimeout; negative never
	// reports.
	PendingTimeout time.Duration
}

// Field is one kind of file kept by rows: profile pictures, e-signatures,
// forum images, receipts, QR codes. It stores uploads under safe unique
// names and swaps old files for new ones only when the database change that
// refers to them commits. A Field is safe for concurrent use.
type Field struct {
	name       string
	fs         afero.Fs
	opts       Options
	prefix     string // the field's directory: Dir before the segment of its first placeholder
	shape      string // with no such directory, a glob of the paths Dir makes
	maxSize    int64
	reuseGrace time.Duration
	anyType    bool
	binary     bool // unknown types are stored as .bin
	locks      *pathLocks
	pending    *pendingSet
	types      map[string]bool
	exts       map[string]bool
	clockNow   func() time.Time
}

// New returns a Field named name (used in events and logs) that stores
// files in fsys. It panics if opts.Dir or a protected glob is malformed:
// those are programming errors, not input.
func New(name string, fsys afero.Fs, opts Options) *Field {
	f := &Field{name: name, fs: fsys, opts: opts, maxSize: opts.MaxSize, clockNow: opts.Now, locks: newPathLocks(), pending: &pendingSet{}}
	if f.maxSize == 0 {
		f.maxSize = DefaultMaxSize
	}
	if f.opts.PendingTimeout == 0 {
		f.opts.PendingTimeout = DefaultPendingTimeout
	}
	if f.reuseGrace = opts.ReuseGrace; f.reuseGrace == 0 {
		f.reuseGrace = DefaultReuseGrace
	}
	if f.clockNow == nil {
		f.clockNow = time.Now
	}
	f.prefix = opts.Dir
	if i := strings.IndexByte(f.prefix, '{'); i >= 0 {
		// The directory ends before the segment of the first placeholder:
		// "pics/user-{owner}" stores under "pics".
		f.prefix = f.prefix[:max(0, strings.LastIndexByte(f.prefix[:i], '/'))]
		if f.prefix == "" {
			// No literal directory: stored paths must fit the template.
			f.shape = templateGlob(opts.Dir) + "/**"
		}
	}
	f.prefix = strings.TrimSuffix(f.prefix, "/")
	if f.prefix != "" {
		if err := storage.ValidPath(f.prefix); err != nil {
			panic(fmt.Sprintf("filefield: invalid Dir %q: %v", opts.Dir, err))
		}
	}
	if opts.Default != "" {
		d, err := storage.Clean(opts.Default, false)
		if err != nil {
			panic(fmt.Sprintf("filefield: invalid Default %q: %v", opts.Default, err))
		}
		f.opts.Default = d // as rows hold it: "/pics/default.png" is "pics/default.png"
	}
	if err := storage.ValidPath(strings.NewReplacer("{owner}", "o", "{yyyy}", "2006", "{mm}", "01", "{dd}", "02", "{shard}", "ab").Replace(opts.Dir) + "/x"); opts.Dir != "" && err != nil {
		panic(fmt.Sprintf("filefield: invalid Dir template %q: %v", opts.Dir, err))
	}
	if err := storage.CheckGlobs(opts.Protected...); err != nil {
		panic(fmt.Sprintf("filefield: invalid protected glob: %v", err))
	}
	f.setTypes(opts)
	return f
}

// setTypes derives the allowed content types and extensions from opts.
func (f *Field) setTypes(opts Options) {
	types := opts.AllowedTypes
	if len(types) == 0 {
		types = DefaultTypes
	}
	f.types = map[string]bool{}
	for _, t := range types {
		f.anyType = f.anyType || t == "*"
		f.types[t] = true
	}
	f.exts = map[string]bool{}
	for _, e := range opts.Extensions {
		f.exts[strings.ToLower(e)] = true
	}
	if len(f.exts) == 0 {
		for _, t := range types {
			if e, ok := typeExtensions[t]; ok {
				f.exts[e] = true
			}
		}
		if f.anyType {
			for _, e := range typeExtensions {
				f.exts[e] = true
			}
			f.binary = true
		}
	}
}

// Name returns the field's name.
func (f *Field) Name() string { return f.name }

// Fs returns the filesystem the field stores files in.
func (f *Field) Fs() afero.Fs { return f.fs }

// CheckPath validates a stored path read back from a row: it must be a
// valid stored path inside the field's directory. The error wraps
// ErrUnsafePath. CheckPath does not touch storage.
func (f *Field) CheckPath(p string) error {
	if err := storage.ValidPath(p); err != nil {
		return err
	}
	if p == f.opts.Default {
		return nil
	}
	if f.prefix != "" && !strings.HasPrefix(p, f.prefix+"/") {
		return &PathError{Op: "validate", Path: p, Err: fmt.Errorf("%w: outside the field's directory %q", ErrUnsafePath, f.prefix)}
	}
	if ok, _ := doublestar.Match(f.shape, p); f.shape != "" && !ok {
		return &PathError{Op: "validate", Path: p, Err: fmt.Errorf("%w: not a path the field's directory template %q makes", ErrUnsafePath, f.opts.Dir)}
	}
	return nil
}

// templateGlob returns a glob of the directories the template dir makes:
// each placeholder is any text within its segment, the rest literal.
func templateGlob(dir string) string {
	var b strings.Builder
	for i := 0; i < len(dir); i++ {
		if dir[i] == '{' {
			if j := strings.IndexByte(dir[i:], '}'); j > 0 && placeholder(dir[i:i+j+1]) {
				b.WriteByte('*')
				i += j
				continue
			}
		}
		b.WriteString(storage.QuoteGlob(dir[i : i+1]))
	}
	return b.String()
}

func placeholder(s string) bool {
	switch s {
	case "{owner}", "{yyyy}", "{mm}", "{dd}", "{shard}":
		return true
	}
	return false
}

// protected reports whether p may never be deleted.
func (f *Field) protected(p string) bool {
	return strings.EqualFold(p, f.opts.Default) || storage.Protects(f.opts.Protected, p)
}
