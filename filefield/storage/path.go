package storage

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"golang.org/x/text/unicode/norm"
)

// Limits on stored paths. They are well below what Linux, Windows and S3
// accept, so a valid stored path can be used on all of them.
const (
	MaxPathLen = 1024 // bytes in a whole stored path
	MaxNameLen = 255  // bytes in one path segment
)

// TempPrefix starts the name of every temporary file that filefield writes
// before renaming it into place. Sweepers skip such files while they may be
// in flight, and no valid stored path starts a segment with it (stored paths
// never start a segment with a dot).
const TempPrefix = ".mediaclean-tmp-"

// IsTempName reports whether the last segment of p is a temporary name of
// a careful write ([PendingFile]): TempPrefix and 32 lowercase hex digits.
func IsTempName(p string) bool {
	return validTempName(p[strings.LastIndexByte(p, '/')+1:])
}

type unsafePathError string

func (e unsafePathError) Error() string        { return "unsafe path: " + string(e) }
func (e unsafePathError) Is(target error) bool { return target == ErrUnsafePath }

// ValidPath reports whether p is a safe stored path, returning nil if it is
// and otherwise a *PathError wrapping [ErrUnsafePath] that says why.
//
// A stored path is the value a database row keeps: slash-separated and
// relative to the storage root, such as "profile_pics/3f9c1e.jpg". ValidPath
// accepts only paths that
//
//   - are non-empty valid UTF-8 in Unicode normal form C, at most
//     [MaxPathLen] bytes, with segments of at most [MaxNameLen] bytes;
//   - are relative: no leading "/", no drive letter ("C:"), no UNC or
//     "\??\" form (no backslash and no colon anywhere);
//   - have no empty, "." or ".." segment (nor one that folds to them under
//     compatibility normalisation, such as full-width dots), no trailing
//     slash, and no segment starting with a dot (".htaccess", temp files);
//   - contain no NUL, control or invisible formatting characters (such as
//     the right-to-left override), nor Unicode noncharacters (U+FFFE,
//     U+FFFF: XML, and so an S3 batch delete, cannot carry them);
//   - have no segment ending in a dot or a space, and no Windows device
//     name ("CON", "com1.txt", "NUL .jpg") as a segment.
//
// ValidPath does not touch storage. It is deliberately strict: a path it
// refuses is never deleted by any mediaclean component.
func ValidPath(p string) error {
	if reason := unsafeReason(p); reason != "" {
		return &PathError{Op: "validate", Path: p, Err: unsafePathError(reason)}
	}
	return nil
}

func unsafeReason(p string) string {
	switch {
	case p == "":
		return "empty"
	case len(p) > MaxPathLen:
		return "longer than 1024 bytes"
	case p[0] == '/':
		return "absolute"
	case p[len(p)-1] == '/':
		return "trailing slash"
	}
	if reason, ascii := asciiReason(p); reason != "" || ascii {
		return reason
	}
	return unicodeReason(p)
}

// asciiReason makes one pass over p's bytes and refuses the bytes no
// stored path holds; for an all-ASCII path (the common key, ascii) it
// checks the segments too, reporting their reasons only after every byte
// passed, so the reason does not depend on the path's length.
func asciiReason(p string) (reason string, ascii bool) {
	ascii, start, segReason := true, 0, ""
	for i := 0; i < len(p); i++ {
		c := p[i]
		if plainByte[c] {
			continue
		}
		switch {
		case c == '/':
			if segReason == "" {
				segReason = unsafeSegment(p[start:i], true)
			}
			start = i + 1
		case c == 0:
			return "NUL character", false
		case c == '\\':
			return "backslash", false
		case c == ':':
			return "colon (drive letter or stream name)", false
		case c < 0x20 || c == 0x7f:
			return "control character", false
		default: // c >= utf8.RuneSelf
			ascii = false
		}
	}
	if !ascii {
		return "", false
	}
	if segReason == "" {
		segReason = unsafeSegment(p[start:], true)
	}
	return segReason, true
}

// unicodeReason checks a path with non-ASCII bytes, which asciiReason
// passed: valid UTF-8, no control or invisible formatting character, NFC,
// and every segment.
func unicodeReason(p string) string {
	if !utf8.ValidString(p) {
		return "invalid UTF-8"
	}
	for _, r := range p {
		switch {
		case unicode.IsControl(r):
			return "control character"
		case unicode.Is(unicode.Cf, r):
			return "invisible formatting character"
		case noncharacter(r):
			// Reserved for a program's own use, never interchange: XML
			// cannot carry U+FFFE or U+FFFF, and an S3 batch delete's
			// body turns them into U+FFFD, the name of another object.
			return "Unicode noncharacter"
		}
	}
	if !norm.NFC.IsNormalString(p) {
		return "not in Unicode normal form C"
	}
	for rest, more := p, true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		if reason := unsafeSegment(seg, false); reason != "" {
			return reason
		}
	}
	return ""
}

// noncharacter reports whether r is one of Unicode's 66 noncharacters:
// U+FDD0 to U+FDEF and the last two code points of every plane.
func noncharacter(r rune) bool {
	return r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE
}

// plainByte marks the bytes unsafeReason has nothing to check in: printable
// ASCII other than '/', '\\' and ':'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '/' && c != '\\' && c != ':'
	}
	return t
}()

func unsafeSegment(seg string, ascii bool) string {
	switch {
	case seg == "":
		return "empty segment"
	case seg == "." || seg == "..":
		return "dot segment"
	case len(seg) > MaxNameLen:
		return "segment longer than 255 bytes"
	case seg[0] == '.':
		return "segment starts with a dot"
	case seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ':
		return "segment ends with a dot or space"
	case isWindowsDevice(seg):
		return "windows device name"
	}
	if !ascii {
		// Full-width dots and similar fold to "." or ".." on systems that
		// apply compatibility normalisation.
		if k := norm.NFKC.String(seg); k == "." || k == ".." || strings.ContainsAny(k, `/\:`) {
			return "segment folds to a path separator or dot segment"
		}
	}
	return ""
}

func isASCII(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isWindowsDevice reports whether seg names a Windows device, which Windows
// opens instead of a file whatever the extension or trailing spaces.
func isWindowsDevice(seg string) bool {
	switch seg[0] | 0x20 { // every device name starts with one of these
	case 'a', 'c', 'l', 'n', 'p':
	default:
		return false
	}
	base := seg
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	base = strings.TrimRight(base, " ")
	switch len(base) {
	case 3:
		for _, d := range [...]string{"CON", "PRN", "AUX", "NUL"} {
			if strings.EqualFold(base, d) {
				return true
			}
		}
	case 4, 5: // COM0-9, LPT0-9, and COM¹²³ / LPT¹²³ (two-byte digits)
		if strings.EqualFold(base[:3], "COM") || strings.EqualFold(base[:3], "LPT") {
			switch d := base[3:]; d {
			case "¹", "²", "³":
				return true
			default:
				return len(d) == 1 && d[0] >= '0' && d[0] <= '9'
			}
		}
	case 6, 7:
		return strings.EqualFold(base, "CONIN$") || strings.EqualFold(base, "CONOUT$")
	}
	return false
}

// Clean normalises p, a reference or a directory given in options, to a
// stored path and validates it. It is lenient in the ways that can only
// make a reference match more files, which is the safe direction for a
// cleaner: it turns backslashes into slashes, drops leading "/" and "./",
// collapses repeated slashes and "." segments, and converts to Unicode
// normal form C. It never resolves "..": a path with a ".." segment is
// refused, as is anything else [ValidPath] refuses after normalisation.
// With dir, p names a directory, and the root ("", ".", "/") is allowed
// and returned as "".
func Clean(p string, dir bool) (string, error) {
	orig := p
	if dir {
		p = strings.Trim(p, "/")
		if p == "" || p == "." {
			return "", nil
		}
	}
	if strings.IndexByte(p, '\\') >= 0 {
		p = strings.ReplaceAll(p, `\`, "/")
	}
	if strings.Contains(p, "//") || strings.HasPrefix(p, "/") || strings.Contains(p, "./") || strings.HasSuffix(p, "/.") {
		segs := strings.Split(p, "/")
		kept := segs[:0]
		for _, s := range segs {
			if s != "" && s != "." {
				kept = append(kept, s)
			}
		}
		p = strings.Join(kept, "/")
	}
	if !isASCII(p) && utf8.ValidString(p) && !norm.NFC.IsNormalString(p) {
		p = norm.NFC.String(p)
	}
	if reason := unsafeReason(p); reason != "" {
		return "", &PathError{Op: "clean", Path: orig, Err: unsafePathError(reason)}
	}
	return p, nil
}

// join joins a directory and a name with a slash; an empty or "." dir is the
// root.
func join(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return dir + "/" + name
}

// dirOf returns all but the last segment of a slash path, or "." for a name
// at the root.
func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "."
	}
	return p[:i]
}

// unwrapOSPathError strips the os package's own path wrapper, whose path is
// an absolute host path the caller did not ask about, keeping the cause.
func unwrapOSPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// OlderThan reports whether a file last modified at t is more than age
// old at now: the one age boundary of every mediaclean component. A file
// exactly age old is not older; a time in the future is never old.
func OlderThan(now, t time.Time, age time.Duration) bool {
	return !t.After(now) && now.Sub(t) > age
}

// CheckGlobs returns an error naming the first malformed glob ("**" for
// any number of directories), or nil. Globs match stored paths, which
// are relative, clean and in Unicode normal form C, so a glob that could
// never match one is malformed too: a leading "/" or "./", an empty, "."
// or ".." segment, a trailing "/", a segment ending in a space, a
// decomposed (NFD) name, a backslash used as a folder separator. Such a
// glob protecting or excluding files would protect nothing; the error
// names the spelling that matches.
func CheckGlobs(globs ...string) error {
	for _, g := range globs {
		if g == "" || !doublestar.ValidatePattern(g) {
			return &PathError{Op: "glob", Path: g, Err: ErrBadGlob}
		}
		if reason := unmatchableGlob(g); reason != "" {
			return &PathError{Op: "glob", Path: g, Err: badGlobError(reason)}
		}
	}
	return nil
}

type badGlobError string

func (e badGlobError) Error() string        { return ErrBadGlob.Error() + ": " + string(e) }
func (e badGlobError) Is(target error) bool { return target == ErrBadGlob }

// QuoteGlob returns a glob that matches the path s literally: each of
// the glob characters *?[]{}\ escaped with a backslash ("trash[1" is
// "trash\[1").
func QuoteGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]{}\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(`*?[]{}\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmatchableGlob says why no stored path can match g, or "".
func unmatchableGlob(g string) string {
	if utf8.ValidString(g) && !norm.NFC.IsNormalString(g) {
		// A name pasted from macOS arrives decomposed.
		return "stored paths are in Unicode normal form C; did you mean " + strconv.Quote(norm.NFC.String(g)) + "?"
	}
	for i := 0; i+1 < len(g); i++ {
		if g[i] == '\\' {
			if !strings.ContainsRune(`*?[]{}\\`, rune(g[i+1])) {
				return `a backslash escapes the character after it, and stored paths separate folders with "/"; did you mean ` +
					strconv.Quote(strings.ReplaceAll(g, `\`, "/")) + "?"
			}
			i++
		}
	}
	segs := strings.Split(g, "/")
	spaced, bad, up := false, false, false
	for i, seg := range segs {
		spaced = spaced || strings.HasSuffix(seg, " ")
		bad = bad || seg == "" || seg == "." || seg == ".."
		up = up || seg == ".."
		segs[i] = strings.TrimRight(seg, " ")
	}
	if spaced {
		return "no segment of a stored path ends with a space; did you mean " + strconv.Quote(strings.Join(segs, "/")) + "?"
	}
	if !bad {
		return ""
	}
	const why = `stored paths are relative, with no leading "/" or "./", no empty, "." or ".." segment and no trailing "/"`
	clean := path.Clean("/" + g)[1:]
	if clean == "" || up {
		return why
	}
	if strings.HasSuffix(g, "/") {
		clean += "/**"
	}
	return why + "; did you mean " + strconv.Quote(clean) + "?"
}
