package storage

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/spf13/afero"
)

// RemoveEmptyDirs removes each of dirs and then its parents, deepest
// first, as long as they are empty, stopping below stop (a directory kept
// along with everything above it; "" or "." for the root, which is never
// removed). It goes through [Delete], with opts (its Allow, DryRun and
// OnOutcome): a directory is removed only when a listing finds it empty
// and Lstat shows a real directory, not a link; on RootFs the removal is
// rmdir, which refuses a directory that filled up in between. It returns
// the number removed.
func RemoveEmptyDirs(ctx context.Context, fsys afero.Fs, dirs []string, stop string, opts DeleteOptions) int {
	stop = strings.Trim(stop, "/")
	set := map[string]bool{}
	for _, d := range dirs {
		for ; d != stop && d != "." && d != "" && !set[d]; d = dirOf(d) {
			if stop != "" && !strings.HasPrefix(d, stop+"/") {
				break // not below stop: never touched
			}
			set[d] = true
		}
	}
	all := make([]string, 0, len(set))
	for d := range set {
		all = append(all, d)
	}
	// Deepest first, so parents are tried after their children.
	slices.SortFunc(all, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(b, "/"), strings.Count(a, "/")), cmp.Compare(a, b))
	})
	targets := make([]Target, len(all))
	for i, d := range all {
		targets[i] = Target{Path: d, Dir: true}
	}
	removed := 0
	emit := opts.OnOutcome
	opts.OnOutcome = func(o Outcome) {
		if o.Action == ActionDelete {
			removed++
		}
		if emit != nil {
			emit(o)
		}
	}
	if opts.DryRun {
		return 0 // what would empty depends on deletions a dry run does not make
	}
	_ = Delete(ctx, fsys, targets, opts)
	return removed
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
