package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Found by a red-team pass. An empty --restore (an unset $RUN in a script) is not a restore: the
// command falls through to a normal cleanup run and deletes files.
func TestEmptyRestoreIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	run := "" // "$RUN" unset
	r := runCmd(t, "--root", f.root, "--quarantine", "trash", "--restore", run)
	assert.Equal(t, exitUsage, r.code, "an empty --restore must be refused: %s", r.stdout)
	assert.Equal(t, before, f.files(t), "a restore command deleted files:\n%s", r.stdout)
}

// An empty --quarantine (an unset $QDIR) silently turns the quarantine
// off: the orphans are deleted for good instead of being moved.
func TestEmptyQuarantineIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	qdir := ""
	r := runCmd(t, f.orphanArgs("--qr-age", "0", "--quarantine", qdir)...)
	assert.Equal(t, exitUsage, r.code, "an empty --quarantine must be refused like --quarantine /: %s", r.stdout)
	assert.Equal(t, before, f.files(t), "orphans deleted for good:\n%s", r.stdout)
}

// --restore does nothing else, so flags that would act beside it are
// refused rather than silently dropped.
func TestRestoreRefusesFlagsItIgnores(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	before := f.files(t)
	for _, extra := range [][]string{{"--check-orphans", "--refs-file", "/dev/null"}, {"--rule", "tmp/**=1d"}, {"--qr-age", "1d"}, {"--purge-after", "30d"}} {
		r := runCmd(t, append([]string{"--root", f.root, "--quarantine", "trash", "--restore", "run1"}, extra...)...)
		assert.Equal(t, exitUsage, r.code, "%q: %s", extra, r.stderr)
	}
	assert.Equal(t, before, f.files(t))
}
