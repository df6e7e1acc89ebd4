package storage

import (
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
// buffer and one fstatat(AT_SYMLINK_NOFOLLOW) per entry on the directory's
// descriptor: the system calls find makes, without a FileInfo allocation
// per entry. Entries removed while reading are skipped.
func readDirHandle(d *os.Root) ([]dirEntry, error) {
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
		var names []string
		var st unix.Stat_t
		for {
			n, err := unix.Getdents(int(fd), buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				ierr = err
				return
			}
			if n <= 0 {
				return
			}
			_, _, names = unix.ParseDirent(buf[:n], -1, names[:0])
			for _, name := range names {
				if err := unix.Fstatat(int(fd), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if err == unix.ENOENT {
						continue
					}
					ierr = &os.PathError{Op: "fstatat", Path: name, Err: err}
					return
				}
				e := dirEntry{name: name, mod: time.Unix(st.Mtim.Unix()), id: fileID{uint64(st.Dev), st.Ino}}
				switch st.Mode & unix.S_IFMT {
				case unix.S_IFREG:
					e.size = st.Size
				case unix.S_IFDIR:
					e.typ = fs.ModeDir
				case unix.S_IFLNK:
					e.typ = fs.ModeSymlink
				case unix.S_IFIFO:
					e.typ = fs.ModeNamedPipe
				case unix.S_IFSOCK:
					e.typ = fs.ModeSocket
				case unix.S_IFCHR:
					e.typ = fs.ModeDevice | fs.ModeCharDevice
				case unix.S_IFBLK:
					e.typ = fs.ModeDevice
				default:
					e.typ = fs.ModeIrregular
				}
				out = append(out, e)
			}
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, ierr
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
