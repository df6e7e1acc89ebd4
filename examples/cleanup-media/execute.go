package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/dustin/go-humanize"
	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
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
	// Error is set when the command exits with a code other than 0 (and
	// 4, nothing to do, with --detailed-exit-codes).
	Error *ErrorOutput `json:"error,omitempty"`
	// Purged says what --purge-after deleted.
	Purged *orphan.PurgeReport `json:"purged,omitempty"`
	// References counts the references each --refs-sql query and
	// --refs-file gave, in the last pass that read them all.
	References []SourceCount `json:"references,omitempty"`
}

// SourceCount is how many references one source gave.
type SourceCount struct {
	// Source is "--refs-sql QUERY" or "--refs-file FILE".
	Source     string `json:"source"`
	References int    `json:"references"`
	// Stored says whether one of a random sample of the source's
	// references (up to 64) names a stored file; absent when not checked.
	Stored *bool `json:"stored,omitempty"`

	sample []string // a sample of the references, for the check
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

// runner holds one run's state: its output document, progress line,
// metrics and writers.
type runner struct {
	c              *config
	stdin          io.Reader
	stdout, stderr io.Writer
	verbose        io.Writer // the per-file lines, or io.Discard
	out            Output
	keyRange       orphan.KeyRange // this shard's, or every path
	listing        orphan.Listing  // --inventory's report, or nil
	prog           *progress
	met            *metrics
	sources        *refSources // the references' sources, or nil
	sweepUncovered []string    // the directories the sweep's coverage guard refused
	fsys           afero.Fs    // the root
	started        time.Time
}

// execute plans first and acts after: the orphan plan, its guards and the
// confirmation run before anything is deleted, so a refused check or a
// declined question deletes nothing at all.
func (c *config) execute(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) int {
	r := &runner{c: c, stdin: stdin, stdout: stdout, stderr: stderr, verbose: io.Discard,
		out: Output{DryRun: c.dryRun}, started: time.Now()}
	if c.verbose {
		r.verbose = stdout
		if c.json {
			r.verbose = stderr
		}
	}
	mode := c.progress
	if r.verbose == stderr {
		mode = "never" // the lines and the bar would share one screen line
	}
	r.prog = newProgress(stderr, mode)
	defer r.prog.stop()
	if c.metricsFile != "" {
		shard := ""
		if c.shard >= 0 {
			shard = fmt.Sprintf("%d/%d", c.shard, c.shards)
		}
		r.met = newMetrics(shard)
	}
	code := r.run(ctx)
	if r.met != nil && c.restore == "" && !c.makeShardMap {
		if err := r.met.write(c.metricsFile, &r.out, time.Since(r.started), time.Now(), code == exitOK); err != nil {
			fmt.Fprintf(stderr, "cleanup-media: metrics: %v\n", err)
			if code == exitOK {
				code = exitError
			}
		}
	}
	if code == exitOK && c.detailedExit && !c.makeShardMap && r.out.acted() == 0 {
		code = exitNothing
	}
	return code
}

// acted counts the files the run deleted, moved into the quarantine,
// purged or restored; in a dry run, those it would have.
func (o *Output) acted() int {
	n := 0
	if o.Sweep != nil {
		n += o.Sweep.Deleted.Files
	}
	if o.Orphans != nil {
		switch {
		case o.Orphans.Applied != nil:
			n += o.Orphans.Applied.Deleted.Files + o.Orphans.Applied.Quarantined.Files
		case o.DryRun && o.Orphans.Plan != nil:
			n += o.Orphans.Plan.Total.Files
		}
	}
	if o.Purged != nil {
		n += o.Purged.Deleted.Files
	}
	if o.Restored != nil {
		n += o.Restored.Restored.Files
	}
	return n
}

// fail ends the run: one line on stderr, and with --json the document on
// stdout, with the error and what was done before it (without --json the
// summary of what was done comes first).
func (r *runner) fail(code int, format string, args ...any) int {
	r.prog.stop()
	// One line: drivers' messages can span several (pgx lists each
	// address it tried).
	msg := strings.NewReplacer("\n\t", "; ", "\n", " ").Replace(strings.TrimSpace(fmt.Sprintf(format, args...)))
	if !r.c.json && (r.out.Sweep != nil || (r.out.Orphans != nil && r.out.Orphans.Applied != nil)) {
		r.c.print(r.stdout, r.out)
	}
	fmt.Fprintf(r.stderr, "cleanup-media: %s\n", msg)
	if r.c.json {
		r.out.Error = &ErrorOutput{ExitCode: code, Message: msg}
		switch {
		case r.sweepUncovered != nil: // the sweep's guard refused
			r.out.Error.Uncovered = r.sweepUncovered
		case r.out.Orphans != nil && r.out.Orphans.Plan != nil:
			r.out.Error.Uncovered = r.out.Orphans.Plan.Uncovered
		}
		r.c.print(r.stdout, r.out)
	}
	return code
}

func (r *runner) run(ctx context.Context) int {
	c := r.c
	if c.quarantine != "" {
		if strings.HasPrefix(c.quarantine, "/") {
			// "/tmp/trash" would become trash inside the root, where the
			// web server may publish it.
			return r.fail(exitUsage, "--quarantine is a folder relative to the root (trash, not /trash or /srv/media/trash): %q", c.quarantine)
		}
		q := strings.Trim(c.quarantine, "/")
		if err := storage.ValidPath(q); err != nil {
			return r.fail(exitUsage, "--quarantine must be a folder below the root: %v", err)
		}
		c.quarantine = q
	}
	fsys, closeRoot, err := c.openRoot(ctx)
	r.fsys = fsys
	if err != nil {
		return r.fail(exitError, "%v", err)
	}
	defer closeRoot()
	if c.restore != "" {
		return r.restore(ctx, fsys)
	}
	if c.inventory != "" {
		if r.listing, err = openInventory(ctx, c.inventory, fsys, c.merge, c.tempDir); err != nil {
			return r.fail(exitError, "%v", err)
		}
	}

	if c.shard >= 0 {
		if code := r.loadShard(); code != exitOK {
			return code
		}
	}
	// With references (--refs-sql, --refs-file), the orphan check plans
	// against them, and the sweep keeps every file they name.
	var finder *orphan.Finder
	if len(c.refsSQL) > 0 || len(c.refsFiles) > 0 {
		refs, sources, closeRefs, err := c.references(ctx)
		if errors.Is(err, errEmptyRefs) {
			return r.fail(exitRefused, "%v", err)
		}
		if err != nil {
			return r.fail(exitError, "%v", err)
		}
		defer closeRefs()
		r.sources = sources
		finder = r.finder(fsys, r.prog.counting(refs))
	}
	if c.makeShardMap {
		return r.writeShardMap(ctx, finder)
	}
	if c.checkOrphans {
		if code := r.find(ctx, finder); code != exitOK {
			return code
		}
		if code := r.confirm(ctx); code != exitOK {
			return code
		}
	} else if r.met != nil {
		if err := r.measure(ctx, fsys); err != nil {
			return r.fail(exitError, "listing the root: %v", err)
		}
	}
	rules := c.sweepRules()
	if c.shard > 0 {
		rules = nil // the age rules and the purge run in shard 0 only
		c.purgeAfter = 0
	}
	if len(rules) > 0 {
		if code := r.sweep(ctx, fsys, finder, rules); code != exitOK {
			return code
		}
	}
	if c.checkOrphans && !c.dryRun {
		if code := r.apply(ctx, finder); code != exitOK {
			return code
		}
	}
	if c.purgeAfter > 0 {
		q := orphan.NewQuarantine(fsys, c.quarantine, orphan.QuarantineOptions{DryRun: c.dryRun})
		rep, err := q.Purge(ctx, c.purgeAfter)
		r.out.Purged = rep
		if err != nil {
			return r.fail(exitError, "purge: %v", err)
		}
	}
	r.prog.stop()
	c.print(r.stdout, r.out)
	if len(rules) == 0 && finder == nil && c.purgeAfter == 0 {
		fmt.Fprintln(r.stderr, "cleanup-media: nothing to do (--qr-age 0, no --rule, no --check-orphans)")
	}
	return exitOK
}

func (r *runner) restore(ctx context.Context, fsys afero.Fs) int {
	c := r.c
	q := orphan.NewQuarantine(fsys, c.quarantine, orphan.QuarantineOptions{DryRun: c.dryRun})
	rep, err := q.Restore(ctx, c.restore)
	r.out.Restored = rep
	if err != nil {
		return r.fail(exitError, "restore: %v", err)
	}
	if c.json {
		c.print(r.stdout, r.out)
		return exitOK
	}
	verb := "Restored"
	if c.dryRun {
		verb = "Dry run: would restore"
	}
	fmt.Fprintf(r.stdout, "%s %d files from run %s.\n", verb, rep.Restored.Files, c.restore)
	if rep.NotMoved.Files > 0 {
		fmt.Fprintf(r.stdout, "%d files the run lists are already at their paths (never moved, or restored before).\n", rep.NotMoved.Files)
	}
	return exitOK
}

// protected are the globs neither the sweep nor the orphan check touches:
// --exclude, and the quarantine area.
func (c *config) protected() []string {
	p := slices.Clone(c.exclude)
	if c.quarantine != "" {
		p = append(p, storage.QuoteGlob(c.quarantine)+"/**")
	}
	return p
}

func (r *runner) finder(fsys afero.Fs, refs orphan.Provider) *orphan.Finder {
	c := r.c
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
	return orphan.New(fsys, refs, orphan.Options{
		MinAge: minAge, MaxDeletes: c.maxDelete, MaxFraction: maxFraction, Force: c.force,
		Quarantine: c.quarantine, Unreferenced: c.unreferenced, StripPrefixes: c.stripPrefixes,
		Protected: c.exclude, MeasureAll: r.met != nil, Range: r.keyRange,
		Merge: c.merge, TempDir: c.tempDir, OnEvent: r.orphanEvent, Listing: r.listing,
	})
}

// orphanEvent shows progress, counts the media for --metrics-file (every
// regular file Find lists has exactly one event there), and with
// --verbose lists what Apply did.
func (r *runner) orphanEvent(e orphan.Event) {
	switch e.Action {
	case orphan.ActionOrphan, orphan.ActionKeep:
		if r.out.Orphans == nil { // Find
			r.prog.add(1)
			if r.met != nil && e.Reason != orphan.KeptNotRegular {
				r.met.file(e.Path, e.Size)
			}
			return
		}
	}
	r.prog.add(1)
	if e.Reason != orphan.KeptGone { // the sweep may have taken it first
		r.line(string(e.Action), e.Size, reasonOf(e.Action, e.Reason, "unreferenced"), e.Path)
	}
}

// line is one --verbose line: what, how big, why, and the path last, so
// that names with spaces stay readable.
func (r *runner) line(action string, size int64, why, path string) {
	fmt.Fprintf(r.verbose, "%-12s %9s  %-24s %s\n", action, humanize.Bytes(uint64(size)), why, path)
}

func reasonOf(a storage.Action, reason, acted string) string {
	if a == storage.ActionKeep || reason != "" {
		return "kept: " + reason
	}
	return acted
}

// find plans the orphan check and runs its guards.
func (r *runner) find(ctx context.Context, finder *orphan.Finder) int {
	r.prog.phase("finding orphans", 0, "files")
	plan, err := finder.Find(ctx)
	if plan != nil {
		r.out.Orphans = &OrphanOutput{Plan: plan}
	}
	if err == nil {
		err = r.checkSources(ctx, r.fsys, finder, r.sources)
	}
	if err == nil {
		err = finder.Check(plan)
	}
	if err != nil {
		r.prog.stop()
		if r.met != nil {
			r.met.refused(err)
		}
		if plan != nil && errors.Is(err, orphan.ErrUncovered) {
			r.printUncovered("files older than the grace period", plan.Uncovered)
		}
		return r.fail(guardCode(err), "orphan check refused, nothing deleted: %v", err)
	}
	if r.c.dryRun {
		for _, o := range plan.Orphans {
			r.line(string(storage.ActionWouldDelete), o.Size, "unreferenced", o.Path)
		}
	}
	return exitOK
}

// confirm asks before a real orphan deletion when a person is at a
// terminal (stdin and stderr both terminals) and --yes was not given:
// the plan's totals and directories, then a question whose default is
// no. Without a terminal (cron, systemd, Kubernetes) it does not ask.
func (r *runner) confirm(ctx context.Context) int {
	plan := r.out.Orphans.Plan
	if r.c.dryRun || r.c.yes || plan.Total.Files == 0 || !isTerminal(r.stdin) || !isTerminal(r.stderr) {
		return exitOK
	}
	r.prog.stop()
	verb := "delete"
	if r.c.quarantine != "" {
		verb = "move into the quarantine"
	}
	w := r.stderr
	fmt.Fprintf(w, "The orphan check found %d files (%s) that no reference names, of %d scanned in %s.\n",
		plan.Total.Files, humanize.Bytes(uint64(plan.Total.Bytes)), plan.Scanned.Files, r.c.root)
	if len(plan.Dirs) > 0 {
		fmt.Fprintf(w, "  %-40s %8s %10s\n", "DIRECTORY", "FILES", "SIZE")
		for _, d := range plan.Dirs {
			fmt.Fprintf(w, "  %-40s %8d %10s\n", d.Dir, d.Files, humanize.Bytes(uint64(d.Bytes)))
		}
	}
	fmt.Fprintf(w, "%s these %d files? [y/N] ", strings.ToUpper(verb[:1])+verb[1:], plan.Total.Files)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r.stdin).ReadString('\n')
		answer <- strings.TrimSpace(strings.ToLower(line))
	}()
	select {
	case a := <-answer:
		if a == "y" || a == "yes" {
			r.prog = newProgress(r.stderr, r.c.progress)
			return exitOK
		}
	case <-ctx.Done():
		fmt.Fprintln(w)
		return r.fail(exitError, "stopped at the question, nothing deleted: %v", ctx.Err())
	}
	return r.fail(exitError, "not confirmed, nothing deleted (--yes skips the question)")
}

// loadShard reads --shard-map and takes this run's range from it.
func (r *runner) loadShard() int {
	c := r.c
	if c.shards == 1 && c.shardMap == "" {
		return exitOK // one shard: every path
	}
	data, err := os.ReadFile(c.shardMap)
	if err != nil {
		return r.fail(exitError, "shard map: %v", err)
	}
	var m orphan.ShardMap
	if err := json.Unmarshal(data, &m); err != nil {
		return r.fail(exitError, "shard map %s: %v", c.shardMap, err)
	}
	if m.Shards() != c.shards {
		return r.fail(exitUsage, "shard map %s has %d shards, not %d", c.shardMap, m.Shards(), c.shards)
	}
	rng, err := m.Range(c.shard)
	if err != nil {
		return r.fail(exitError, "shard map %s: %v", c.shardMap, err)
	}
	r.keyRange = rng
	return exitOK
}

// writeShardMap samples the references and writes the boundaries of
// --shards N to --shard-map, replacing it atomically.
func (r *runner) writeShardMap(ctx context.Context, finder *orphan.Finder) int {
	c := r.c
	r.prog.phase("sampling references", 0, "refs")
	sample, err := finder.SampleReferences(ctx, 100*c.shards+10000)
	if err != nil {
		return r.fail(guardCode(err), "shard map: %v", err)
	}
	m, err := orphan.NewShardMap(sample, c.shards)
	if err != nil {
		return r.fail(exitError, "shard map: %v", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = writeAtomic(c.shardMap, append(data, '\n'))
	}
	if err != nil {
		return r.fail(exitError, "shard map: %v", err)
	}
	r.prog.stop()
	if c.json {
		enc := json.NewEncoder(r.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(m)
	} else {
		fmt.Fprintf(r.stdout, "Wrote %s: %d shards, boundaries from a sample of %d references.\n", c.shardMap, m.Shards(), len(sample))
	}
	return exitOK
}

// writeAtomic writes data to a temporary file beside name and renames it
// into place, so a reader sees the old file or the new one, never half.
func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing is there
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// measure lists the root for --metrics-file when no orphan check does.
func (r *runner) measure(ctx context.Context, fsys afero.Fs) error {
	r.prog.phase("measuring", 0, "files")
	return storage.List(ctx, fsys, storage.ListOptions{}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			r.prog.add(1)
			r.met.file(e.Path, e.Size)
		}
		return nil
	})
}

// printUncovered names the directories the coverage guard refused, and
// what to do.
func (r *runner) printUncovered(what string, dirs []string) {
	if len(dirs) == 0 {
		return
	}
	fmt.Fprintf(r.stderr, "cleanup-media: these directories hold %s, and no reference points into them:\n", what)
	for _, d := range dirs {
		fmt.Fprintf(r.stderr, "  %s\n", d)
	}
	fmt.Fprintln(r.stderr, "Is a reference query missing (--refs-sql for every file column)? If they are meant to hold unreferenced files, pass --unreferenced 'DIR/**'.")
}

func (r *runner) sweep(ctx context.Context, fsys afero.Fs, finder *orphan.Finder, rules []sweep.Rule) int {
	c := r.c
	var refs storage.RefChecker
	var approve func(context.Context, []string) error
	if finder != nil {
		r.prog.phase("reading references", 0, "refs")
		set, err := finder.LoadReferences(ctx)
		if err == nil {
			err = r.checkSources(ctx, fsys, finder, r.sources)
		}
		if err != nil {
			if r.met != nil {
				r.met.refused(err)
			}
			return r.fail(guardCode(err), "sweep refused, nothing deleted: %v", err)
		}
		refs = set
		if !c.force {
			// The orphan check's coverage guard looks only at files
			// past the grace period, which an age rule may undercut.
			approve = func(_ context.Context, paths []string) error { return r.sweepCovered(set, paths) }
		}
	}
	s := sweep.New(fsys, sweep.Options{
		Rules: rules, DryRun: c.dryRun, Protected: c.protected(), TempMaxAge: -1, Refs: refs,
		RemoveEmptyDirs: c.removeEmpty, Approve: approve,
		OnEvent: func(e sweep.Event) {
			r.prog.add(1)
			if e.Action != sweep.ActionKeep {
				r.line(string(e.Action), e.Size, reasonOf(e.Action, e.Reason, "rule "+e.Rule), e.Path)
			}
		},
	})
	r.prog.phase("sweeping", 0, "files")
	rep, err := s.Sweep(ctx)
	r.out.Sweep = rep
	if err != nil {
		if code := guardCode(err); code == exitRefused {
			if r.met != nil {
				r.met.refused(err)
			}
			return r.fail(code, "%v; nothing deleted", err)
		}
		return r.fail(exitError, "sweep: %v", err)
	}
	return exitOK
}

// sweepCovered refuses the sweep's plan, with orphan.ErrUncovered, when a
// directory it would delete in holds not one file a reference names: with
// references given, the age rules keep what rows reference, and a
// directory no reference points into is most likely a query left out,
// whose rows' files the sweep would delete. It is the sweep's
// Options.Approve, so it judges the very plan the sweep applies.
func (r *runner) sweepCovered(set *orphan.ReferenceSet, paths []string) error {
	// Every path: a directory is judged by the first of its paths that
	// --unreferenced does not declare, whichever the listing gave first.
	dirs := set.Uncovered(paths)
	if len(dirs) == 0 {
		return nil
	}
	r.sweepUncovered = dirs
	r.prog.stop()
	r.printUncovered("files the age rules would delete", dirs)
	return fmt.Errorf("%w: %s", orphan.ErrUncovered, strings.Join(dirs, ", "))
}

func (r *runner) apply(ctx context.Context, finder *orphan.Finder) int {
	plan := r.out.Orphans.Plan
	r.prog.phase("removing orphans", int64(len(plan.Orphans)), "files")
	rep, err := finder.Apply(ctx, plan)
	r.out.Orphans.Applied = rep
	if err != nil {
		if r.met != nil {
			r.met.refused(err)
		}
		if sw := r.out.Sweep; guardCode(err) == exitRefused && sw != nil && !sw.DryRun && sw.Deleted.Files > 0 {
			// Exit code 3 promises that nothing was deleted; the sweep has.
			return r.fail(exitError, "orphans refused, after the sweep deleted %d files: %v", sw.Deleted.Files, err)
		}
		return r.fail(guardCode(err), "orphans: %v", err)
	}
	return exitOK
}

// guardCode tells a guard's refusal (3) from any other error (1).
func guardCode(err error) int {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return exitError // stopped by a signal: not a guard's refusal
	}
	for _, g := range []error{errEmptySource, errNothingStored, orphan.ErrProvider, orphan.ErrNoReferences, orphan.ErrUncovered, orphan.ErrStaleListing, orphan.ErrDeleteLimit, orphan.ErrFractionLimit, orphan.ErrBytesLimit} {
		if errors.Is(err, g) {
			return exitRefused
		}
	}
	return exitError
}

// errEmptyRefs refuses a --refs-file that holds nothing.
var errEmptyRefs = errors.New("the references file is empty")

// references builds the provider from --refs-sql and --refs-file. An
// unreadable file or an unreachable database is an error before anything
// is listed.
func (c *config) references(ctx context.Context) (orphan.Provider, *refSources, func(), error) {
	var providers []orphan.Provider
	sources := &refSources{}
	closeAll := func() {}
	for _, file := range c.refsFiles {
		name, cleanup, err := readableRefs(ctx, file)
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("references file: %w", err)
		}
		prev := closeAll
		closeAll = func() { cleanup(); prev() }
		if blank, err := blankFile(name); err != nil || blank {
			// A failed export (a "<(psql ...)" whose command failed)
			// leaves an empty file, or one of a newline, a byte-order
			// mark or blank lines ('echo "$(psql ...)"', PowerShell's
			// Out-File): beside other references, its files would look
			// unreferenced.
			closeAll()
			if err != nil {
				return nil, nil, nil, fmt.Errorf("references file: %w", err)
			}
			return nil, nil, nil, fmt.Errorf("%w: %s holds no reference (a failed export?); nothing deleted", errEmptyRefs, file)
		}
		providers = append(providers, sources.file("--refs-file "+file, orphan.File(name)))
	}
	if len(c.refsSQL) > 0 {
		db, err := openDB(c.db)
		if err == nil {
			err = db.PingContext(ctx)
			if err != nil {
				db.Close()
			}
		}
		if err != nil {
			closeAll()
			return nil, nil, nil, fmt.Errorf("database: %w", err)
		}
		prev := closeAll
		closeAll = func() { db.Close(); prev() }
		// checkSources refuses an empty query itself, beside empty
		// --refs-file sources, and names --allow-empty-refs.
		sources.sql = sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, c.refsSQL...)
		sources.queries = c.refsSQL
		providers = append(providers, sources.sql)
	}
	return orphan.Combine(providers...), sources, closeAll, nil
}

// refSources are a run's reference sources, with what each gave.
type refSources struct {
	files   []SourceCount // the --refs-file sources, counted by file
	sql     *sqlrefs.Provider
	queries []string
}

// file returns p counting its references into a new file source, and
// keeping a sample of them.
func (s *refSources) file(name string, p orphan.Provider) orphan.Provider {
	s.files = append(s.files, SourceCount{Source: name, References: -1})
	i := len(s.files) - 1
	return orphan.ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		n := 0
		var sample []string
		err := p.References(ctx, func(ref string) error {
			n++
			sample = sqlrefs.Sample(sample, sqlrefs.SampleLen, n, ref)
			return fn(ref)
		})
		if err == nil {
			s.files[i].References, s.files[i].sample = n, sample
		}
		return err
	})
}

// counts returns what each source gave in its last complete pass.
func (s *refSources) counts() []SourceCount {
	out := slices.Clone(s.files)
	if s.sql != nil {
		n, samples := s.sql.Counts(), s.sql.Samples()
		for i, q := range s.queries {
			c := SourceCount{Source: "--refs-sql " + q, References: -1}
			if i < len(n) && i < len(samples) {
				c.References, c.sample = n[i], samples[i]
			}
			out = append(out, c)
		}
	}
	return out
}

// errEmptySource refuses a run in which one source gave no reference
// while another did.
var errEmptySource = errors.New("a reference source gave no reference")

// checkSources records what each source gave and, unless
// --allow-empty-refs, refuses a run in which one gave none while another
// gave some: a query on the wrong column or table, whose files would look
// unreferenced beside the others' (the coverage guard sees it only when
// they have a directory of their own). A single empty source is the
// empty-set guard's. Then, unless --allow-unstored-refs, it refuses a
// run with a source none of whose sampled references names a stored
// file (checkStored). Each flag relaxes its own check only: an operator
// whose table is empty keeps the check of the other sources' columns.
func (r *runner) checkSources(ctx context.Context, fsys afero.Fs, finder *orphan.Finder, sources *refSources) error {
	counts := sources.counts()
	r.out.References = counts
	if len(counts) > 1 && !r.c.allowEmpty {
		for _, c := range counts {
			if c.References == 0 {
				return fmt.Errorf("%w: %s (a wrong column or table? if it is an empty table, pass --allow-empty-refs)", errEmptySource, c.Source)
			}
		}
	}
	if r.c.allowUnstored {
		return nil
	}
	return checkStored(ctx, fsys, finder, counts)
}

// errNothingStored refuses a run in which a sample of a source's
// references names no stored file.
var errNothingStored = errors.New("references that name no stored file")

// checkStored asks storage whether one of a random sample of each
// source's references (up to 64) names a stored file, and refuses the
// run when none of a source's does: a query on the wrong column (ids,
// URLs where paths are stored), a compressed export, a --root one level
// off or a prefix left unstripped, whose files would all look
// unreferenced. A sound source whose references name missing files for
// the most part passes unless nearly all do (one in ten stored: refused
// about once in a thousand runs). It stops at a source's first hit: one
// request or stat for a sound source.
func checkStored(ctx context.Context, fsys afero.Fs, finder *orphan.Finder, counts []SourceCount) error {
	var none []string
	for i := range counts {
		c := &counts[i]
		if len(c.sample) == 0 {
			continue
		}
		found := false
		for _, ref := range c.sample {
			for _, p := range finder.Forms(ref) {
				if fi, err := fsys.Stat(p); err == nil && fi.Mode().IsRegular() {
					found = true
					break
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if found {
				break
			}
		}
		c.Stored = &found
		if !found {
			none = append(none, fmt.Sprintf("%s (e.g. %q)", c.Source, c.sample[0]))
		}
	}
	if len(none) == 0 {
		return nil
	}
	return fmt.Errorf("%w: not one of the references sampled (up to %d a source) from %s names a file under the root (a wrong column? a --root one level off? a --strip-prefix missing? a compressed export?); if that is expected, pass --allow-unstored-refs",
		errNothingStored, sqlrefs.SampleLen, strings.Join(none, ", "))
}

// blankFile reports whether the file name holds nothing but white space
// and a byte-order mark: no line a reference could be. It reads up to the
// first other character, in UTF-16 after a UTF-16 byte-order mark (what
// PowerShell 5's Out-File writes), else in UTF-8.
func blankFile(name string) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	hi := -1 // in UTF-16, the index of each unit's high byte
	if bom, _ := r.Peek(2); len(bom) == 2 {
		switch {
		case bom[0] == 0xff && bom[1] == 0xfe:
			hi = 1 // little-endian
		case bom[0] == 0xfe && bom[1] == 0xff:
			hi = 0
		}
	}
	if hi >= 0 {
		r.Discard(2)
		var unit [2]byte
		for {
			if _, err := io.ReadFull(r, unit[:]); err != nil {
				if err == io.EOF {
					return true, nil
				}
				return false, err // an odd byte at the end is no blank file either
			}
			if c := rune(unit[hi])<<8 | rune(unit[1-hi]); !unicode.IsSpace(c) {
				return false, nil
			}
		}
	}
	for first := true; ; first = false {
		c, _, err := r.ReadRune()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !(unicode.IsSpace(c) || first && c == '\ufeff') {
			return false, nil
		}
	}
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
			fmt.Fprintf(w, "References that are not valid stored paths as written: %d of %d (they do not count as references; read cut at a ? or in another character set, they may still keep a file).\n", p.InvalidReferences, p.References)
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
