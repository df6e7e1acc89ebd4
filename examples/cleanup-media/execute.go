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
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/sweep"
)

// Output is what --json prints.
type Output struct {
	DryRun  bool          `json:"dry_run"`
	Sweep   *sweep.Report `json:"sweep"`
	Orphans *OrphanOutput `json:"orphans"`
	// Purged names the quarantine runs deleted by --purge-after.
	Purged []string `json:"purged,omitempty"`
}

// OrphanOutput is the orphan check's part of Output.
type OrphanOutput struct {
	Plan    *orphan.Plan   `json:"plan"`
	Applied *orphan.Report `json:"applied"`
}

// execute plans first and acts after: the orphan plan and its guards run
// before anything is deleted, so a refused check deletes nothing at all.
func (c *config) execute(ctx context.Context, stdout, stderr io.Writer) int {
	fail := func(code int, format string, args ...any) int {
		fmt.Fprintf(stderr, "cleanup-media: "+format+"\n", args...)
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
	fsys, err := storage.NewRootFs(c.root)
	if err != nil {
		return fail(exitError, "%v", err)
	}
	defer fsys.Close()

	if c.restore != "" {
		f := orphan.New(fsys, orphan.Paths(), orphan.Options{Quarantine: c.quarantine})
		n, fails, err := f.Restore(ctx, c.restore)
		if err != nil {
			return fail(exitError, "restore: %v", err)
		}
		fmt.Fprintf(stdout, "Restored %d files from %s/%s.\n", n, c.quarantine, c.restore)
		for _, fl := range fails {
			fmt.Fprintf(stdout, "  not restored: %s (%s)\n", fl.Path, fl.Error)
		}
		if len(fails) > 0 {
			return exitError
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
	prog := newProgress(stdout, stderr, !c.verbose && !c.json)
	defer prog.stop()
	out := Output{DryRun: c.dryRun}

	var finder *orphan.Finder
	if c.checkOrphans {
		refs, closeRefs, code, err := c.references()
		if err != nil {
			return fail(code, "%v", err)
		}
		defer closeRefs()
		minAge := c.minAge
		if minAge == 0 {
			minAge = -1
		}
		finder = orphan.New(fsys, refs, orphan.Options{
			MinAge: minAge, MaxDeletes: c.maxDelete, MaxFraction: c.maxFraction, Force: c.force,
			Quarantine: c.quarantine,
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
		prog.phase("finding orphans")
		plan, err := finder.Find(ctx)
		if err == nil && !c.force {
			err = finder.CheckLimits(plan)
		}
		if err != nil {
			return fail(guardCode(err), "orphan check refused, nothing deleted: %v", err)
		}
		out.Orphans = &OrphanOutput{Plan: plan}
	}

	var rules []sweep.Rule
	if c.qrAge > 0 {
		rules = append(rules, sweep.Rule{Name: "qr_codes", Glob: "qr_codes/**", MaxAge: time.Duration(c.qrAge) * 24 * time.Hour})
	}
	for _, r := range c.rules {
		rules = append(rules, sweep.Rule{Glob: r.glob, MaxAge: r.age})
	}
	if len(rules) > 0 {
		var protected []string
		if c.quarantine != "" {
			protected = []string{c.quarantine + "/**"}
		}
		s := sweep.New(fsys, sweep.Options{
			Rules: rules, DryRun: c.dryRun, Protected: protected, TempMaxAge: -1,
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
			prog.stop()
			c.print(stdout, out) // what was done before the failure
			return fail(exitError, "sweep: %v", err)
		}
	}

	if finder != nil && !c.dryRun {
		prog.phase("removing orphans")
		rep, err := finder.Apply(ctx, out.Orphans.Plan)
		out.Orphans.Applied = rep
		if err != nil {
			prog.stop()
			c.print(stdout, out)
			return fail(guardCode(err), "orphans: %v", err)
		}
	}
	if c.purgeAfter > 0 && !c.dryRun {
		purger := orphan.New(fsys, orphan.Paths(), orphan.Options{Quarantine: c.quarantine})
		purged, fails, err := purger.Purge(ctx, c.purgeAfter)
		out.Purged = purged
		if err != nil || len(fails) > 0 {
			prog.stop()
			c.print(stdout, out)
			return fail(exitError, "purge: %v %v", err, fails)
		}
	}
	prog.stop()
	c.print(stdout, out)
	if len(rules) == 0 && finder == nil && c.purgeAfter == 0 {
		fmt.Fprintln(stderr, "cleanup-media: nothing to do (--qr-age 0, no --rule, no --check-orphans)")
	}
	return exitOK
}

func reason(r string) string {
	if r == "" {
		return ""
	}
	return " [" + r + "]"
}

// guardCode tells a guard's refusal (3) from any other error (1).
func guardCode(err error) int {
	for _, g := range []error{orphan.ErrProvider, orphan.ErrNoReferences, orphan.ErrDeleteLimit, orphan.ErrFractionLimit, orphan.ErrBytesLimit} {
		if errors.Is(err, g) {
			return exitRefused
		}
	}
	return exitError
}

// references builds the provider from --refs-sql and --refs-file. An
// unreadable file or an unknown driver is an error before anything runs.
func (c *config) references() (orphan.Provider, func(), int, error) {
	var providers []orphan.Provider
	closeAll := func() {}
	if c.refsFile != "" {
		f, err := os.Open(c.refsFile)
		if err != nil {
			return nil, nil, exitError, fmt.Errorf("references file: %w", err)
		}
		f.Close()
		providers = append(providers, orphan.File(c.refsFile))
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
		closeAll = func() { db.Close() }
		providers = append(providers, sqlrefs.New(db, c.refsSQL...))
	}
	return orphan.Combine(providers...), closeAll, exitOK, nil
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
	for _, run := range out.Purged {
		fmt.Fprintf(w, "Purged quarantine run %s.\n", run)
	}
}

// progress shows a one-line counter on stderr while stdout is a terminal.
type progress struct {
	on    bool
	w     io.Writer
	n     atomic.Int64
	name  atomic.Value
	done  chan struct{}
	ended atomic.Bool
}

func newProgress(stdout, stderr io.Writer, want bool) *progress {
	p := &progress{w: stderr, done: make(chan struct{})}
	if f, ok := stdout.(*os.File); ok && want {
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
