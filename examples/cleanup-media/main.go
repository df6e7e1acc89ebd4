// Command cleanup-media is the seed's "manage.py cleanup_media" for cron,
// systemd timers and Kubernetes CronJobs: it deletes old QR codes and files
// matching age rules, and with --check-orphans finds and removes files no
// database row references. The media root is a local folder or an S3
// bucket; the references come from SQLite, PostgreSQL or MySQL queries, or
// a file.
//
//	cleanup-media --root /srv/app/media --dry-run --verbose --check-orphans \
//	    --db sqlite:/srv/app/app.db --refs-sql "SELECT picture FROM users"
//
// Exit codes: 0 done (including nothing to do), 1 error (including
// deletions that failed), 2 usage, 3 refused by a guard (no references, a
// failing query, a directory no reference points into, a plan over a
// limit), and with --detailed-exit-codes 4 for a run that found nothing
// to do. Nothing is deleted on exit codes 2 and 3, nor on 1 unless the
// error came after deletions had begun, which the report then says.
//
// Ages take one syntax everywhere: 90m, 36h, 7d, 2w. A limit or a grace
// period of 0 turns it off. See --help for every flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitRefused = 3
	// exitNothing, with --detailed-exit-codes, is a run that did nothing:
	// it deleted, moved, purged and restored no file (in a dry run, it
	// would have done none of that).
	exitNothing = 4
)

func main() {
	// The first SIGINT or SIGTERM cancels the run, which stops between
	// files and deletes nothing more; a second one ends the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "cleanup-media: %v (see --help)\n", err)
		if wantJSON(args) {
			(&config{json: true}).print(stdout, Output{Error: &ErrorOutput{ExitCode: exitUsage, Message: err.Error()}})
		}
		return exitUsage
	}
	return c.execute(ctx, stdin, stdout, stderr)
}

// wantJSON reports whether --json is among args that did not parse, so
// that a usage error is a JSON document too.
func wantJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
}
