package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/sweep"
)

// Output is what --json prints: one JSON document on stdout, for a run
// that succeeded and for one that did not (then Error says why, and the
// reports say what was done before).
type Output struct {
	DryRun  bool          `json:"dry_run"`
	Sweep   *sweep.Report `json:"sweep"`
	Orphans *OrphanOutput `json:"orphans"`
	// Restored says what --restore did.
	Restored *orphan.RestoreReport `json:"restored,omitempty"`
	// Error is set when the command exits with a code other than 0.
	Error *ErrorOutput `json:"error,omitempty"`
	// Purged says what --purge-after deleted.
	Purged *orphan.PurgeReport `json:"purged,omitempty"`
}

// ErrorOutput says why a run ended with an error.
type ErrorOutput struct {
	// ExitCode is the command's: 1 error, 2 usage, 3 refused by a guard.
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
	// Uncovered names the directories the coverage guard refused.
	Uncovered []string `json:"uncovered,omitempty"`
}

// OrphanOutput is the orphan check's part of Output.
type OrphanOutput struct {
	Plan    *orphan.Plan   `json:"plan"`
	Applied *orphan.Report `json:"applied"`
}

// execute plans first and acts after: the orphan plan and its guards run
// before anything is deleted, so a refused check deletes nothing at all.
func (c *config) execute(ctx context.Context, stdout, stderr io.Writer) int {
	out := Output{DryRun: c.dryRun}
	prog := newProgress(stderr, false)
	defer prog.stop()
	// fail ends the run: one line on stderr, and with --json the document
	// on stdout, with the error and what was done before it.
	fail := func(code int, format string, args ...any) int {
		prog.stop()
		msg := fmt.Sprintf(format, args...)
		fmt.Fprintf(stderr, "cleanup-media: %s\n", msg)
		if c.json {
			out.Error = &ErrorOutput{ExitCode: code, Message: msg}
			if out.Orphans != nil && out.Orphans.Plan != nil {
				out.Error.Uncovered = out.Orphans.Plan.Uncovered
			}
			c.print(stdout, out)
		}
		return code
	}
	if fi, err := os.Stat(c.root); err != nil || !fi.IsDir() {
		return fail(exitError, "root %q is not a directory", c.root)
	}
	if c.quarantine != "" {
		if err := storage.ValidPath(strings.Trim(c.quarantine, "/")); err != nil {
			return fail(exitUsage, "--quarantine must be a folder below the root: %v", err)
		}
		c.quarantine = strings.Trim(c.quarantine, "/")
	}
	fsys, err := rootfs.New(c.root)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer fsys.Close()

	if c.restore != "" {
		q := orphan.NewQuarantine(fsys, c.quarantine, orphan.QuarantineOptions{DryRun: c.dryRun})
		rep, err := q.Restore(ctx, c.restore)
		out.Restored = rep
		if err != nil {
			return fail(exitError, "restore: %v", err)
		}
		if c.json {
			c.print(stdout, out)
		} else {
			verb := "Restored"
			if c.dryRun {
				verb = "Dry run: would restore"
			}
			fmt.Fprintf(stdout, "%s %d files from run %s.\n", verb, rep.Restored.Files, c.restore)
			if rep.NotMoved.Files > 0 {
				fmt.Fprintf(stdout, "%d files the run lists were never moved: they are at their paths.\n", rep.NotMoved.Files)
			}
		}
		return exitOK
	}

	verbose := io.Discard
	if c.verbose {
		verbose = stdout
		if c.json {
			verbose = stderr
		}
	}
	prog = newProgress(stderr, !c.verbose && !c.json)
	defer prog.stop()

	// With references (--refs-sql, --refs-file), the orphan check plans
	// against them, and the sweep keeps every file they name.
	var finder *orphan.Finder
	if len(c.refsSQL) > 0 || c.refsFile != "" {
		refs, closeRefs, code, err := c.references(ctx)
		if err != nil {
			return fail(code, "%v", err)
		}
		defer closeRefs()
		// 0 turns a guard off here; the library's zero means its default.
		minAge, maxFraction := c.minAge, c.maxFraction
		if minAge == 0 {
			minAge = -1
		}
		if maxFraction == 0 {
			maxFraction = -1
		}
		// The age rules' folders are not declared unreferenced: a missing
		// reference query there would otherwise delete what rows use.
		finder = orphan.New(fsys, refs, orphan.Options{
			MinAge: minAge, MaxDeletes: c.maxDelete, MaxFraction: maxFraction, Force: c.force,
			Quarantine: c.quarantine, Unreferenced: c.unreferenced,
			OnEvent: func(e orphan.Event) {
				prog.count()
				if e.Action != "orphan" {
					size := " (" + humanize.Bytes(uint64(e.Size)) + ")"
					if e.Size == 0 && e.Action == "keep" {
						size = "" // on a local disk, kept files are often not measured
					}
					fmt.Fprintf(verbose, "%-10s %s%s %s\n", e.Action, e.Path, size, e.Reason)
				}
			},
		})
	}
	if c.checkOrphans {
		prog.phase("finding orphans")
		plan, err := finder.Find(ctx)
		if plan != nil {
			out.Orphans = &OrphanOutput{Plan: plan}
		}
		if err == nil {
			err = finder.Check(plan)
		}
		if err != nil {
			prog.stop()
			if plan != nil && len(plan.Uncovered) > 0 && errors.Is(err, orphan.ErrUncovered) {
				fmt.Fprintln(stderr, "cleanup-media: these directories hold files older than the grace period, and no reference points into them:")
				for _, d := range plan.Uncovered {
					fmt.Fprintf(stderr, "  %s\n", d)
				}
				fmt.Fprintln(stderr, "Is a reference query missing (--refs-sql for every file column)? If they are meant to hold unreferenced files, pass --unreferenced 'DIR/**'.")
			}
			return fail(guardCode(err), "orphan check refused, nothing deleted: %v", err)
		}
	}

	rules := c.sweepRules()
	if len(rules) > 0 {
		var protected []string
		if c.quarantine != "" {
			protected = []string{c.quarantine + "/**"}
		}
		var refs storage.RefChecker
		if finder != nil {
			prog.phase("reading references")
			set, err := finder.LoadReferences(ctx)
			if err != nil {
				return fail(guardCode(err), "sweep refused, nothing deleted: %v", err)
			}
			refs = set
		}
		s := sweep.New(fsys, sweep.Options{
			Rules: rules, DryRun: c.dryRun, Protected: protected, TempMaxAge: -1, Refs: refs,
			OnEvent: func(e sweep.Event) {
				prog.count()
				if e.Action != "keep" || c.verbose {
					fmt.Fprintf(verbose, "%-12s %s (%s) %s%s\n", e.Action, e.Path, humanize.Bytes(uint64(e.Size)), e.Rule, reason(e.Reason))
				}
			},
		})
		prog.phase("sweeping")
		rep, err := s.Sweep(ctx)
		out.Sweep = rep
		if err != nil {
			if !c.json {
				c.print(stdout, out) // what was done before the failure
			}
			return fail(exitError, "sweep: %v", err)
		}
	}

	if c.checkOrphans && !c.dryRun {
		prog.phase("removing orphans")
		rep, err := finder.Apply(ctx, out.Orphans.Plan)
		out.Orphans.Applied = rep
		if err != nil {
			if !c.json {
				c.print(stdout, out)
			}
			return fail(guardCode(err), "orphans: %v", err)
		}
	}
	if c.purgeAfter > 0 {
		q := orphan.NewQuarantine(fsys, c.quarantine, orphan.QuarantineOptions{DryRun: c.dryRun})
		rep, err := q.Purge(ctx, c.purgeAfter)
		out.Purged = rep
		if err != nil {
			if !c.json {
				c.print(stdout, out)
			}
			return fail(exitError, "purge: %v", err)
		}
	}
	prog.stop()
	c.print(stdout, out)
	if len(rules) == 0 && finder == nil && c.purgeAfter == 0 {
		fmt.Fprintln(stderr, "cleanup-media: nothing to do (--qr-age 0, no --rule, no --check-orphans)")
	}
	return exitOK
}

// sweepRules are the age rules of this run: --qr-age and --rule.
func (c *config) sweepRules() []sweep.Rule {
	var rules []sweep.Rule
	if c.qrAge > 0 {
		rules = append(rules, sweep.Rule{Name: "qr_codes", Glob: "qr_codes/**", MaxAge: c.qrAge})
	}
	for _, r := range c.rules {
		rules = append(rules, sweep.Rule{Glob: r.glob, MaxAge: r.age})
	}
	return rules
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return " [" + r + "]"
}

// guardCode tells a guard's refusal (3) from any other error (1).
func guardCode(err error) int {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return exitError // stopped by a signal: not a guard's refusal
	}
	for _, g := range []error{orphan.ErrProvider, orphan.ErrNoReferences, orphan.ErrUncovered, orphan.ErrDeleteLimit, orphan.ErrFractionLimit, orphan.ErrBytesLimit} {
		if errors.Is(err, g) {
			return exitRefused
		}
	}
	return exitError
}

// references builds the provider from --refs-sql and --refs-file. An
// unreadable file or an unknown driver is an error before anything runs.
func (c *config) references(ctx context.Context) (orphan.Provider, func(), int, error) {
	var providers []orphan.Provider
	closeAll := func() {}
	if c.refsFile != "" {
		name, cleanup, err := readableRefs(ctx, c.refsFile)
		if err != nil {
			return nil, nil, exitError, fmt.Errorf("references file: %w", err)
		}
		closeAll = cleanup
		providers = append(providers, orphan.File(name))
	}
	if len(c.refsSQL) > 0 {
		driver, dsn, ok := strings.Cut(c.db, ":")
		if !ok || dsn == "" {
			return nil, nil, exitUsage, fmt.Errorf("--db %q: want DRIVER:DSN, such as sqlite:app.db", c.db)
		}
		if driver != "sqlite" {
			return nil, nil, exitUsage, fmt.Errorf("--db: driver %q is not built in (built in: sqlite)", driver)
		}
		if _, err := os.Stat(dsn); err != nil {
			return nil, nil, exitError, fmt.Errorf("database: %w", err)
		}
		db, err := sql.Open(driver, "file:"+dsn+"?mode=ro")
		if err != nil {
			return nil, nil, exitError, err
		}
		prev := closeAll
		closeAll = func() { db.Close(); prev() }
		providers = append(providers, sqlrefs.New(db, c.refsSQL...))
	}
	return orphan.Combine(providers...), closeAll, exitOK, nil
}

// readableRefs returns a file that holds the references of name and can
// be read twice (Find and Apply each stream them): name itself when it is
// a regular file, or else (a pipe such as "<(psql ...)", a FIFO, a
// device) a temporary copy, read once. The copy is read on its own
// goroutine, so that a FIFO no writer opens, or a pipe that never ends,
// does not keep a signal from stopping the run.
func readableRefs(ctx context.Context, name string) (string, func(), error) {
	fi, err := os.Stat(name)
	if err != nil {
		return "", nil, err
	}
	if fi.Mode().IsRegular() {
		return name, func() {}, nil
	}
	if fi.IsDir() {
		return "", nil, fmt.Errorf("%s is a directory", name)
	}
	tmp, err := os.CreateTemp("", "cleanup-media-refs-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	done := make(chan error, 1)
	go func() {
		src, err := os.Open(name) // blocks on a FIFO until a writer comes
		if err == nil {
			_, err = io.Copy(tmp, src)
			src.Close()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err() // the reader stays blocked; the process is ending
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return tmp.Name(), cleanup, nil
}

func (c *config) print(w io.Writer, out Output) {
	if c.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return
	}
	verb := "deleted"
	if out.DryRun {
		fmt.Fprintln(w, "Dry run: nothing was deleted.")
		verb = "would delete"
	}
	if r := out.Sweep; r != nil {
		fmt.Fprintf(w, "Sweep: scanned %d files; %s %d files (%s); kept %d young",
			r.Scanned.Files, verb, r.Deleted.Files, humanize.Bytes(uint64(r.Deleted.Bytes)), r.Kept[sweep.KeptYoung].Files)
		if r.Failed.Files > 0 {
			fmt.Fprintf(w, "; %d failed", r.Failed.Files)
		}
		if r.Stopped != "" {
			fmt.Fprintf(w, "; stopped by %s", r.Stopped)
		}
		fmt.Fprintln(w, ".")
	}
	if o := out.Orphans; o != nil {
		p := o.Plan
		fmt.Fprintf(w, "Orphaned files: %d (%s wasted) of %d scanned.\n", p.Total.Files, humanize.Bytes(uint64(p.Total.Bytes)), p.Scanned.Files)
		if p.InvalidReferences > 0 {
			fmt.Fprintf(w, "References that are not valid stored paths, so keep nothing: %d of %d.\n", p.InvalidReferences, p.References)
		}
		if len(p.Dirs) > 0 {
			fmt.Fprintln(w, "Directories with the most orphans:")
			for _, d := range p.Dirs {
				fmt.Fprintf(w, "  %-40s %6d files %10s\n", d.Dir, d.Files, humanize.Bytes(uint64(d.Bytes)))
			}
		}
		if p.MissingCount > 0 {
			fmt.Fprintf(w, "References whose files are missing: %d.\n", p.MissingCount)
		}
		if a := o.Applied; a != nil {
			fmt.Fprintf(w, "Orphans: deleted %d (%s), quarantined %d, kept %d changed or referenced since the check, failed %d.\n",
				a.Deleted.Files, humanize.Bytes(uint64(a.Deleted.Bytes)), a.Quarantined.Files,
				a.Kept[orphan.KeptChanged].Files+a.Kept[orphan.KeptReferenced].Files, a.Failed.Files)
			if a.QuarantineRun != "" {
				fmt.Fprintf(w, "Quarantine run: %s\n", a.QuarantineRun)
			}
		}
	}
	if out.Purged != nil {
		verb := "Purged"
		if out.DryRun {
			verb = "Would purge"
		}
		for _, run := range out.Purged.Runs {
			fmt.Fprintf(w, "%s quarantine run %s.\n", verb, run)
		}
	}
}

// progress shows a one-line counter on stderr while stderr is a terminal.
type progress struct {
	on    bool
	w     io.Writer
	n     atomic.Int64
	name  atomic.Value
	done  chan struct{}
	ended atomic.Bool
}

func newProgress(stderr io.Writer, want bool) *progress {
	p := &progress{w: stderr, done: make(chan struct{})}
	if f, ok := stderr.(*os.File); ok && want {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.on = true
		}
	}
	p.name.Store("starting")
	if p.on {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-p.done:
					fmt.Fprint(p.w, "\r\033[K")
					return
				case <-t.C:
					fmt.Fprintf(p.w, "\r\033[K%s: %d files decided", p.name.Load(), p.n.Load())
				}
			}
		}()
	}
	return p
}

func (p *progress) count()         { p.n.Add(1) }
func (p *progress) phase(n string) { p.name.Store(n); p.n.Store(0) }
func (p *progress) stop() {
	if p.ended.CompareAndSwap(false, true) {
		close(p.done)
	}
}
