package storage

import (
	"cmp"
	"context"
	"errors"
	"slices"
)

// Count is a number of files and their total size, the unit of every
// mediaclean report.
type Count struct {
	Files int   `json:"files"` // how many files
	Bytes int64 `json:"bytes"` // their total size
}

// Add counts one file of size bytes.
func (c *Count) Add(size int64) {
	c.Files++
	c.Bytes += size
}

// DirCount is a Count for one directory.
type DirCount struct {
	Dir string `json:"dir"` // the directory, slash-separated
	Count
}

// DirTally counts files per directory, for the reports' "which directories
// hold the most" breakdowns. The zero value is ready to use.
type DirTally struct {
	m     map[string]*Count
	last  string // the directory counted last, whose Count is lastC
	lastC *Count
}

// Add counts one file at path p.
func (t *DirTally) Add(p string, size int64) {
	if t.m == nil {
		t.m = map[string]*Count{}
	}
	d := dirOf(p)
	if t.lastC != nil && d == t.last {
		t.lastC.Add(size) // files come grouped by directory in sorted plans
		return
	}
	c := t.m[d]
	if c == nil {
		c = &Count{}
		t.m[d] = c
	}
	c.Add(size)
	t.last, t.lastC = d, c
}

// Top returns the n directories with the most bytes (then files, then
// name), largest first; n <= 0 returns all.
func (t *DirTally) Top(n int) []DirCount {
	out := make([]DirCount, 0, len(t.m))
	for d, c := range t.m {
		out = append(out, DirCount{Dir: d, Count: *c})
	}
	slices.SortFunc(out, func(a, b DirCount) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(b.Files, a.Files), cmp.Compare(a.Dir, b.Dir))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// KeptTally counts kept files by reason: the "kept" part of every report.
type KeptTally map[string]Count

// Add counts one kept file of size bytes under reason.
func (k KeptTally) Add(reason string, size int64) {
	c := k[reason]
	c.Add(size)
	k[reason] = c
}

// Failure is one file a destructive step failed on.
type Failure struct {
	Path  string `json:"path"`  // the file
	Error string `json:"error"` // what went wrong, as text
}

// MaxFailures is how many failures a report lists; the counts cover all.
const MaxFailures = 100

// ErrDeleteFailed is returned, with the report, when some deletions or
// moves failed (a full disk, a server gone away): the run did what its
// report says and no more. Every package returns this one sentinel.
var ErrDeleteFailed = errors.New("some deletions failed")

// RefChecker answers whether any row still references a stored path.
// filefield asks it before deleting a stale file, and sweep before
// deleting a file a rule matched; an error or true keeps the file.
type RefChecker interface {
	IsReferenced(ctx context.Context, path string) (bool, error)
}

// Reasons a reference check keeps a file, in every package that asks one.
const (
	KeptReferenced  = "referenced"   // a row still references it
	KeptCheckFailed = "check_failed" // the reference check failed: kept, fail closed
)

// Reasons sweep and orphan keep a file they scanned, with the same
// meaning in both.
const (
	KeptYoung    = "young"     // not older than the age boundary (see OlderThan), or dated in the future
	KeptInFlight = "in_flight" // a temp file of a careful write still in progress
)
