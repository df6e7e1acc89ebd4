package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"github.com/spf13/pflag"

	"github.com/mediaclean/mediaclean/examples/internal/age"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/sweep"
)

type config struct {
	root          string
	s3PathStyle   bool
	listWorkers   int
	inventory     string
	dryRun        bool
	verbose       bool
	yes           bool
	qrAge         time.Duration
	checkOrphans  bool
	rules         []ruleFlag
	refsSQL       []string
	db            string
	dbEnv         string
	refsFiles     []string
	allowEmpty    bool
	allowUnstored bool
	detailedExit  bool
	stripPrefixes []string
	exclude       []string
	unreferenced  []string
	minAge        time.Duration
	maxDelete     int
	maxFraction   float64
	force         bool
	removeEmpty   bool
	quarantine    string
	restore       string
	purgeAfter    time.Duration
	json          bool
	metricsFile   string
	progress      string
	shardFlag     string
	shards        int
	shardMap      string
	merge         bool
	tempDir       string
	makeShardMap  bool
	// shard is the shard this run takes (0-based), of shards; -1 unsharded.
	shard int
}

type ruleFlag struct {
	glob string
	age  time.Duration
}

// rulesFlag is --rule GLOB=AGE, repeatable.
type rulesFlag []ruleFlag

func (r *rulesFlag) String() string { return "" }
func (r *rulesFlag) Type() string   { return "GLOB=AGE" }
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

const usageHead = `cleanup-media removes old and orphaned media files, from a local folder or
an S3 bucket, against the references in a SQLite, PostgreSQL or MySQL
database.

Usage:
  cleanup-media --root DIR|s3://BUCKET/PREFIX [flags]

Examples:
  # What would go: every file it would delete, with its size and reason.
  cleanup-media --root /srv/app/media --check-orphans --dry-run --verbose \
      --db sqlite:/srv/app/app.db \
      --refs-sql "SELECT picture FROM users" --refs-sql "SELECT image FROM forum_messages"

  # From cron, on S3 and PostgreSQL, the password kept out of ps:
  DATABASE_URL=postgres://app:secret@db/app cleanup-media --root s3://media/uploads \
      --check-orphans --db-env DATABASE_URL --refs-sql "SELECT picture FROM users" \
      --json --metrics-file /var/lib/node_exporter/cleanup_media.prom

  # Old QR codes only (older than 7 days), nothing else:
  cleanup-media --root /srv/app/media --qr-age 7d

Flags:
`

const usageTail = `
Ages take one syntax everywhere: 90m, 36h, 7d, 2w (1m to 12m are refused:
write 6min for minutes, 180d for about six months). A limit or a grace
period of 0 turns it off.

Databases (--db, or the variable --db-env names): sqlite:PATH,
postgres://USER:PASS@HOST:PORT/DB?sslmode=..., mysql://USER:PASS@HOST:PORT/DB.
S3 (--root s3://BUCKET/PREFIX): credentials, region and endpoint come from
the AWS SDK's usual sources (AWS_ACCESS_KEY_ID, AWS_REGION,
AWS_ENDPOINT_URL_S3, AWS_PROFILE, shared config, instance roles).

Before a real orphan deletion with a terminal on stdin and stderr, the plan
is shown and confirmed; --yes skips the question, and without a terminal
(cron, systemd, Kubernetes) the run proceeds as configured.

S3 Inventory (--inventory MANIFEST): the orphan check reads the bucket's
daily or weekly inventory report (CSV or Parquet; checksums verified, the
source bucket must be --root's) instead of listing the bucket, which on large
buckets saves most requests. The report must be younger than --min-age,
else the run is refused (exit 3); each orphan is checked again against the
bucket just before it is deleted, and kept if it changed. The age rules
(--qr-age, --rule) still list the bucket.

Shards (a Kubernetes indexed job, or N machines): write the boundaries once
with --make-shard-map --shards N --shard-map FILE, then run shard I of N
with --shard I/N --shard-map FILE (or --shards N and JOB_COMPLETION_INDEX).
Each shard lists and deletes only its key range; the age rules run in
shard 0 only. A shard that fails deletes nothing and can be run again alone.

Exit codes:
  0  done (including nothing to do, unless --detailed-exit-codes)
  1  error (missing root, unreadable references, failing storage,
     a declined confirmation)
  2  usage (unknown or invalid flag)
  3  refused by a guard: no references, a failing reference query, a
     directory holding old files that no reference points into (see
     --unreferenced), an --inventory report older than --min-age,
     or a plan over --max-delete or --max-fraction
     (--force overrides the last two and the directory check)
  4  with --detailed-exit-codes: nothing to do (no file deleted, moved,
     purged or restored; in a dry run, none would be)
`

// newFlagSet declares the flags into c.
func newFlagSet(c *config, rules *rulesFlag) *pflag.FlagSet {
	fs := pflag.NewFlagSet("cleanup-media", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are reported in one line by run
	fs.Usage = func() {}
	fs.StringVar(&c.root, "root", "", "media root: a local `DIR` or s3://BUCKET/PREFIX (required)")
	fs.BoolVar(&c.s3PathStyle, "s3-path-style", false, "address S3 buckets by path (http://host/bucket), as S3-compatible servers such as MinIO want")
	fs.IntVar(&c.listWorkers, "list-workers", 1, "with an s3:// --root, list up to `N` parts of the bucket at once (same keys, same order; about 25% more list requests)")
	fs.StringVar(&c.inventory, "inventory", "", "find orphans in the S3 Inventory report whose manifest.json is `MANIFEST` (a local path or s3://BUCKET/KEY) instead of listing the bucket; needs an s3:// --root, --check-orphans, and a report younger than --min-age")
	fs.BoolVar(&c.dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	fs.BoolVarP(&c.verbose, "verbose", "v", false, "list every file deleted (with --dry-run: every file that would be), with size and reason")
	fs.BoolVarP(&c.yes, "yes", "y", false, "do not ask before deleting orphans on a terminal")
	fs.BoolVar(&c.json, "json", false, "print one JSON document on stdout, for success and errors alike")
	fs.BoolVar(&c.detailedExit, "detailed-exit-codes", false, "exit 4 rather than 0 when there was nothing to do (no file deleted, moved, purged or restored; in a dry run, none would be), so that a wrapper can tell the two apart")
	c.qrAge = 7 * 24 * time.Hour
	fs.Var(age.Value{D: &c.qrAge, Bare: 24 * time.Hour}, "qr-age", "delete QR codes (qr_codes/**) older than `AGE` (a bare number counts days); 0 disables")
	fs.Var(rules, "rule", "also delete files matching GLOB older than AGE (such as 'tmp/**=1d'); repeatable")
	fs.BoolVar(&c.removeEmpty, "remove-empty-dirs", false, "remove directories the sweep leaves empty")
	fs.BoolVar(&c.checkOrphans, "check-orphans", false, "find and remove files no reference names")
	fs.StringVar(&c.db, "db", "", "the database: sqlite:PATH, postgres://... or mysql://...")
	fs.StringVar(&c.dbEnv, "db-env", "", "read --db from environment variable `NAME` (keeps passwords out of ps and crontabs)")
	fs.StringArrayVar(&c.refsSQL, "refs-sql", nil, "`QUERY` returning one column of referenced paths: one statement (a semicolon other than at its end is refused), one per file column; repeatable")
	fs.StringArrayVar(&c.refsFiles, "refs-file", nil, "`FILE` of referenced paths, one per line (a pipe works too); repeatable")
	fs.BoolVar(&c.allowEmpty, "allow-empty-refs", false, "go on when one --refs-sql or --refs-file gives no reference while another does (an empty table); by default that refuses the run, as the mark of a wrong query")
	fs.BoolVar(&c.allowUnstored, "allow-unstored-refs", false, "go on when not one of a random sample of a source's references names a file under the root (all its rows name lost files); by default that refuses the run, as the mark of a wrong column, a --root one level off or a --strip-prefix missing")
	fs.StringArrayVar(&c.stripPrefixes, "strip-prefix", nil, "remove `PREFIX` (such as /media/ or https://cdn.example.com/) from references; repeatable")
	fs.StringArrayVar(&c.exclude, "exclude", nil, "never delete files matching `GLOB` (such as 'defaults/**'); repeatable")
	fs.StringArrayVar(&c.unreferenced, "unreferenced", nil, "`GLOB` of files expected to have no reference (such as 'tmp/**'): the directory check does not count them; repeatable")
	c.minAge = 24 * time.Hour
	fs.Var(age.Value{D: &c.minAge}, "min-age", "grace period: never treat files younger than `AGE` as orphans; 0 turns it off")
	fs.IntVar(&c.maxDelete, "max-delete", 0, "refuse to delete more than `N` orphans (0: no limit); with --shard, per shard")
	fs.Float64Var(&c.maxFraction, "max-fraction", 0.5, "refuse to delete more than fraction `F` of scanned files as orphans (0: no limit); with --shard, of the shard's files")
	fs.BoolVar(&c.force, "force", false, "apply an orphan plan over a limit")
	fs.StringVar(&c.quarantine, "quarantine", "", "move orphans into `DIR` (relative to the root) instead of deleting them")
	fs.StringVar(&c.restore, "restore", "", "move the files of quarantine `RUN` back to their paths, and do nothing else (needs --quarantine)")
	fs.Var(age.Value{D: &c.purgeAfter}, "purge-after", "also delete quarantine runs older than `AGE` for good, only the files their manifests list (needs --quarantine)")
	fs.StringVar(&c.metricsFile, "metrics-file", "", "write Prometheus metrics to `PATH` (node_exporter textfile collector), replaced atomically")
	fs.StringVar(&c.progress, "progress", "auto", "progress on stderr: auto (when stderr is a terminal), always or never")
	fs.StringVar(&c.shardFlag, "shard", "", "run shard `I/N` of the orphan check (0-based): only the paths in shard I of --shard-map")
	fs.IntVar(&c.shards, "shards", 0, "the number of shards `N`, this run's shard taken from JOB_COMPLETION_INDEX (a Kubernetes indexed job)")
	fs.StringVar(&c.shardMap, "shard-map", "", "`FILE` holding the shard boundaries every shard reads (JSON; write it with --make-shard-map)")
	fs.BoolVar(&c.makeShardMap, "make-shard-map", false, "write --shard-map for --shards N from a sample of the references, and exit")
	fs.BoolVar(&c.merge, "merge", false, "orphan check in memory independent of the number of files and references: sort the references on disk and merge them with a sorted listing")
	fs.StringVar(&c.tempDir, "temp-dir", "", "`DIR` for --merge's sorted runs, about as large as the references' text, and for one data file at a time of a Parquet --inventory (default: $TMPDIR, else the system's temporary directory, or /var/tmp when that one is in memory)")
	// A flag that takes one value and is given twice is refused: the last
	// would silently win, and the first may be what the operator meant
	// (a second --root, a second --max-delete).
	fs.VisitAll(func(f *pflag.Flag) {
		switch f.Value.Type() {
		case "bool", rules.Type():
		case "stringArray":
			f.Value = nonEmpty{f.Value}
		default:
			f.Value = &once{Value: f.Value, name: f.Name}
		}
	})
	return fs
}

// nonEmpty is a repeatable flag value that refuses an empty value:
// "--strip-prefix $CDN_URL" with CDN_URL unset would strip nothing and
// say nothing.
type nonEmpty struct{ pflag.Value }

func (n nonEmpty) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty (an unset variable?); leave the flag out")
	}
	return n.Value.Set(v)
}

// once is a flag value that may be set only once.
type once struct {
	pflag.Value
	name string
	set  bool
}

func (o *once) Set(v string) error {
	if o.set {
		return fmt.Errorf("given twice (--%s takes one value)", o.name)
	}
	if o.Type() == "string" && strings.TrimSpace(v) == "" {
		// "--quarantine $QDIR" with QDIR unset would turn the quarantine
		// off, "--restore $RUN" would run a cleanup instead.
		return errors.New("empty (an unset variable?); leave the flag out for its default")
	}
	o.set = true
	return o.Value.Set(v)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var rules rulesFlag
	fs := newFlagSet(c, &rules)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stderr, usageHead+fs.FlagUsages()+usageTail)
			return nil, err
		}
		return nil, suggest(fs, err)
	}
	c.rules = rules
	if c.dbEnv != "" {
		if c.db != "" {
			return nil, errors.New("--db and --db-env exclude each other")
		}
		c.db = os.Getenv(c.dbEnv)
		if c.db == "" {
			return nil, fmt.Errorf("--db-env: the environment variable %s is empty or unset", c.dbEnv)
		}
	}
	if err := c.check(fs); err != nil {
		return nil, err
	}
	if err := c.parseShard(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseShard reads --shard I/N, or --shards N with JOB_COMPLETION_INDEX.
func (c *config) parseShard() error {
	c.shard = -1
	switch {
	case c.makeShardMap:
		if c.shards < 1 || c.shardMap == "" || c.shardFlag != "" {
			return errors.New("--make-shard-map needs --shards N and --shard-map FILE (and no --shard)")
		}
		if len(c.refsSQL) == 0 && len(c.refsFiles) == 0 {
			return errors.New("--make-shard-map samples the references: give --refs-sql or --refs-file")
		}
		return nil
	case c.shardFlag != "" && c.shards != 0:
		return errors.New("--shard I/N and --shards N exclude each other")
	case c.shardFlag != "":
		i, n, ok := strings.Cut(c.shardFlag, "/")
		var err1, err2 error
		c.shard, err1 = strconv.Atoi(i)
		c.shards, err2 = strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("--shard %q: want I/N, such as 0/8", c.shardFlag)
		}
	case c.shards != 0:
		idx, ok := os.LookupEnv("JOB_COMPLETION_INDEX")
		if !ok {
			return errors.New("--shards N takes this run's shard from JOB_COMPLETION_INDEX, which is not set (or give --shard I/N)")
		}
		var err error
		if c.shard, err = strconv.Atoi(idx); err != nil {
			return fmt.Errorf("JOB_COMPLETION_INDEX %q is not a number", idx)
		}
	default:
		return nil
	}
	switch {
	case c.shards < 1 || c.shard < 0 || c.shard >= c.shards:
		return fmt.Errorf("shard %d of %d: want 0 <= I < N", c.shard, c.shards)
	case !c.checkOrphans:
		return errors.New("shards split the orphan check: give --check-orphans")
	case c.shards > 1 && c.shardMap == "":
		return errors.New("--shard-map FILE is needed to agree on the shards' boundaries")
	}
	return nil
}

// check refuses contradictory or out-of-range values.
func (c *config) check(fs *pflag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.root == "":
		return errors.New("--root is required")
	case !strings.HasPrefix(c.root, "s3://") && filesystemRoot(c.root):
		return fmt.Errorf("--root %s is the root of the filesystem (an unset variable in --root \"$MEDIA_ROOT/\"?): give the media folder", c.root)
	case len(c.refsSQL) > 0 && c.db == "":
		return errors.New("--refs-sql needs --db (or --db-env)")
	case c.db != "" && len(c.refsSQL) == 0:
		return errors.New("--db needs at least one --refs-sql")
	case c.checkOrphans && len(c.refsSQL) == 0 && len(c.refsFiles) == 0:
		return errors.New("--check-orphans needs --refs-sql or --refs-file")
	case !(c.maxFraction >= 0 && c.maxFraction <= 1): // NaN too
		return errors.New("--max-fraction must be between 0 and 1 (0: no limit)")
	case c.maxDelete < 0:
		return errors.New("--max-delete must be 0 (no limit) or more")
	case storage.CheckGlobs(c.unreferenced...) != nil:
		return fmt.Errorf("--unreferenced: %v", storage.CheckGlobs(c.unreferenced...))
	case storage.CheckGlobs(c.exclude...) != nil:
		return fmt.Errorf("--exclude: %v", storage.CheckGlobs(c.exclude...))
	case (c.restore != "" || c.purgeAfter != 0) && c.quarantine == "":
		return errors.New("--restore and --purge-after need --quarantine")
	case c.restore != "" && (c.checkOrphans || len(c.rules) > 0 || c.purgeAfter != 0 || c.removeEmpty || fs.Changed("qr-age")):
		return errors.New("--restore puts a quarantine run back and does nothing else: leave out --check-orphans, --rule, --qr-age, --purge-after and --remove-empty-dirs")
	case c.db != "" && checkDB(c.db) != nil:
		return checkDB(c.db)
	case c.inventory != "" && (!strings.HasPrefix(c.root, "s3://") || !c.checkOrphans):
		return errors.New("--inventory lists an S3 bucket for the orphan check: it needs --root s3://BUCKET/PREFIX and --check-orphans")
	case c.listWorkers < 1:
		return errors.New("--list-workers must be at least 1")
	case c.tempDir != "" && !c.merge && c.inventory == "":
		return errors.New("--temp-dir is where --merge sorts and an --inventory report in Parquet is read: it needs --merge or --inventory")
	case c.progress != "auto" && c.progress != "always" && c.progress != "never":
		return fmt.Errorf("--progress %q: want auto, always or never", c.progress)
	}
	if rules := c.sweepRules(); len(rules) > 0 {
		if err := sweep.CheckOptions(sweep.Options{Rules: rules}); err != nil {
			return err
		}
	}
	return nil
}

// suggest adds "did you mean --X?" to an unknown-flag error, naming the
// closest flag by edit distance.
func suggest(fs *pflag.FlagSet, err error) error {
	msg := err.Error()
	var name string
	switch {
	case strings.HasPrefix(msg, "unknown flag: --"):
		name = strings.TrimPrefix(msg, "unknown flag: --")
	case strings.HasPrefix(msg, "unknown shorthand flag: "):
		// "unknown shorthand flag: 'r' in -root": a long flag with one dash.
		if _, after, ok := strings.Cut(msg, " in -"); ok {
			name = after
		}
	default:
		return err
	}
	name, _, _ = strings.Cut(name, "=")
	best, bestD := "", 1<<30
	fs.VisitAll(func(f *pflag.Flag) {
		d := levenshtein.ComputeDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" && bestD <= max(2, len(name)/3) {
		return fmt.Errorf("%w; did you mean --%s?", err, best)
	}
	return err
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

// checkDB refuses a --db of an unknown form before anything runs.
func checkDB(dsn string) error {
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch {
	case scheme == "sqlite" && rest != "":
		return nil
	case (scheme == "postgres" || scheme == "postgresql" || scheme == "mysql") && strings.HasPrefix(rest, "//"):
		return nil
	}
	return fmt.Errorf("--db %q: want sqlite:PATH, postgres://HOST/DB or mysql://HOST/DB", redact(dsn))
}

// redact hides the password of a URL-shaped DSN in messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return dsn
}

// filesystemRoot reports whether the local directory dir is the root of
// its filesystem ("/", a link to it, "C:\\"), which no media folder is.
func filesystemRoot(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return filepath.Dir(abs) == abs
}
