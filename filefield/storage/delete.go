package storage

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/spf13/afero"
)

// Action is what a mediaclean component did, or in a dry run would do, to
// one file. filefield, sweep and orphan report their events with it.
type Action string

// Actions.
const (
	ActionStore       Action = "store"        // a new file was written into place
	ActionOrphan      Action = "orphan"       // found unreferenced by an orphan search
	ActionDelete      Action = "delete"       // deleted
	ActionWouldDelete Action = "would_delete" // a dry run would delete it
	ActionMove        Action = "move"         // moved into or out of a quarantine
	ActionWouldMove   Action = "would_move"   // a dry run would move it
	ActionKeep        Action = "keep"         // kept; the reason says why
	ActionFail        Action = "fail"         // the act failed; the file may still be there
)

// Reasons the deletion pipeline keeps a file. Packages add reasons of
// their own (young, referenced, ...); a reason means the same thing in
// every package.
const (
	KeptGone       = "already_gone" // nothing there to act on
	KeptChanged    = "changed"      // size, time or type differ from what the caller decided on
	KeptUnsafe     = "unsafe_path"  // a path this step may not touch: see Delete
	KeptProtected  = "protected"    // matches a protected glob
	KeptNotRegular = "not_regular"  // a directory, link, FIFO, socket or device
	KeptTaken      = "taken"        // a move's destination exists
	KeptCancelled  = "cancelled"    // not tried: the context ended first
	KeptNotEmpty   = "not_empty"    // a directory to remove that holds something
)

// Target is one file for [Delete] to act on.
type Target struct {
	// Path is the file.
	Path string `json:"path"`
	// Size and ModTime are what the caller saw. They are reported back;
	// with Check the file is acted on only if it still has that size and
	// modification time (as [Changed] compares them) and is a regular
	// file.
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"` // see Size
	Check   bool      `json:"-"`     // see Size
	// ETag, when set, is the object's entity tag as the caller saw it
	// (Entry.ETag on object stores). A re-check (Check) that finds another
	// keeps the file as [KeptChanged]; with Check and no ETag, the one the
	// re-check finds is used. A deletion is then made conditional on it
	// where the backend can ([Features].ConditionalDeletes), so that an
	// object rewritten after the re-check is kept too ([KeptChanged]).
	ETag string `json:"etag,omitempty"`
	// MoveTo, when set, moves the file there instead of deleting it.
	MoveTo string `json:"move_to,omitempty"`
	// Dir removes the empty directory Path instead of a file: only if it
	// is a real directory (not a link) and empty, never the root.
	Dir bool `json:"-"`
	// Index is the caller's own number for the target, reported back in
	// its Outcome as it is.
	Index int `json:"-"`
}

// Outcome is what Delete did with one target. Action is ActionDelete,
// ActionMove (or their dry-run forms), ActionKeep with a Kept reason, or
// ActionFail with Err.
type Outcome struct {
	Target
	Action Action // what was done, or in a dry run would be done
	Reason string // a Kept* reason, for ActionKeep
	Err    error  // the failure, for ActionFail
}

// DeleteOptions configure [Delete]. The zero value deletes valid stored
// paths, one batch at a time.
type DeleteOptions struct {
	// Protected lists globs of stored paths never deleted or moved. For a
	// move they apply to its stored path: the file taken into a
	// quarantine, or the path a restore puts it back at. The quarantine
	// area itself may lie under a protected glob (protected from sweeps):
	// a move into it is not refused for that.
	Protected []string
	// DryRun reports ActionWouldDelete or ActionWouldMove for every target
	// a real run would try, instead of trying it: the plan without the
	// act. It applies the checks that read no storage (a valid path,
	// Protected) but not those made just before acting (Check, links, a
	// directory's emptiness, a move's free destination), so a target that
	// changed or went since it was planned is reported as would-delete,
	// and a real run then keeps it.
	DryRun bool
	// AllowTemp lets Delete remove the temporary files of careful writes
	// (TempPrefix followed by 32 hex digits, in a valid directory), on
	// backends where they are written: not on object stores, where such a
	// name belongs to someone else.
	AllowTemp bool
	// AllowQuarantine lets Delete remove files inside a quarantine area
	// and move them back out to the stored path they came from.
	AllowQuarantine bool
	// Concurrency bounds the batches of files acted on at once; zero
	// means one.
	Concurrency int
	// OnOutcome receives exactly one Outcome per target, always on the
	// goroutine that called Delete, in no particular order.
	OnOutcome func(Outcome)
}

// batchLen is how many files go to the backend per call: S3's
// DeleteObjects limit, and enough to amortise a directory open on disk.
const batchLen = 1000

// Delete is the one place where mediaclean deletes or moves anything in
// user storage: filefield's commits and rollbacks, sweeps, orphan
// removal, quarantine moves, restores and purges, and the removal of
// emptied directories all come here. For each target it reports exactly
// one [Outcome] to opts.OnOutcome. A target is refused (kept as
// [KeptUnsafe]) unless
//
//   - a deletion's Path is a valid stored path ([ValidPath]), or a
//     filefield temporary file with AllowTemp, or lies in a quarantine
//     area with AllowQuarantine;
//   - a move takes a valid stored path P into a quarantine area, to
//     "DIR/.mediaclean-quarantine/RUN/P" (RUN one path segment), or, with
//     AllowQuarantine, takes such a path back to P;
//   - its stored path (a deletion's Path; a move's file outside the
//     quarantine) does not match opts.Protected (else [KeptProtected]).
//
// Only regular files are deleted or moved, and no symbolic link is
// followed: on backends reporting [Features].NoFollow the backend
// guarantees it, elsewhere each directory segment is checked with Lstat
// first. A move never replaces an existing file ([KeptTaken]). A target
// with Check is acted on only if it still matches (else [KeptChanged]);
// one already gone is [KeptGone]. A target with an ETag is kept as
// [KeptChanged] when the re-check, or the deletion request itself where
// the backend makes it conditional ([Features].ConditionalDeletes), finds
// the object has another. Delete returns ctx.Err() if ctx ended before
// every target was tried; the untried ones are [KeptCancelled].
func Delete(ctx context.Context, fsys afero.Fs, targets []Target, opts DeleteOptions) error {
	d := &deleter{fs: fsys, feat: FeaturesOf(fsys), opts: opts, emit: opts.OnOutcome, links: map[string]error{}}
	if d.emit == nil {
		d.emit = func(Outcome) {}
	}
	var files, dirs []Target
	for _, t := range targets {
		if reason := d.refuse(t); reason != "" {
			d.emit(Outcome{Target: t, Action: ActionKeep, Reason: reason})
			continue
		}
		switch {
		case opts.DryRun:
			a := ActionWouldDelete
			if t.MoveTo != "" {
				a = ActionWouldMove
			}
			d.emit(Outcome{Target: t, Action: a})
		case t.Dir:
			dirs = append(dirs, t)
		default:
			files = append(files, t)
		}
	}
	d.files(ctx, files)
	for _, t := range dirs {
		if ctx.Err() != nil {
			d.emit(Outcome{Target: t, Action: ActionKeep, Reason: KeptCancelled})
			continue
		}
		d.emit(d.removeDir(t))
	}
	return ctx.Err()
}

type deleter struct {
	fs    afero.Fs
	feat  Features
	opts  DeleteOptions
	emit  func(Outcome)
	mu    sync.Mutex
	links map[string]error // directory -> nil, or why it may not be entered
}

// refuse returns why t may not be acted on at all, or "".
func (d *deleter) refuse(t Target) string {
	switch {
	case t.Dir:
		if t.Path == "" || t.Path == "." || (ValidPath(t.Path) != nil && !(d.opts.AllowQuarantine && inQuarantineDir(t.Path))) {
			return KeptUnsafe
		}
		return d.protected(t.Path)
	case t.MoveTo == "":
		if !d.deletable(t.Path) {
			return KeptUnsafe
		}
		return d.protected(t.Path)
	}
	if _, _, rest, ok := quarantinePath(t.MoveTo); ok && rest == t.Path && ValidPath(t.Path) == nil {
		return d.protected(t.Path) // into a quarantine
	}
	if _, _, rest, ok := quarantinePath(t.Path); ok && rest == t.MoveTo && d.opts.AllowQuarantine {
		return d.protected(t.MoveTo) // restored
	}
	return KeptUnsafe
}

func (d *deleter) protected(p string) string {
	if Protects(d.opts.Protected, p) {
		return KeptProtected
	}
	return ""
}

// deletable reports whether p may be deleted under opts.Allow.
func (d *deleter) deletable(p string) bool {
	if ValidPath(p) == nil {
		return true
	}
	if d.opts.AllowQuarantine {
		if _, _, _, ok := quarantinePath(p); ok {
			return true
		}
	}
	if d.opts.AllowTemp && IsTempName(p) && !d.feat.AtomicCreate {
		dir := dirOf(p)
		return (dir == "." || ValidPath(dir) == nil) && validTempName(p[strings.LastIndexByte(p, '/')+1:])
	}
	return false
}

// inQuarantineDir reports whether p is a directory inside a quarantine
// area: "DIR/.mediaclean-quarantine" and below.
func inQuarantineDir(p string) bool {
	return InQuarantine(p) && !strings.Contains(p, "..") && !strings.HasPrefix(p, "/")
}

// files acts on file targets in batches, opts.Concurrency at a time, and
// emits their outcomes on the calling goroutine.
func (d *deleter) files(ctx context.Context, targets []Target) {
	if len(targets) == 0 {
		return
	}
	workers := max(d.opts.Concurrency, 1)
	jobs := make(chan []Target)
	results := make(chan []Outcome)
	var wg sync.WaitGroup
	for range min(workers, (len(targets)+batchLen-1)/batchLen) {
		wg.Go(func() {
			for b := range jobs {
				results <- d.batch(ctx, b)
			}
		})
	}
	stop := sync.OnceFunc(func() {
		close(jobs)
		go func() { wg.Wait(); close(results) }()
		for range results { // drain: workers never block on a caller that left
		}
	})
	defer stop() // an OnOutcome that panics strands no worker
	next, pending := 0, 0
	for next < len(targets) || pending > 0 {
		var send chan []Target
		var b []Target
		if next < len(targets) {
			if ctx.Err() != nil {
				for _, t := range targets[next:] {
					d.emit(Outcome{Target: t, Action: ActionKeep, Reason: KeptCancelled})
				}
				next = len(targets)
				continue
			}
			send, b = jobs, targets[next:min(next+batchLen, len(targets))]
		}
		select {
		case send <- b:
			next += len(b)
			pending++
		case outs := <-results:
			pending--
			for _, o := range outs {
				d.emit(o)
			}
		}
	}
}

// batch acts on up to batchLen targets and returns their outcomes.
func (d *deleter) batch(ctx context.Context, batch []Target) []Outcome {
	out := make([]Outcome, 0, len(batch))
	keep := func(t Target, reason string) {
		out = append(out, Outcome{Target: t, Action: ActionKeep, Reason: reason})
	}
	todo := make([]Target, 0, len(batch))
	for _, t := range batch {
		if err := d.noLinks(t); err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist):
				keep(t, KeptGone)
			case errors.Is(err, ErrSymlink) || errors.Is(err, ErrNotRegular):
				keep(t, KeptUnsafe) // a link, or a file where a directory should be
			default:
				out = append(out, Outcome{Target: t, Action: ActionFail, Err: wrap("stat", dirOf(t.Path), err)})
			}
			continue
		}
		todo = append(todo, t)
	}
	todo, err := d.recheck(ctx, todo, keep)
	if err != nil {
		if ctx.Err() != nil {
			for _, t := range todo {
				keep(t, KeptCancelled)
			}
			return out
		}
		// One file's directory could not be read safely (a link, say):
		// check file by file, and what fails keeps its file.
		var ok []Target
		for _, t := range todo {
			one, err := d.recheck(ctx, []Target{t}, keep)
			if err != nil {
				out = append(out, outcome(t, err))
				continue
			}
			ok = append(ok, one...)
		}
		todo = ok
	}
	var moves, removes []Target
	for _, t := range todo {
		if t.MoveTo != "" {
			moves = append(moves, t)
		} else {
			removes = append(removes, t)
		}
	}
	errs := RemoveFiles(ctx, d.fs, removes)
	for _, t := range moves {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, moveTarget(d.fs, t))
	}
	for i, t := range append(removes, moves...) {
		out = append(out, outcome(t, errs[i]))
	}
	return out
}

// outcome turns the error of one act into its Outcome.
func outcome(t Target, err error) Outcome {
	o := Outcome{Target: t}
	switch {
	case err == nil:
		o.Action = ActionDelete
		if t.MoveTo != "" {
			o.Action = ActionMove
		}
		return o
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		o.Reason = KeptCancelled
	case errors.Is(err, fs.ErrNotExist):
		o.Reason = KeptGone
	case errors.Is(err, fs.ErrExist):
		o.Reason = KeptTaken
	case errors.Is(err, ErrNotRegular):
		o.Reason = KeptNotRegular
	case errors.Is(err, ErrChanged):
		o.Reason = KeptChanged
	case errors.Is(err, ErrSymlink) || errors.Is(err, ErrUnsafePath):
		o.Reason = KeptUnsafe
	default:
		o.Action, o.Err = ActionFail, err
		return o
	}
	o.Action = ActionKeep
	return o
}

// recheck drops, with their reasons, the targets with Check whose file
// changed since the caller saw it, and returns the rest.
func (d *deleter) recheck(ctx context.Context, targets []Target, keep func(Target, string)) ([]Target, error) {
	var paths []string
	for _, t := range targets {
		if d.rechecks(t) {
			paths = append(paths, t.Path)
		}
	}
	if len(paths) == 0 {
		return targets, nil
	}
	now := make(map[string]Entry, len(paths))
	if err := Restat(ctx, d.fs, paths, func(_ int, e Entry) error { now[e.Path] = e; return nil }); err != nil {
		return targets, err
	}
	out := targets[:0]
	for _, t := range targets {
		if !d.rechecks(t) {
			out = append(out, t)
			continue
		}
		e, ok := now[t.Path]
		switch {
		case !ok:
			keep(t, KeptGone)
		case !e.Type.IsRegular():
			keep(t, KeptNotRegular)
		case Changed(t, e.Size, e.ModTime),
			t.ETag != "" && e.ETag != "" && !SameETag(t.ETag, e.ETag):
			keep(t, KeptChanged)
		default:
			if t.ETag == "" {
				t.ETag = e.ETag // the removal is conditional on what the re-check saw
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// rechecks reports whether recheck stats t: a target with Check, unless
// the backend checks it as it removes it (a move is always re-checked).
func (d *deleter) rechecks(t Target) bool {
	return t.Check && !(d.feat.ChecksOnRemove && t.MoveTo == "")
}

// Changed reports whether a file found as e differs from what target t
// says the caller saw: its size, or its modification time: exactly when
// both times have a fraction of a second (a local disk's nanoseconds, a
// listing's milliseconds), else to the second (object stores report
// whole seconds in some responses). Removers that check on removal
// ([Features].ChecksOnRemove) compare so.
func Changed(t Target, size int64, mtime time.Time) bool {
	if size != t.Size {
		return true
	}
	if mtime.Nanosecond() != 0 && t.ModTime.Nanosecond() != 0 {
		return !mtime.Equal(t.ModTime)
	}
	return !mtime.Truncate(time.Second).Equal(t.ModTime.Truncate(time.Second))
}

// SameETag compares entity tags, quoted or not: listings quote them, and
// some servers and hand-written plans do not.
func SameETag(a, b string) bool {
	return strings.Trim(a, `"`) == strings.Trim(b, `"`)
}

// noLinks checks, on backends that do not guarantee it themselves, that
// no directory segment of t's paths is a symbolic link. Each directory
// is checked once per Delete.
func (d *deleter) noLinks(t Target) error {
	if d.feat.NoFollow {
		return nil
	}
	for _, p := range []string{t.Path, t.MoveTo} {
		if p == "" {
			continue
		}
		if err := d.dirOK(dirOf(p), p == t.MoveTo); err != nil {
			return err
		}
	}
	return nil
}

// dirOK checks dir and its parents. A missing directory is fine for a
// move's destination, which the move creates.
func (d *deleter) dirOK(dir string, dest bool) error {
	if dir == "." || dir == "" {
		return nil
	}
	d.mu.Lock()
	err, seen := d.links[dir]
	d.mu.Unlock()
	if !seen {
		if err = d.dirOK(dirOf(dir), dest); err == nil {
			fi, lerr := lstat(d.fs, dir)
			switch {
			case lerr != nil:
				err = lerr
			case fi.Mode()&fs.ModeSymlink != 0:
				err = ErrSymlink
			case !fi.IsDir():
				err = ErrNotRegular
			}
		}
		d.mu.Lock()
		d.links[dir] = err
		d.mu.Unlock()
	}
	if dest && errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// removeDir removes the empty directory t.Path, or says why not.
func (d *deleter) removeDir(t Target) Outcome {
	if err := d.noLinks(Target{Path: join(t.Path, "x")}); err != nil {
		return outcome(t, err)
	}
	fi, err := lstat(d.fs, t.Path)
	switch {
	case err != nil:
		return outcome(t, err)
	case !fi.IsDir():
		return Outcome{Target: t, Action: ActionKeep, Reason: KeptNotRegular}
	}
	f, err := d.fs.Open(t.Path)
	if err != nil {
		return outcome(t, err)
	}
	names, err := f.Readdirnames(1)
	f.Close()
	// Only io.EOF means empty. Any other error keeps the directory: on a
	// backend whose Remove drops non-empty directories (MemMapFs), taking
	// a failed read for "empty" loses files.
	if len(names) > 0 || !isEOF(err) {
		return Outcome{Target: t, Action: ActionKeep, Reason: KeptNotEmpty}
	}
	if r, ok := d.fs.(Remover); ok {
		err = r.RemoveDir(t.Path) // atomic: never a file swapped in
	} else {
		err = d.fs.Remove(t.Path)
	}
	if err != nil {
		return Outcome{Target: t, Action: ActionFail, Err: wrap("rmdir", t.Path, err)}
	}
	return Outcome{Target: t, Action: ActionDelete}
}
