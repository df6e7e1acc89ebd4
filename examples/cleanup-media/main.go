// Command cleanup-media is the seed's "manage.py cleanup_media" for cron or
// systemd timers: it deletes old QR codes and files matching age rules, and
// with --check-orphans finds and removes files no database row references.
//
//	cleanup-media --root /srv/app/media --dry-run --verbose --check-orphans \
//	    --db sqlite:/srv/app/app.db --refs-sql "SELECT picture FROM users"
//
// Exit codes: 0 done (including nothing to do), 1 error (including
// deletions that failed), 2 usage, 3 refused by a guard (no references, a
// failing query, a directory no reference points into, a plan over a
// limit). Nothing is deleted on exit codes 2 and 3, nor on 1 unless the
// error came after deletions had begun, which the report then says.
//
// Ages take one syntax everywhere: 90m, 36h, 7d, 2w. A limit or a grace
// period of 0 turns it off.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mediaclean/mediaclean/examples/internal/age"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/sweep"
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitRefused = 3
)

func main() {
	// The first SIGINT or SIGTERM cancels the run, which stops between
	// files and deletes nothing more; a second one ends the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type config struct {
	root         string
	dryRun       bool
	verbose      bool
	qrAge        time.Duration
	checkOrphans bool
	rules        []ruleFlag
	refsSQL      []string
	db           string
	refsFile     string
	unreferenced []string
	minAge       time.Duration
	maxDelete    int
	maxFraction  float64
	force        bool
	quarantine   string
	restore      string
	purgeAfter   time.Duration
	json         bool
}

type ruleFlag struct {
	glob string
	age  time.Duration
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type rulesFlag []ruleFlag

func (r *rulesFlag) String() string { return "" }
func (r *rulesFlag) Set(v string) error {
	glob, a, ok := strings.Cut(v, "=")
	if !ok || glob == "" {
		return errors.New("want GLOB=AGE, such as 'receipts/**=365d'")
	}
	if err := storage.CheckGlobs(glob); err != nil {
		return fmt.Errorf("bad glob %q", glob)
	}
	d, err := age.Parse(a, 0)
	if err != nil {
		return err
	}
	if d == 0 {
		return fmt.Errorf("rule %q: an age of 0 would delete every file it matches", v)
	}
	*r = append(*r, ruleFlag{glob, d})
	return nil
}

const usageText = `cleanup-media removes old and orphaned media files.

Usage: cleanup-media --root DIR [flags]

Exit codes:
  0  done (including nothing to do)
  1  error (missing root, unreadable references, failing storage)
  2  usage (unknown or invalid flag)
  3  refused by a guard: no references, a failing reference query, a
     directory holding old files that no reference points into (see
     --unreferenced), or a plan over --max-delete or --max-fraction
     (--force overrides the last two and the directory check)

Ages: 90m, 36h, 7d, 2w. A limit or grace period of 0 turns it off.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("cleanup-media", flag.ContinueOnError)
	// Errors are reported in one line by run; the usage text only on --help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var rules rulesFlag
	var refsSQL listFlag
	fs.StringVar(&c.root, "root", "", "media root `DIR` (required)")
	fs.BoolVar(&c.dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	fs.BoolVar(&c.verbose, "verbose", false, "list every file deleted or kept, and why")
	c.qrAge = 7 * 24 * time.Hour
	fs.Var(age.Value{D: &c.qrAge, Bare: 24 * time.Hour}, "qr-age", "delete QR codes (qr_codes/**) older than `AGE` (a bare number counts days); 0 disables")
	fs.BoolVar(&c.checkOrphans, "check-orphans", false, "find and remove files no reference names")
	fs.Var(&rules, "rule", "also delete files matching `GLOB=AGE` (such as 'tmp/**=1d'); repeatable")
	fs.Var(&refsSQL, "refs-sql", "`QUERY` returning one column of referenced paths; repeatable; needs --db")
	fs.StringVar(&c.db, "db", "", "database as `DRIVER:DSN`; built in: sqlite:PATH")
	fs.StringVar(&c.refsFile, "refs-file", "", "`FILE` of referenced paths, one per line (a pipe works too)")
	var unreferenced listFlag
	fs.Var(&unreferenced, "unreferenced", "`GLOB` of files expected to have no reference (such as 'tmp/**'): the directory check does not count them; repeatable")
	c.minAge = 24 * time.Hour
	fs.Var(age.Value{D: &c.minAge}, "min-age", "grace period: never treat files younger than `AGE` as orphans; 0 turns it off")
	fs.IntVar(&c.maxDelete, "max-delete", 0, "refuse to delete more than `N` orphans (0: no limit)")
	fs.Float64Var(&c.maxFraction, "max-fraction", 0.5, "refuse to delete more than fraction `F` of scanned files as orphans (0: no limit)")
	fs.BoolVar(&c.force, "force", false, "apply an orphan plan over a limit")
	fs.StringVar(&c.quarantine, "quarantine", "", "move orphans into `DIR` (relative to the root) instead of deleting them")
	fs.StringVar(&c.restore, "restore", "", "move the files of quarantine `RUN` back to their paths, and do nothing else (needs --quarantine)")
	fs.Var(age.Value{D: &c.purgeAfter}, "purge-after", "also delete quarantine runs older than `AGE` for good, only the files their manifests list (needs --quarantine)")
	fs.BoolVar(&c.json, "json", false, "print the reports as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	c.rules, c.refsSQL, c.unreferenced = rules, refsSQL, unreferenced
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.root == "":
		return nil, errors.New("--root is required")
	case len(c.refsSQL) > 0 && c.db == "":
		return nil, errors.New("--refs-sql needs --db")
	case c.checkOrphans && len(c.refsSQL) == 0 && c.refsFile == "":
		return nil, errors.New("--check-orphans needs --refs-sql or --refs-file")
	case !(c.maxFraction >= 0 && c.maxFraction <= 1): // NaN too
		return nil, errors.New("--max-fraction must be between 0 and 1 (0: no limit)")
	case c.maxDelete < 0:
		return nil, errors.New("--max-delete must be 0 (no limit) or more")
	case storage.CheckGlobs(c.unreferenced...) != nil:
		return nil, fmt.Errorf("--unreferenced: %v", storage.CheckGlobs(c.unreferenced...))
	case (c.restore != "" || c.purgeAfter != 0) && c.quarantine == "":
		return nil, errors.New("--restore and --purge-after need --quarantine")
	}
	if err := sweep.CheckOptions(sweep.Options{Rules: c.sweepRules()}); len(c.sweepRules()) > 0 && err != nil {
		return nil, err
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "cleanup-media: %v (see --help)\n", err)
		return exitUsage
	}
	return c.execute(ctx, stdout, stderr)
}
