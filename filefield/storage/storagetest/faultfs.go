package storagetest

import (
	"context"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// OpKind names a kind of filesystem operation that a [FaultFs] counts.
type OpKind string

// The operations a FaultFs counts, records and can fail.
const (
	OpCreate  OpKind = "create"  // Create, or OpenFile with O_CREATE
	OpOpen    OpKind = "open"    // Open, or OpenFile without O_CREATE
	OpWrite   OpKind = "write"   // a Write, WriteAt, WriteString or ReadFrom on a file
	OpRead    OpKind = "read"    // a Read or ReadAt on a file
	OpSync    OpKind = "sync"    // Sync on a file
	OpClose   OpKind = "close"   // Close on a file
	OpRename  OpKind = "rename"  // Rename (Path is the old name)
	OpRemove  OpKind = "remove"  // Remove, RemoveAll, or one path of RemoveFiles
	OpMkdir   OpKind = "mkdir"   // Mkdir or MkdirAll
	OpStat    OpKind = "stat"    // Stat, LstatIfPossible, or one path of StatFiles
	OpChtimes OpKind = "chtimes" // Chtimes, Chmod, Chown
	OpList    OpKind = "list"    // Readdir, Readdirnames, or a whole ListFiles
)

// Op is one recorded operation.
type Op struct {
	Kind OpKind // what was asked
	Path string // of which path (the old one, for a rename)
	// Flag holds the OpenFile flags for OpCreate and OpOpen.
	Flag int
}

// String returns "kind path".
// String returns "kind path".
func (o Op) String() string { return string(o.Kind) + " " + o.Path }

// Fault says which operation a [FaultFs] fails. The zero Fault fails
// nothing, which makes the FaultFs a spy.
type Fault struct {
	// N is the 1-based number of the operation to fail, counting only
	// operations of Kind when Kind is set. Zero fails nothing.
	N int
	// Kind restricts counting to one kind of operation; empty counts all.
	Kind OpKind
	// Err is the error returned; nil means ENOSPC (a full disk).
	Err error
	// Sticky makes every matching operation from the Nth on fail, like a
	// disk that stays full.
	Sticky bool
}

// FaultFs wraps an [afero.Fs], records every operation, and fails the one
// its [Fault] selects. Files it opens are wrapped too, so writes, syncs and
// closes are counted. It reports the wrapped backend's storage.Features
// and forwards the storage fast paths (Lister, Stater, Remover, Mover,
// afero.Lstater, WithContext) through the storage helpers, which fall back
// to portable code where the backend has no fast path: code under test
// takes the same decisions as on the wrapped backend, and gets the same
// results.
// It is safe for concurrent use.
type FaultFs struct {
	fs afero.Fs
	*faultState
}

type faultState struct {
	mu    sync.Mutex
	fault Fault
	count int
	fired int
	ops   []Op
}

// NewFaultFs wraps fs, failing the operation f selects.
func NewFaultFs(fs afero.Fs, f Fault) *FaultFs {
	if f.Err == nil {
		f.Err = syscall.ENOSPC
	}
	return &FaultFs{fs: fs, faultState: &faultState{fault: f}}
}

// Features reports the wrapped backend's storage.Features.
func (f *FaultFs) Features() storage.Features { return storage.FeaturesOf(f.fs) }

// WithContext returns a FaultFs over the wrapped backend bound to ctx
// (see storage.WithContext) that shares this one's fault and records.
func (f *FaultFs) WithContext(ctx context.Context) afero.Fs {
	return &FaultFs{fs: storage.WithContext(ctx, f.fs), faultState: f.faultState}
}

// MoveFile implements storage.Mover, counted as an OpRename of oldname.
func (f *FaultFs) MoveFile(oldname, newname string) error {
	if err := f.hook(Op{Kind: OpRename, Path: oldname}); err != nil {
		return err
	}
	return storage.MoveFile(f.fs, oldname, newname)
}

// NewSpyFs wraps fs, recording every operation and failing none.
func NewSpyFs(fs afero.Fs) *FaultFs { return NewFaultFs(fs, Fault{}) }

// Ops returns a copy of the operations recorded so far.
func (f *FaultFs) Ops() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Op(nil), f.ops...)
}

// Fired reports how many operations the fault has failed.
func (f *FaultFs) Fired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

// Reset clears the recorded operations and the counter, and arms fault.
func (f *FaultFs) Reset(fault Fault) {
	if fault.Err == nil {
		fault.Err = syscall.ENOSPC
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault, f.count, f.fired, f.ops = fault, 0, 0, nil
}

// hook records op and returns the injected error if op is the one to fail.
func (f *FaultFs) hook(op Op) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	if f.fault.N == 0 || (f.fault.Kind != "" && f.fault.Kind != op.Kind) {
		return nil
	}
	f.count++
	if f.count == f.fault.N || (f.fault.Sticky && f.count > f.fault.N) {
		f.fired++
		return &os.PathError{Op: string(op.Kind), Path: op.Path, Err: f.fault.Err}
	}
	return nil
}

// Name returns "FaultFs(" plus the wrapped backend's name.
func (f *FaultFs) Name() string { return "FaultFs(" + f.fs.Name() + ")" }

// Create implements afero.Fs.
func (f *FaultFs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Mkdir implements afero.Fs.
func (f *FaultFs) Mkdir(name string, perm os.FileMode) error {
	if err := f.hook(Op{Kind: OpMkdir, Path: name}); err != nil {
		return err
	}
	return f.fs.Mkdir(name, perm)
}

// MkdirAll implements afero.Fs.
func (f *FaultFs) MkdirAll(name string, perm os.FileMode) error {
	if err := f.hook(Op{Kind: OpMkdir, Path: name}); err != nil {
		return err
	}
	return f.fs.MkdirAll(name, perm)
}

// Open implements afero.Fs.
func (f *FaultFs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile implements afero.Fs.
func (f *FaultFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	kind := OpOpen
	if flag&os.O_CREATE != 0 {
		kind = OpCreate
	}
	if err := f.hook(Op{Kind: kind, Path: name, Flag: flag}); err != nil {
		return nil, err
	}
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	ff := &faultFile{File: file, fs: f, path: name}
	if _, ok := file.(interface{ Abort() error }); ok {
		return &abortableFile{ff}, nil
	}
	return ff, nil
}

// Remove implements afero.Fs.
func (f *FaultFs) Remove(name string) error {
	if err := f.hook(Op{Kind: OpRemove, Path: name}); err != nil {
		return err
	}
	return f.fs.Remove(name)
}

// RemoveAll implements afero.Fs.
func (f *FaultFs) RemoveAll(name string) error {
	if err := f.hook(Op{Kind: OpRemove, Path: name}); err != nil {
		return err
	}
	return f.fs.RemoveAll(name)
}

// Rename implements afero.Fs.
func (f *FaultFs) Rename(oldname, newname string) error {
	if err := f.hook(Op{Kind: OpRename, Path: oldname}); err != nil {
		return err
	}
	return f.fs.Rename(oldname, newname)
}

// Stat implements afero.Fs.
func (f *FaultFs) Stat(name string) (os.FileInfo, error) {
	if err := f.hook(Op{Kind: OpStat, Path: name}); err != nil {
		return nil, err
	}
	return f.fs.Stat(name)
}

// LstatIfPossible implements afero.Lstater.
func (f *FaultFs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	if err := f.hook(Op{Kind: OpStat, Path: name}); err != nil {
		return nil, false, err
	}
	if l, ok := f.fs.(afero.Lstater); ok {
		return l.LstatIfPossible(name)
	}
	fi, err := f.fs.Stat(name)
	return fi, false, err
}

// Chmod implements afero.Fs.
func (f *FaultFs) Chmod(name string, mode os.FileMode) error {
	if err := f.hook(Op{Kind: OpChtimes, Path: name}); err != nil {
		return err
	}
	return f.fs.Chmod(name, mode)
}

// Chown implements afero.Fs.
func (f *FaultFs) Chown(name string, uid, gid int) error {
	if err := f.hook(Op{Kind: OpChtimes, Path: name}); err != nil {
		return err
	}
	return f.fs.Chown(name, uid, gid)
}

// Chtimes implements afero.Fs.
func (f *FaultFs) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.hook(Op{Kind: OpChtimes, Path: name}); err != nil {
		return err
	}
	return f.fs.Chtimes(name, atime, mtime)
}

// ListFiles implements storage.Lister, counting the whole listing as one
// OpList, through storage.List on the wrapped backend (its fast path when
// it has one).
func (f *FaultFs) ListFiles(ctx context.Context, opts storage.ListOptions, fn func(storage.Entry) error) error {
	if err := f.hook(Op{Kind: OpList, Path: opts.Dir}); err != nil {
		return err
	}
	return storage.List(ctx, f.fs, opts, fn)
}

// StatFiles implements storage.Stater, counting one OpStat per path; a
// failed path fails the whole call, as a failing stat does.
func (f *FaultFs) StatFiles(ctx context.Context, paths []string, fn func(int, storage.Entry) error) error {
	for _, p := range paths {
		if err := f.hook(Op{Kind: OpStat, Path: p}); err != nil {
			return err
		}
	}
	return storage.Restat(ctx, f.fs, paths, fn)
}

// RemoveFiles implements storage.Remover, counting one OpRemove per
// path; paths whose operation is failed are not passed on.
func (f *FaultFs) RemoveFiles(ctx context.Context, targets []storage.Target) []error {
	errs := make([]error, len(targets))
	var pass []storage.Target
	var idx []int
	for i, t := range targets {
		if err := f.hook(Op{Kind: OpRemove, Path: t.Path}); err != nil {
			errs[i] = err
			continue
		}
		pass = append(pass, t)
		idx = append(idx, i)
	}
	for j, err := range storage.RemoveFiles(ctx, f.fs, pass) {
		errs[idx[j]] = err
	}
	return errs
}

// RemoveDir implements storage.Remover, counted as an OpRemove: through
// the wrapped backend's RemoveDir, or, on a backend without one, by
// removing name only if Lstat shows a directory.
func (f *FaultFs) RemoveDir(name string) error {
	if err := f.hook(Op{Kind: OpRemove, Path: name}); err != nil {
		return err
	}
	if r, ok := f.fs.(storage.Remover); ok {
		return r.RemoveDir(name)
	}
	fi, err := lstat(f.fs, name)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &os.PathError{Op: "rmdir", Path: name, Err: storage.ErrChanged}
	}
	return f.fs.Remove(name)
}

func lstat(fsys afero.Fs, name string) (os.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	return fsys.Stat(name)
}

type faultFile struct {
	afero.File
	fs   *FaultFs
	path string
}

func (ff *faultFile) Write(p []byte) (int, error) {
	if err := ff.fs.hook(Op{Kind: OpWrite, Path: ff.path}); err != nil {
		return 0, err
	}
	return ff.File.Write(p)
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err := ff.fs.hook(Op{Kind: OpWrite, Path: ff.path}); err != nil {
		return 0, err
	}
	return ff.File.WriteAt(p, off)
}

func (ff *faultFile) WriteString(s string) (int, error) {
	return ff.Write([]byte(s))
}

// ReadFrom makes io.Copy go through Write, so every chunk is counted.
func (ff *faultFile) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{ff}, r)
}

func (ff *faultFile) Read(p []byte) (int, error) {
	if err := ff.fs.hook(Op{Kind: OpRead, Path: ff.path}); err != nil {
		return 0, err
	}
	return ff.File.Read(p)
}

func (ff *faultFile) ReadAt(p []byte, off int64) (int, error) {
	if err := ff.fs.hook(Op{Kind: OpRead, Path: ff.path}); err != nil {
		return 0, err
	}
	return ff.File.ReadAt(p, off)
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.hook(Op{Kind: OpSync, Path: ff.path}); err != nil {
		return err
	}
	return ff.File.Sync()
}

func (ff *faultFile) Close() error {
	err := ff.fs.hook(Op{Kind: OpClose, Path: ff.path})
	// The handle is released even when the close is reported as failed, as
	// a real close does: a failed close must not leak descriptors.
	cerr := ff.File.Close()
	if err != nil {
		return err
	}
	return cerr
}

// abortableFile is a faultFile over a file that can be discarded without
// being stored (an object store's upload): it forwards Abort.
type abortableFile struct{ *faultFile }

func (af *abortableFile) Abort() error {
	return af.File.(interface{ Abort() error }).Abort()
}

func (ff *faultFile) Readdir(n int) ([]os.FileInfo, error) {
	if err := ff.fs.hook(Op{Kind: OpList, Path: ff.path}); err != nil {
		return nil, err
	}
	return ff.File.Readdir(n)
}

func (ff *faultFile) Readdirnames(n int) ([]string, error) {
	if err := ff.fs.hook(Op{Kind: OpList, Path: ff.path}); err != nil {
		return nil, err
	}
	return ff.File.Readdirnames(n)
}
