package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/afero"
)

// WithContext returns fsys bound to ctx where the backend can honour a
// context on every operation (network stores such as s3fs implement
// WithContext(context.Context) afero.Fs), and fsys itself otherwise.
func WithContext(ctx context.Context, fsys afero.Fs) afero.Fs {
	if b, ok := fsys.(interface {
		WithContext(context.Context) afero.Fs
	}); ok {
		return b.WithContext(ctx)
	}
	return fsys
}

// tempName returns a fresh temporary name: TempPrefix and 128 random bits
// in hex.
func tempName() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms
	return TempPrefix + hex.EncodeToString(b[:])
}

// validTempName reports whether base is a name tempName makes.
func validTempName(base string) bool {
	if len(base) != len(TempPrefix)+32 || !strings.HasPrefix(base, TempPrefix) {
		return false
	}
	for _, c := range []byte(base[len(TempPrefix):]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// WriteOptions configure a careful write.
type WriteOptions struct {
	// Replace lets the write replace an existing file. By default a
	// write never does: Commit fails with an error matching fs.ErrExist
	// and the existing file stays as it was.
	Replace bool
	// FreshName says the name is this write's alone (128 random bits, say)
	// and nobody else writes it: then a commit that fails after the file
	// may have reached its name (a failed Close on an object store, where
	// the object may or may not have been stored; a failed directory sync
	// after the rename) removes it, so that no row comes to point at a
	// file whose write reported failure. Any other name is left as it is.
	FreshName bool
}

// PendingFile is a file being written carefully: its content becomes
// visible under its final name whole, or not at all. On most backends it
// is written to a temporary name (TempPrefix and 128 random bits) in the
// target directory, created with O_EXCL, then synced, closed and renamed
// into place, and the directory is synced. On backends with
// [Features].AtomicCreate (object stores) the final name is written
// directly, create-only unless Replace, since a file appears whole on
// Close there and a rename is a copy.
//
// Nothing a PendingFile does removes a file it did not create: a failure
// before the rename removes its temporary file; once the final name holds
// the content, or when a create-only write finds the name taken, nothing
// is removed, unless WriteOptions.FreshName says no one else can have
// written that name. A PendingFile is not safe for concurrent use.
type PendingFile struct {
	ctx   context.Context
	fs    afero.Fs
	f     afero.File
	name  string // the name given to Create
	tmp   string // temporary name; "" when writing name directly
	opts  WriteOptions
	state int
	// newDir: the write made its directory (or may have: a content name's
	// directory), whose entry in its parent must be synced too
	newDir bool
}

const (
	pendingOpen = iota
	pendingDone
)

// Create starts a careful write of name, creating its directory if
// needed.
func Create(ctx context.Context, fsys afero.Fs, name string, opts WriteOptions) (*PendingFile, error) {
	fsys = WithContext(ctx, fsys)
	p := &PendingFile{ctx: ctx, fs: fsys, name: name, opts: opts}
	if FeaturesOf(fsys).AtomicCreate {
		flag := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if opts.Replace {
			flag = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		return p, p.open(name, flag)
	}
	p.tmp = join(dirOf(name), tempName())
	return p, p.open(p.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
}

func (p *PendingFile) open(name string, flag int) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if err := noLinkDirs(p.fs, dirOf(name)); err != nil {
		return wrap("create", name, err)
	}
	f, err := p.fs.OpenFile(name, flag, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory is made on first use only: most writes go to a
		// directory that exists, and checking every time costs a lookup.
		if err := p.fs.MkdirAll(dirOf(name), 0o755); err != nil {
			return wrap("mkdir", dirOf(name), err)
		}
		p.newDir = true
		f, err = p.fs.OpenFile(name, flag, 0o644)
	}
	if err != nil {
		return wrap("create", name, err)
	}
	p.f = f
	return nil
}

// Write writes b, failing once the context is done.
func (p *PendingFile) Write(b []byte) (int, error) {
	if p.state != pendingOpen {
		return 0, &PathError{Op: "write", Path: p.name, Err: fs.ErrClosed}
	}
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	return p.f.Write(b)
}

// Commit makes the content visible under name, usually the name given
// to Create: the file is synced, closed and renamed into place (never
// replacing an existing file unless WriteOptions.Replace), and name's
// directory is synced. Another name (a content hash known only once the
// content is written) works where the file was written under a temporary
// name, not on object stores. Any failure before the rename removes the
// temporary file. An error matching fs.ErrExist means name was taken and
// is left as it was.
func (p *PendingFile) Commit(name string) error {
	if p.state != pendingOpen {
		return &PathError{Op: "commit", Path: name, Err: fs.ErrClosed}
	}
	p.state = pendingDone
	if p.tmp == "" {
		// Written directly: Close stores it, or reports why not. A failed
		// Close never leads to a removal: a create-only write that lost
		// a race left the winner's file, and any other failure may or
		// may not have stored the object.
		if name != p.name {
			p.f.Close()
			return &PathError{Op: "commit", Path: name, Err: errors.ErrUnsupported}
		}
		if err := p.ctx.Err(); err != nil {
			p.abortDirect()
			return err
		}
		err := p.f.Close()
		if err != nil && p.opts.FreshName && !errors.Is(err, fs.ErrExist) {
			_ = p.fs.Remove(name) // ours alone: it may have been stored
		}
		return wrap("write", name, err)
	}
	err := p.f.Sync()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.ctx.Err()
	}
	if err == nil && dirOf(name) != dirOf(p.tmp) {
		err = noLinkDirs(p.fs, dirOf(name))
		if _, serr := lstat(p.fs, dirOf(name)); serr != nil {
			p.newDir = true // the move makes it
		}
	}
	if err == nil {
		if p.opts.Replace {
			err = p.fs.Rename(p.tmp, name)
		} else {
			err = MoveFile(p.fs, p.tmp, name)
		}
	}
	if err != nil {
		_ = p.fs.Remove(p.tmp) // our own O_EXCL temporary file
		return wrap("write", name, err)
	}
	if err := p.syncDirs(dirOf(name)); err != nil {
		// In place, but it may not survive a crash.
		if p.opts.FreshName {
			_ = p.fs.Remove(name)
		}
		return err
	}
	return nil
}

// syncDirs syncs dir, which now holds the file, and, when the write made
// directories, every directory above it up to the root: a new
// directory's own entry is in its parent, and a crash could otherwise
// take it, and the file with it, after the row that names the file
// committed.
func (p *PendingFile) syncDirs(dir string) error {
	for {
		if err := syncDir(p.fs, dir); err != nil || !p.newDir || dir == "." {
			return err
		}
		dir = dirOf(dir)
	}
}

// Abort discards the write: the temporary file is removed, a direct write
// is aborted without storing anything where the backend allows it. Abort
// after Commit does nothing.
func (p *PendingFile) Abort() {
	if p.state != pendingOpen {
		return
	}
	p.state = pendingDone
	if p.tmp != "" {
		p.f.Close()
		_ = p.fs.Remove(p.tmp) // our own O_EXCL temporary file
		return
	}
	p.abortDirect()
}

// abortDirect discards a direct write. Files of object stores abort
// without storing; on a backend whose files cannot, Close stores what was
// written, which is removed only if this write created it (create-only):
// otherwise the file belongs to someone else.
func (p *PendingFile) abortDirect() {
	if a, ok := p.f.(interface{ Abort() error }); ok {
		_ = a.Abort()
		return
	}
	if err := p.f.Close(); err == nil && !p.opts.Replace {
		_ = p.fs.Remove(p.name)
	}
}

// noLinkDirs checks that no existing segment of dir is a symbolic link
// or a file: a write through one would land elsewhere in the tree, or
// outside it. Missing segments are fine; they are made. It runs on
// NoFollow backends too: RootFs refuses links when it renames or removes,
// but creates files through links that stay inside its root, so a
// temporary file made through one could be neither renamed nor removed.
func noLinkDirs(fsys afero.Fs, dir string) error {
	for d := dir; d != "." && d != ""; d = dirOf(d) {
		fi, err := lstat(fsys, d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return ErrSymlink
		case !fi.IsDir():
			return ErrNotRegular
		}
	}
	return nil
}
