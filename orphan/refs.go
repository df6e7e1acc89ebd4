package orphan

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// maxForms is the most stored paths one reference can name: a stored name
// of a few hundred '#' or '?' has that many. A reference with more fails the
// run with ErrAmbiguousReference rather than lose a form: a form left out
// could name the file the reference means.
const maxForms = 1024

// refForms are the stored paths one reference may name. The first cover
// of them are the reference's own reading, which alone count for the
// coverage guard; the others are its readings as a URL cut at a '?' or
// '#', which keep files but would let "resize?src=x" vouch for the root
// directory. over is set for a reference with more than maxForms forms,
// which the caller must refuse.
type refForms struct {
	paths []string
	cover int
	over  bool
}

// add adds r, cleaned, unless it is not a stored path or is there already.
func (fs *refForms) add(r string) {
	p, err := storage.Clean(r, false)
	if err != nil || slices.Contains(fs.paths, p) {
		return
	}
	if len(fs.paths) == maxForms {
		fs.over = true
		return
	}
	fs.paths = append(fs.paths, p)
}

// normalise sets into the stored paths ref may name: ref itself, cleaned,
// after the first matching StripPrefixes entry (its scheme and host
// compared without regard to case); also without any StripPrefixes entry
// that it starts with once both are read as a server reads a URL path
// (backslashes as slashes, "//", "." and ".." resolved, with or without a
// leading slash, whatever the scheme, host, port or user before it, and
// in either Unicode normal form);
// without a leading byte-order mark and without trailing ASCII white
// space and control characters, which no stored path has (a CHAR(n)
// column pads with spaces, a BINARY(n) one with NUL; exports leave "\r",
// DOS files a ^Z); also without leading white space and without
// Unicode spaces or invisible format characters (a zero-width space) at
// either end, which a stored path may have, so both forms are kept; with ".." segments resolved when they stay inside the
// root, before and after the prefix is stripped; and for a reference
// written as a URL path, with a query, a fragment or %-escapes
// ("x.jpg?v=3", "my%20photo.jpg"), also that path cut at each '?' and
// '#' (a stored name may hold them: "what?.png?v=3" names "what?.png"),
// escaped and unescaped; for a reference in double quotes (a CSV field),
// the value inside; and the readings of a reference that went
// through the wrong character set (addMisdecoded). Matching more paths
// can only keep more files,
// the safe direction. Paths that cannot be stored paths are left out; no
// path means none could.
func (f *Finder) normalise(ref string, into *refForms) {
	into.paths, into.cover, into.over = into.paths[:0], 0, false
	if len(f.opts.StripPrefixes) == 0 && plainRef(ref) {
		// The common case, and the result of every step below for it:
		// nothing to trim or strip, no "..", no URL form.
		if p, err := storage.Clean(ref, false); err == nil {
			into.paths = append(into.paths, p)
		}
		into.cover = len(into.paths)
		return
	}
	f.normaliseAll(ref, into)
}

// maxRefLen is the length past which a reference may be cut at no more
// than maxLongCuts places: each cut is read whole again, and one row
// must not stall a run. Sixteen times a stored path's longest leaves room
// for any URL of one; longer values are mostly inline data ("data:"
// URLs), cut once or twice.
const (
	maxRefLen   = 16 * storage.MaxPathLen
	maxLongCuts = 16
)

// normaliseAll is normalise without its shortcut for plain references.
func (f *Finder) normaliseAll(ref string, into *refForms) {
	into.paths, into.cover, into.over = into.paths[:0], 0, false
	base := strings.TrimRightFunc(strings.TrimPrefix(ref, "\ufeff"), func(c rune) bool { return c < utf8.RuneSelf && trailing(byte(c)) })
	bases := [3]string{base, strings.TrimLeft(base, " \t\r\n"), strings.TrimFunc(base, invisible)}
	distinct := func(i int) bool {
		return !(i == 1 && bases[1] == bases[0]) && !(i == 2 && (bases[2] == bases[0] || bases[2] == bases[1]))
	}
	// First each base's own readings, which count for coverage: as
	// written, unescaped, and with '+' read as a space, as S3 reads an
	// object's URL.
	for i, r := range bases {
		if distinct(i) {
			f.addReadings(r, into)
		}
	}
	into.cover = len(into.paths)
	// Then the readings that only keep files: cut at each '?', '#' and
	// ';' (a path parameter: ";jsessionid=..."), the longest first.
	for i, r := range bases {
		if distinct(i) && strings.ContainsAny(r, "?#;") {
			if !urlForms(r, func(u string) bool { f.addReadings(u, into); return !into.over }) {
				into.over = true
			}
		}
	}
	// A field of a CSV export, quoted, its quotes doubled inside
	// ("pics/say ""cheese"".jpg"): the value inside also.
	// Its readings, and its cuts at '?', '#' and ';' as above.
	for i, r := range bases {
		if u, ok := csvUnquote(r); ok && distinct(i) {
			f.addReadings(u, into)
			if strings.ContainsAny(u, "?#;") && !urlForms(u, func(c string) bool { f.addReadings(c, into); return !into.over }) {
				into.over = true
			}
		}
	}
	f.addMisdecoded(bases, distinct, into)
}

// csvUnquote returns the value of r read as a quoted CSV field (RFC 4180:
// in double quotes, a quote inside doubled), and whether r is one.
func csvUnquote(r string) (string, bool) {
	if len(r) < 2 || r[0] != '"' || r[len(r)-1] != '"' {
		return "", false
	}
	return strings.ReplaceAll(r[1:len(r)-1], `""`, `"`), true
}

// addMisdecoded adds the readings of a reference whose text passed
// through the wrong character set, the usual accident of a Latin-1
// database connection (MySQL's latin1, a Windows-1252 export): bytes
// that are not UTF-8 ("caf\xe9.jpg", also %-escaped: "caf%E9.jpg") read
// as Windows-1252, and a name encoded twice ("cafÃ©.jpg") read back
// once; and, for a stored name the application encoded twice, each
// non-ASCII form encoded so. Without them such a reference names no
// stored path, or another one, and the file it means would be an
// orphan. They only keep files, so they do not count for coverage.
func (f *Finder) addMisdecoded(bases [3]string, distinct func(int) bool, into *refForms) {
	for i, r := range bases {
		if !distinct(i) {
			continue
		}
		texts := []string{r}
		if strings.Contains(r, "%") {
			texts = append(texts, unescapeLoosely(r))
		}
		for _, t := range texts {
			if into.over || isASCII(t) {
				continue
			}
			if !utf8.ValidString(t) {
				f.addWithCuts(fromWindows1252(t), into)
			} else if once, ok := toWindows1252(t); ok && utf8.ValidString(once) {
				f.addWithCuts(once, into)
			}
		}
	}
	for i, n := 0, len(into.paths); i < n && !into.over; i++ {
		if p := into.paths[i]; !isASCII(p) {
			into.add(fromWindows1252(p))
		}
	}
}

// addWithCuts adds the readings of r and, for a reference written as a
// URL path, of r cut at each '?', '#' and ';' ("caf\xe9.jpg?v=3" read as
// Windows-1252 names "café.jpg" once cut).
func (f *Finder) addWithCuts(r string, into *refForms) {
	f.addReadings(r, into)
	if strings.ContainsAny(r, "?#;") && !into.over {
		if !urlForms(r, func(u string) bool { f.addReadings(u, into); return !into.over }) {
			into.over = true
		}
	}
}

// fromWindows1252 reads each byte of s as a Windows-1252 character, the
// five bytes it leaves undefined as the C1 controls of the same value (as
// MySQL's latin1 and browsers read them; x/text's table makes them U+FFFD,
// which no encoding undoes), and returns that text in UTF-8.
func fromWindows1252(s string) string {
	b := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		b = utf8.AppendRune(b, windows1252Rune(s[i]))
	}
	return string(b)
}

func windows1252Rune(c byte) rune {
	if r := charmap.Windows1252.DecodeByte(c); r != utf8.RuneError {
		return r
	}
	return rune(c)
}

// toWindows1252 returns the bytes of s in Windows-1252 as fromWindows1252
// reads them, and false if s holds a character that has none.
func toWindows1252(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		c, ok := charmap.Windows1252.EncodeRune(r)
		if !ok {
			if r < 0x80 || r > 0x9f || windows1252Rune(byte(r)) != r {
				return "", false
			}
			c = byte(r)
		}
		b = append(b, c)
	}
	return string(b), true
}

// isASCII reports whether s holds only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// addReadings adds r stripped (addStripped), unescaped (once, and twice),
// and with '+' as a space, each also without the white space at its ends that escapes
// ("%20") or a cut (" ?v=1") leave.
func (f *Finder) addReadings(r string, into *refForms) {
	f.addStripped(r, into)
	if t := strings.TrimFunc(r, invisible); t != r {
		f.addStripped(t, into)
	}
	if strings.Contains(r, "%") {
		v := unescapeLoosely(r)
		f.addStripped(v, into)
		if t := strings.TrimFunc(v, invisible); t != v {
			f.addStripped(t, into)
		}
		// A URL escaped twice ("my%2520photo.jpg": a template escaping
		// an escaped URL) names the path unescaped twice too.
		if strings.Contains(v, "%") {
			if w := unescapeLoosely(v); w != v {
				f.addStripped(w, into)
			}
		}
	}
	if strings.Contains(r, "+") {
		f.addStripped(strings.ReplaceAll(r, "+", " "), into)
	}
}

// unescapeLoosely decodes every valid %XX escape of s and leaves any other
// '%' as it is ("50%off%20sale.png" is "50%off sale.png"), as servers that
// tolerate such URLs read them.
func unescapeLoosely(s string) string {
	if v, err := url.PathUnescape(s); err == nil {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// invisible reports whether c is white space or an invisible format
// character (a zero-width space, a byte-order mark) that a reference may
// carry at either end.
func invisible(c rune) bool { return unicode.IsSpace(c) || unicode.Is(unicode.Cf, c) }

// addStripped adds r without its prefix, read as a server reads it, and
// with its ".." segments resolved, before the prefix is stripped
// ("/media/../media/x") and after ("x/../y"). Backslashes are slashes,
// as storage.Clean reads them.
func (f *Finder) addStripped(r string, into *refForms) {
	if n, ok := nfc(r); ok {
		// Its prefix may be spelled in the other normal form: the path
		// after it is made NFC by storage.Clean anyway.
		f.addStripped(n, into)
	}
	if strings.Contains(r, `\`) {
		r = strings.ReplaceAll(r, `\`, "/")
	}
	s := f.stripPrefix(r)
	into.add(s)
	if strings.Contains(r, "..") {
		// "a/b/../c" is "a/c"; a reference that climbs above the root
		// names nothing in it.
		if c := path.Clean(strings.TrimLeft(s, "/")); c != ".." && !strings.HasPrefix(c, "../") {
			into.add(c)
		}
		if c, ok := resolveDots(r); ok {
			into.add(f.stripPrefix(c))
		}
	}
	if len(f.prefixPaths) > 0 {
		f.stripLoosely(r, into.add)
	}
}

// nfc returns s in Unicode normal form C, and whether that differs from
// s: a name written on macOS arrives decomposed ("e" and a combining
// accent), the same name typed elsewhere composed.
func nfc(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			if !utf8.ValidString(s) || norm.NFC.IsNormalString(s) {
				return s, false
			}
			return norm.NFC.String(s), true
		}
	}
	return s, false
}

// stripLoosely calls add with r without each StripPrefixes entry whose
// path r's path starts with, segment by segment and without regard to
// case, once both are read as a server reads a URL path: backslashes as
// slashes, "//", "." and ".." resolved, a leading slash or none. r's path
// is r itself and, for r with a scheme ("https://") or a leading "//",
// what follows its host; a URL prefix's paths are what follows its host,
// and its host and path as one path, for a reference written without a
// scheme ("cdn.example.com/media/x"). Scheme, port and user are not
// compared: matching more can only keep more files.
func (f *Finder) stripLoosely(r string, add func(string)) {
	for _, p := range [2]string{r, afterHost(r)} {
		if p == "" {
			continue
		}
		cp := ""
		for _, pp := range f.prefixPaths {
			// A prefix's last segment is in any spelling of it: a cheap
			// test before the path is cleaned.
			if last := pp[strings.LastIndexByte(pp, '/')+1:]; !containsFold(p, last) {
				continue
			}
			if cp == "" {
				cp = loosePath(p)
			}
			switch {
			case pp == "/":
				add(cp)
			case len(cp) > len(pp) && cp[len(pp)] == '/' && strings.EqualFold(cp[:len(pp)], pp):
				add(cp[len(pp)+1:])
			}
		}
	}
}

// containsFold reports whether s contains sub, ASCII letters compared
// without case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// loosePath is a path as stripLoosely compares it: rooted, backslashes as
// slashes, and cleaned.
func loosePath(p string) string {
	if rootedClean(p) {
		return p // the common case, without an allocation
	}
	return path.Clean("/" + strings.ReplaceAll(p, `\`, "/"))
}

// rootedClean reports whether path.Clean leaves p as it is: rooted, with
// no backslash, empty, "." or ".." segment, nor a trailing slash.
func rootedClean(p string) bool {
	if p == "" || p[0] != '/' || (len(p) > 1 && p[len(p)-1] == '/') || strings.IndexByte(p, '\\') >= 0 {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return p == "/"
		}
	}
	return true
}

// afterHost returns the path of a URL with a scheme ("https://host/p")
// or a leading "//" ("//host/p"), from the slash after the host (or
// backslash), and "" for anything else.
func afterHost(r string) string {
	rest := ""
	if i := strings.Index(r, "://"); i > 0 && validScheme(r[:i]) {
		rest = r[i+3:]
	} else if strings.HasPrefix(r, "//") || strings.HasPrefix(r, `\\`) {
		rest = r[2:]
	} else {
		return ""
	}
	if j := strings.IndexAny(rest, `/\`); j >= 0 {
		return rest[j:]
	}
	return ""
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		isLetter := (c|0x20) >= 'a' && (c|0x20) <= 'z'
		if !isLetter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// plainRef reports whether ref is ASCII, starts and ends with no white
// space, and holds no "..", '?', '#', '%', ';', '+' or backslash: a
// reference with one form, itself, cleaned.
func plainRef(ref string) bool {
	if ref == "" || isASCIISpace(ref[0]) || trailing(ref[len(ref)-1]) || ref[0] == '"' {
		return false
	}
	prev := byte(0)
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c >= 0x80 || c == '?' || c == '#' || c == '%' || c == ';' || c == '+' || c == '\\' || (c == '.' && prev == '.') {
			return false
		}
		prev = c
	}
	return true
}

// trailing reports whether normalise drops c at the end of a reference:
// ASCII white space (a CHAR(n) column pads with spaces; exports leave
// "\r") and the other ASCII control characters, which no stored path
// holds (a BINARY(n) column pads with NUL; DOS files end with ^Z).
func trailing(c byte) bool { return c <= ' ' || c == 0x7f }

// isASCIISpace reports whether c is one of the ASCII bytes unicode.IsSpace
// accepts.
func isASCIISpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

// stripPrefix removes the first of Options.StripPrefixes that ref starts
// with, at a segment's end. A prefix with a scheme
// ("https://cdn.example.com/media/") matches its scheme and host in any
// case, as URLs do; the rest exactly.
func (f *Finder) stripPrefix(ref string) string {
	for _, pre := range f.opts.StripPrefixes {
		if len(ref) < len(pre) {
			continue
		}
		head := ref[:len(pre)]
		origin := 0 // bytes of pre compared without case
		if i := strings.Index(pre, "://"); i >= 0 {
			origin = len(pre)
			if j := strings.IndexByte(pre[i+3:], '/'); j >= 0 {
				origin = i + 3 + j
			}
		}
		rest := ref[len(pre):]
		if strings.HasSuffix(pre, "/") || rest == "" || rest[0] == '/' {
			// A prefix without a trailing slash ends at a segment's end:
			// "/media" does not strip "/media-old/x.png".
			if strings.EqualFold(head[:origin], pre[:origin]) && head[origin:] == pre[origin:] {
				return rest
			}
		}
	}
	return ref
}

// urlForms calls add with the reference r cut at each '?', '#' and ';',
// the longest cut first, until add returns false. It returns false, and
// calls add for none, if r has more than maxForms cuts (it would name
// more paths than a reference may), or is longer than maxRefLen with
// more than maxLongCuts.
func urlForms(r string, add func(string) bool) bool {
	cuts := strings.Count(r, "?") + strings.Count(r, "#") + strings.Count(r, ";")
	if cuts > maxForms || len(r) > maxRefLen && cuts > maxLongCuts {
		return false
	}
	for end := len(r) - 1; end >= 0; end-- {
		if c := r[end]; c == '?' || c == '#' || c == ';' {
			if !add(r[:end]) {
				return true
			}
		}
	}
	return true
}

// ambiguous is the error for a reference with too many forms or cuts.
func ambiguous(ref string) error {
	n := len(ref)
	if len(ref) > 200 {
		ref = ref[:200] + "..."
	}
	return fmt.Errorf("%w: %q (%d bytes)", ErrAmbiguousReference, ref, n)
}

// resolveDots resolves the ".." and "." segments of a reference's path
// (after a URL's scheme and host, which it keeps), as a server resolves
// them; ok is false for one that climbs above its root.
func resolveDots(r string) (string, bool) {
	head := ""
	if i := strings.Index(r, "://"); i >= 0 {
		j := strings.IndexByte(r[i+3:], '/')
		if j < 0 {
			return "", false
		}
		head, r = r[:i+3+j], r[i+3+j:]
	}
	c := path.Clean(r)
	if c == ".." || strings.HasPrefix(c, "../") || (head != "" && !strings.HasPrefix(c, "/")) {
		return "", false
	}
	if strings.HasSuffix(r, "/") && !strings.HasSuffix(c, "/") {
		c += "/"
	}
	return head + c, true
}

// coverKey returns the directory of p that the coverage guard counts
// references and files in: its scan directory's subdirectory
// CoverageDepth levels down (or p's own directory, when shallower), and
// ok false for a path outside every scan directory.
func (f *Finder) coverKey(p string) (key string, ok bool) {
	root := ""
	if len(f.opts.Dirs) > 0 {
		for _, d := range f.opts.Dirs {
			if strings.HasPrefix(p, d+"/") {
				root = d
				ok = true
				break
			}
		}
		if !ok {
			return "", false
		}
	}
	rest := p
	if root != "" {
		rest = p[len(root)+1:]
	}
	end := 0
	for range f.opts.CoverageDepth {
		i := strings.IndexByte(rest[end:], '/')
		if i < 0 {
			break
		}
		end += i + 1
	}
	switch {
	case end == 0 && root == "":
		return ".", true
	case end == 0:
		return root, true
	case root == "":
		return rest[:end-1], true
	}
	return root + "/" + rest[:end-1], true
}

// cpuWorkers is how many goroutines share CPU-bound work (hashing
// references, looking candidates up): one per CPU, at most eight, since
// each holds its own buffers.
func cpuWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// coverSet collects the cover keys of references. References rarely
// come grouped by directory (rows come in id order, uploads spread over
// dated folders), so it remembers the last few keys it added and skips
// the map for them: on a million references the map's hashing was a
// quarter of the time spent per reference.
type coverSet struct {
	keys   map[string]bool
	recent [8]string
	next   int
}

func newCoverSet() *coverSet {
	c := &coverSet{keys: map[string]bool{}}
	for i := range c.recent {
		c.recent[i] = "\x00" // no cover key: keys are paths or "."
	}
	return c
}

func (c *coverSet) add(k string) {
	for _, r := range c.recent {
		if r == k {
			return
		}
	}
	if !c.keys[k] { // a lookup costs less than an assignment
		c.keys[k] = true
	}
	c.recent[c.next] = k
	c.next = (c.next + 1) % len(c.recent)
}

// refCounts are what loading the references counted.
type refCounts struct {
	n, invalid   int
	missing      []string // up to maxListed, sorted
	missingCount int
	covered      map[string]bool // coverKey of every valid reference
}

// refWorker normalises and hashes references, batch by batch, and counts
// what loadRefs reports.
type refWorker struct {
	hashes
	f                     *Finder
	stored                *pathSet  // the stored files, or nil
	rng                   *KeyRange // the only paths kept in the set, or nil for all
	invalid, missingCount int
	missing               []string
	covered               *coverSet
	err                   error // the first reference with too many forms
	refForms              refForms
	// Each form of each reference of a batch, with the reference it came
	// from; the stored-file lookups are done per batch.
	forms []string
	owner []int32
	hs    []uint64
	found []bool
}

func (w *refWorker) batch(batch []string) {
	w.forms, w.owner, w.hs = w.forms[:0], w.owner[:0], w.hs[:0]
	for ri, ref := range batch {
		w.f.normalise(ref, &w.refForms)
		fs := &w.refForms
		if fs.over && w.err == nil {
			w.err = ambiguous(ref)
		}
		if fs.cover == 0 {
			// Only its readings cut at a '?' or '#', or in another
			// character set, are paths: they keep files, but do not make
			// it a reference for the empty-set guard (binary data has
			// such readings now and then).
			w.invalid++
		}
		if len(fs.paths) == 0 {
			continue
		}
		for i, p := range fs.paths {
			if i < fs.cover {
				if k, ok := w.f.coverKey(p); ok {
					w.covered.add(k)
				}
			}
			if w.rng != nil && !w.rng.Contains(p) {
				continue // another shard's: it covers, but matches nothing here
			}
			h := maphash.String(w.seed, p)
			w.addHash(h)
			if w.stored != nil { // the same seed: the hash looks it up too
				w.forms, w.owner, w.hs = append(w.forms, p), append(w.owner, int32(ri)), append(w.hs, h)
			}
		}
	}
	if w.stored != nil {
		w.countMissing()
	}
}

// countMissing counts the references of the batch none of whose forms is
// a stored file.
func (w *refWorker) countMissing() {
	forms := w.forms
	w.found = slices.Grow(w.found[:0], len(forms))[:len(forms)]
	w.stored.hasHashes(w.hs, w.found)
	for k := 0; k < len(forms); {
		ri, exists := w.owner[k], false
		first := forms[k]
		for ; k < len(forms) && w.owner[k] == ri; k++ {
			exists = exists || w.found[k]
		}
		if !exists {
			w.missingCount++
			w.missing = appendListed(w.missing, first)
		}
	}
}

// loadRefs streams every reference into a set. Given stored, it also
// counts the references that are not in it and lists some. The
// provider runs on the calling goroutine and hands references over in
// batches; one worker per CPU (up to eight) normalises and hashes them, so
// that work overlaps the provider's own (reading lines, scanning rows). Any
// provider error is wrapped in ErrProvider.
func (f *Finder) loadRefs(ctx context.Context, stored *pathSet, ranged bool) (*pathSet, refCounts, error) {
	const batchLen = 1024
	seed := maphash.MakeSeed()
	if stored != nil {
		// One hash per form then serves the set and the lookup in stored.
		// A collision still only keeps a file or counts a reference
		// found.
		seed = stored.seed
	}
	workers := make([]refWorker, cpuWorkers())
	batches := make(chan []string, len(workers))
	// Batches go back to the provider's goroutine once hashed: a million
	// references would otherwise leave 16 MB of slices for the collector.
	free := make(chan []string, 2*len(workers)+1)
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.f, w.stored, w.seed, w.covered = f, stored, seed, newCoverSet()
		if ranged {
			w.rng = &f.opts.Range
		}
		wg.Go(func() {
			for batch := range batches {
				w.batch(batch)
				clear(batch) // drop the references for the collector
				select {
				case free <- batch[:0]:
				default:
				}
			}
		})
	}
	// The workers end when batches closes: also if the provider panics.
	finish := sync.OnceFunc(func() { close(batches); wg.Wait() })
	defer finish()
	var counts refCounts
	batch := make([]string, 0, batchLen)
	err := f.refs.References(ctx, func(ref string) error {
		if counts.n++; counts.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if batch = append(batch, ref); len(batch) == batchLen {
			batches <- batch
			select {
			case batch = <-free:
			default:
				batch = make([]string, 0, batchLen)
			}
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if len(batch) > 0 {
		batches <- batch // on an error too: the set is dropped then anyway
	}
	finish()
	if err != nil && f.guards.provider {
		return nil, refCounts{}, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	for i := range workers {
		if err := workers[i].err; err != nil {
			return nil, refCounts{}, err
		}
	}
	parts := make([]*hashes, len(workers))
	counts.covered = map[string]bool{}
	for i := range workers {
		w := &workers[i]
		parts[i] = &w.hashes
		counts.invalid += w.invalid
		counts.missingCount += w.missingCount
		counts.missing = append(counts.missing, w.missing...)
		for k := range w.covered.keys {
			counts.covered[k] = true
		}
	}
	counts.missing = firstListed(counts.missing)
	return newPathSet(seed, parts...), counts, nil
}

// appendListed appends s to list, which keeps, of all the strings
// appended, at least the first maxListed in byte order: past twice that
// it is sorted and cut. Both modes list missing references so.
func appendListed(list []string, s string) []string {
	if list = append(list, s); len(list) > 2*maxListed {
		slices.Sort(list)
		list = list[:maxListed]
	}
	return list
}

// firstListed returns the first maxListed of list in byte order, sorting
// it in place.
func firstListed(list []string) []string {
	slices.Sort(list)
	return slices.Clip(list[:min(len(list), maxListed)])
}

// uncovered returns, sorted, the cover keys of orphans that no valid
// reference points into, leaving out orphans declared in
// Options.Unreferenced.
func (f *Finder) uncovered(orphans []Orphan, covered map[string]bool) []string {
	if !f.guards.coverage {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	lastDir := "\x00"
	for _, o := range orphans {
		if storage.MatchAny(f.opts.Unreferenced, o.Path) {
			continue
		}
		if d := path.Dir(o.Path); d != lastDir {
			lastDir = d
		} else {
			continue // decided with the file before: plans are sorted
		}
		k, ok := f.coverKey(o.Path)
		if !ok || covered[k] || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ReferenceSet is a set of references loaded once from a Finder's
// provider, normalised as Find normalises them: it answers whether a
// stored path is referenced (storage.RefChecker), for a sweep that must
// keep what rows still reference. It holds 8 bytes per reference.
type ReferenceSet struct {
	set        *pathSet
	n, invalid int
	f          *Finder
	covered    map[string]bool // cover keys valid references point into
}

// LoadReferences streams the finder's references into a ReferenceSet.
// A provider error is wrapped in ErrProvider; a set without one valid
// reference is ErrNoReferences, unless Options.AllowEmpty.
func (f *Finder) LoadReferences(ctx context.Context) (*ReferenceSet, error) {
	set, counts, err := f.loadRefs(ctx, nil, false) // every path: a sweep asks about any file
	if err != nil {
		return nil, err
	}
	if counts.n == counts.invalid && !f.opts.AllowEmpty && f.guards.empty {
		return nil, ErrNoReferences
	}
	return &ReferenceSet{set: set, n: counts.n, invalid: counts.invalid, f: f, covered: counts.covered}, nil
}

// Uncovered returns, sorted, the directories the coverage guard would
// refuse were paths orphans: their cover keys (Options.CoverageDepth
// levels below the root or below Options.Dirs) into which not one valid
// reference points, leaving out the paths Options.Unreferenced declares.
// A sweep that deletes by age while the set keeps what rows reference
// asks it about the paths it would delete: a directory no reference
// points into is most likely a query left out, whose rows the sweep
// would not see.
func (r *ReferenceSet) Uncovered(paths []string) []string {
	orphans := make([]Orphan, len(paths))
	for i, p := range paths {
		orphans[i] = Orphan{Path: p}
	}
	slices.SortFunc(orphans, func(a, b Orphan) int { return strings.Compare(a.Path, b.Path) })
	return r.f.uncovered(orphans, r.covered)
}

// Forms returns the stored paths a reference may name, as Find reads it:
// its own readings first (after Options.StripPrefixes, ".." resolved,
// trimmed), then those that only keep files (cut at '?' or '#', in
// quotes, read in another character set). It returns none for a
// reference that names no valid stored path. Tools use it to check a
// reference by hand, or that a source's references name stored files.
func (f *Finder) Forms(ref string) []string {
	var forms refForms
	f.normalise(ref, &forms)
	return slices.Clone(forms.paths)
}

// IsReferenced reports whether p is in the set. A hash collision can only
// say yes wrongly, which keeps a file.
func (r *ReferenceSet) IsReferenced(_ context.Context, p string) (bool, error) {
	return r.set.has(p), nil
}

// Len returns the number of references streamed, valid or not.
func (r *ReferenceSet) Len() int { return r.n }
