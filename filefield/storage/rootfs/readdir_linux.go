package rootfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileID identifies a directory entry for the check that the directory a
// walk opens is the one it listed.
type fileID struct{ dev, ino uint64 }

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// readDirHandle reads the directory open as d with getdents into a 64 kB
// buffer and one fstatat(AT_SYMLINK_NOFOLLOW) per file or directory on
// the directory's descriptor: the system calls find makes. It parses the
// records itself, so each entry costs one string (prefix + name, the name
// being its tail) instead of a name, a path and a FileInfo; links, FIFOs,
// sockets and devices are typed from the record without a stat. A
// regular file for which skipStat (when not nil) returns true is typed
// from the record too, leaving size and time zero: a stat costs more than
// reading the record did. Entries removed while reading are skipped.
func readDirHandle(d *os.Root, prefix string, skipStat func(path string) bool) ([]dirEntry, error) {
	f, err := d.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	var out []dirEntry
	var ierr error
	cerr := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		ierr = eachRecord(int(fd), buf, func(n int) {
			if out == nil {
				// Records of short names take about 32 bytes: size the slice
				// once rather than growing it ten times per directory.
				out = make([]dirEntry, 0, n/32+1)
			}
		}, func(typ uint8, raw []byte) error {
			path := prefix + string(raw)
			e := dirEntry{path: path, name: path[len(prefix):]}
			if typ != unix.DT_REG && typ != unix.DT_DIR && typ != unix.DT_UNKNOWN || typ == unix.DT_REG && skipStat != nil && skipStat(path) {
				// Links, FIFOs, sockets, devices: typed from the record
				// (d_type is the S_IFMT bits shifted right by 12).
				e.typ = modeType(uint32(typ) << 12)
				out = append(out, e)
				return nil
			}
			// Regular files, directories and DT_UNKNOWN: stat for size,
			// time, identity (and type, when the record had none).
			if err := unix.Fstatat(int(fd), e.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if err == unix.ENOENT {
					return nil // removed while reading
				}
				return &os.PathError{Op: "fstatat", Path: e.name, Err: err}
			}
			e.mod, e.id = time.Unix(st.Mtim.Unix()), fileID{uint64(st.Dev), st.Ino}
			if e.typ = modeType(st.Mode); e.typ == 0 {
				e.size = st.Size
			}
			out = append(out, e)
			return nil
		})
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, ierr
}

// eachRecord reads the directory open as fd with getdents into buf and
// calls fn with the type and name of every record but "." and "..";
// first, when not nil, learns the size of the first read.
func eachRecord(fd int, buf []byte, first func(n int), fn func(typ uint8, name []byte) error) error {
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		if first != nil {
			first(n)
			first = nil
		}
		for rec := buf[:n]; len(rec) >= 19; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(rec[16:18]))
			if reclen < 19 || reclen > len(rec) {
				return errors.New("getdents: malformed record")
			}
			typ, raw := rec[18], rec[19:reclen]
			rec = rec[reclen:]
			if i := bytes.IndexByte(raw, 0); i >= 0 {
				raw = raw[:i]
			}
			if len(raw) == 0 || (raw[0] == '.' && (len(raw) == 1 || (len(raw) == 2 && raw[1] == '.'))) {
				continue
			}
			if err := fn(typ, raw); err != nil {
				return err
			}
		}
	}
}

// statNames stats names inside the directory open as d with one
// fstatat(AT_SYMLINK_NOFOLLOW) each on its descriptor, calling fn for each
// that exists, with its index in names. A name that is gone is skipped.
func statNames(d *os.Root, names []string, fn func(i int, size int64, mod time.Time, typ fs.FileMode)) error {
	f, err := d.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		for i, name := range names {
			err := unix.Fstatat(int(fd), name, &st, unix.AT_SYMLINK_NOFOLLOW)
			if err == unix.ENOENT {
				continue
			}
			if err != nil {
				serr = &os.PathError{Op: "fstatat", Path: name, Err: err}
				return
			}
			typ := modeType(st.Mode)
			var size int64
			if typ == 0 {
				size = st.Size
			}
			fn(i, size, time.Unix(st.Mtim.Unix()), typ)
		}
	})
	if cerr != nil {
		return cerr
	}
	return serr
}

// modeType maps the S_IFMT bits of a stat mode to fs.FileMode type bits;
// a regular file is 0.
func modeType(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// sameDir reports whether the directory open as sub is the one listed as
// id.
func sameDir(sub *os.Root, id fileID) bool {
	fi, err := sub.Stat(".")
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == id.dev && st.Ino == id.ino
}
