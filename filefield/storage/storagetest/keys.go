package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// keyChars are the characters checkKeyCharacters puts into names: every
// printable ASCII byte a stored path segment may hold (all but "/", "\"
// and ":"), and some multi-byte UTF-8 ones, including two spaces that are
// not ASCII's.
func keyChars() []string {
	var cs []string
	for c := byte(0x20); c < 0x7f; c++ {
		if c != '/' && c != '\\' && c != ':' {
			cs = append(cs, string(c))
		}
	}
	return append(cs, "é", "ü", "中", "😀", "\u00a0", "\u3000")
}

// lookalikes are names that differ only in how a space or a plus is
// written, raw or percent-encoded.
var lookalikes = []string{"x+y", "x y", "x%20y", "x%2By", "x%2by", "x++y", "x+%20y", "+x+", "%2B", "%20"}

// wrongKeys returns the names a server or client would reach instead of n
// by decoding or encoding it once too often or the wrong way: "a b" for
// "a+b" (a query-style decoding), "a%2Bb" for "a+b" (an encoding nobody
// decoded), "a+b" for "a b". Only valid stored paths other than n are
// returned.
func wrongKeys(n string) []string {
	cands := []string{
		strings.ReplaceAll(n, "+", " "),
		strings.ReplaceAll(n, " ", "+"),
		eachSegment(n, url.QueryEscape),
		eachSegment(n, url.PathEscape),
	}
	if d, err := url.QueryUnescape(n); err == nil {
		cands = append(cands, d)
	}
	if d, err := url.PathUnescape(n); err == nil {
		cands = append(cands, d)
	}
	var out []string
	for _, c := range cands {
		if c != n && storage.ValidPath(c) == nil && !contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// eachSegment applies fn to each segment of the slash path p.
func eachSegment(p string, fn func(string) string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = fn(s)
	}
	return strings.Join(segs, "/")
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// KeyNames returns names that hold every character a stored path may
// hold (each printable ASCII character but "/", "\" and ":", and
// multi-byte ones, two non-ASCII spaces among them) at the start, middle
// and end of a name and inside a directory name, with the names a wrong
// encoding or decoding would reach instead ("a b" for "a+b", "a%2Bb"):
// for tests that check a backend, or code over it, acts on exactly the
// file it was given. Every name is a valid stored path.
func KeyNames() []string { return keyNames() }

// keyNames returns the names checkKeyCharacters stores: each of keyChars at
// the start, middle and end of a file name and in the middle of a
// directory name, the lookalikes, and the wrong keys of all of these as
// decoys. Names storage.ValidPath refuses (a segment starting with a dot,
// ending in a dot or space) are left out.
func keyNames() []string {
	var names []string
	add := func(n string) {
		if storage.ValidPath(n) == nil && !contains(names, n) {
			names = append(names, n)
		}
	}
	for _, c := range keyChars() {
		for _, n := range []string{c + "k", "k" + c + "k", "k" + c, "d" + c + "d/k"} {
			add(n)
		}
	}
	for _, n := range lookalikes {
		add(n)
	}
	for _, n := range names {
		for _, w := range wrongKeys(n) {
			add(w)
		}
	}
	return names
}

// errList collects a check's failures, keeping the first few: one broken
// encoding fails hundreds of names the same way.
type errList struct {
	errs []error
	more int
}

func (l *errList) add(format string, args ...any) {
	if len(l.errs) == 30 {
		l.more++
		return
	}
	l.errs = append(l.errs, fmt.Errorf(format, args...))
}

func (l *errList) err() error {
	if l.more > 0 {
		l.errs = append(l.errs, fmt.Errorf("and %d more", l.more))
	}
	return errors.Join(l.errs...)
}

// checkKeyCharacters stores a file for every character a stored name may
// hold, at the start, middle and end of a segment, beside decoys named
// what a wrong encoding or decoding of its name would give ("a b" beside
// "a+b"). It renames each into another directory and checks, by content,
// that exactly that file moved and its decoys are untouched; then it
// lists, stats, reads and removes them, checking the decoys after each
// removal.
func checkKeyCharacters(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	k := &keyCheck{fsys: fsys, names: keyNames(), src: dir + "/src", dst: dir + "/dst", content: map[string][]byte{}, where: map[string]string{}}
	for i, n := range k.names {
		k.content[n] = fmt.Appendf(nil, "%d:%s\n", i, n)
		if err := writeFile(fsys, k.src+"/"+n, k.content[n]); err != nil {
			return fmt.Errorf("create %q: %v", n, err)
		}
		k.where[n] = k.src
	}
	if err := k.renameAll(); err != nil {
		return err
	}
	k.checkListing(ctx)
	k.removeAll()
	if left, err := regularFiles(ctx, fsys, dir); err != nil {
		k.errs.add("%v", err)
	} else if len(left) != 0 {
		k.errs.add("%d files left after removing every one", len(left))
	}
	return k.errs.err()
}

// keyCheck is the state of checkKeyCharacters.
type keyCheck struct {
	fsys     afero.Fs
	names    []string
	src, dst string
	content  map[string][]byte
	where    map[string]string // name -> src or dst; absent once removed
	errs     errList
}

// same checks that p holds name n's content.
func (k *keyCheck) same(p, n string) {
	if got, err := afero.ReadFile(k.fsys, p); err != nil {
		k.errs.add("read %q: %v", p, err)
	} else if !bytes.Equal(got, k.content[n]) {
		k.errs.add("%q holds %q, want %q", p, got, k.content[n])
	}
}

// decoys checks that the files a wrong encoding of n would hit are intact.
func (k *keyCheck) decoys(n, after string) {
	for _, w := range wrongKeys(n) {
		if d, ok := k.where[w]; ok {
			if got, err := afero.ReadFile(k.fsys, d+"/"+w); err != nil || !bytes.Equal(got, k.content[w]) {
				k.errs.add("after %s %q, its decoy %q holds (%q, %v), want %q", after, n, d+"/"+w, got, err, k.content[w])
			}
		}
	}
}

// renameAll moves every file from src to dst, one at a time.
func (k *keyCheck) renameAll() error {
	for _, n := range k.names {
		if err := k.fsys.MkdirAll(path.Dir(k.dst+"/"+n), 0o755); err != nil {
			return err
		}
		if err := k.fsys.Rename(k.src+"/"+n, k.dst+"/"+n); err != nil {
			k.errs.add("rename %q: %v", n, err)
			continue
		}
		k.where[n] = k.dst
		k.same(k.dst+"/"+n, n)
		if _, err := k.fsys.Stat(k.src + "/" + n); !errors.Is(err, fs.ErrNotExist) {
			k.errs.add("after renaming %q, Stat of the old name: %v, want fs.ErrNotExist", n, err)
		}
		k.decoys(n, "renaming")
	}
	return nil
}

// checkListing checks that src is empty and dst lists every file, with
// its size, and nothing else.
func (k *keyCheck) checkListing(ctx context.Context) {
	if left, err := regularFiles(ctx, k.fsys, k.src); err != nil {
		k.errs.add("%v", err)
	} else if len(left) != 0 {
		k.errs.add("%d files left in the source directory after renaming every one", len(left))
	}
	listed, err := regularFiles(ctx, k.fsys, k.dst)
	if err != nil {
		k.errs.add("%v", err)
	}
	for _, n := range k.names {
		if e, ok := listed[k.dst+"/"+n]; !ok || e.Size != int64(len(k.content[n])) {
			k.errs.add("listing has %q as %+v (listed: %v), want size %d", n, e, ok, len(k.content[n]))
		}
		delete(listed, k.dst+"/"+n)
	}
	for p := range listed {
		k.errs.add("listing has %q, which was never written", p)
	}
}

// removeAll stats, reads and removes each file in dst, checking its
// decoys after each removal.
func (k *keyCheck) removeAll() {
	for _, n := range k.names {
		p := k.dst + "/" + n
		if fi, err := k.fsys.Stat(p); err != nil || fi.IsDir() || fi.Size() != int64(len(k.content[n])) {
			k.errs.add("Stat(%q): (%v, %v), want a file of %d bytes", p, fi, err, len(k.content[n]))
		}
		k.same(p, n)
		if err := k.fsys.Remove(p); err != nil {
			k.errs.add("Remove(%q): %v", p, err)
			continue
		}
		delete(k.where, n)
		if _, err := k.fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			k.errs.add("after Remove, Stat(%q): %v, want fs.ErrNotExist", p, err)
		}
		k.decoys(n, "removing")
	}
}
