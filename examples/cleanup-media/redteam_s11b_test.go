package main

// From a red-team pass on sweep: each test asserts the safe behaviour, and
// failed before its fix.

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// An operator who wants "PDFs go after 30 days, receipts stay ten years"
// writes the two --rule flags in the order he thinks of them. The first
// rule decides a file, so the receipts rule never applies; sweep.New
// promises to refuse such a rule (CheckOptions, which flags.go calls), but
// only recognises "**", "*/**"-like and "LITERAL/**" first rules. The run
// exits 0 and deletes a 60-day-old receipt.
func TestShadowedRuleFlagsAreRefused(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeOld(t, root, "receipts/2024-03.pdf", "exports/old.pdf")
	r := runCmd(t, "--root", root, "--qr-age", "0",
		"--rule", "**/*.pdf=30d", "--rule", "receipts/*.pdf=3650d")
	assert.Equal(t, exitUsage, r.code, "a rule that never applies was accepted:\n%s%s", r.stdout, r.stderr)
	_, err := os.Stat(filepath.Join(root, "receipts", "2024-03.pdf"))
	assert.NoError(t, err, "a 60-day-old receipt under a 3650d rule was deleted:\n%s%s", r.stdout, r.stderr)
}

// --quarantine takes any valid folder name, and the sweep protects
// QUARANTINE+"/**"; a name with an unbalanced "[" or "{" (valid as a
// stored path) makes that glob malformed, and sweep.New panics after the
// orphan plan was made: a Go stack trace and exit code 2, and no JSON
// document with --json. Nothing is deleted; the run should be a usage
// error (or work).
func TestQuarantineNameWithGlobCharacters(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeOld(t, root, "qr_codes/1/old.png")
	r := runCmd(t, "--root", root, "--quarantine", "trash[1", "--json")
	assert.NotContains(t, r.stderr, "panic:", "the run panicked:\n%s", r.stderr)
	assert.Contains(t, r.stdout, "{", "no JSON document with --json:\n%s", r.stdout)
}

// "--rule 'backups/**=6m'" from an operator who means six months would
// delete every backup older than six minutes: 1m to 12m are refused as a
// usage error, and nothing is deleted.
func TestMonthLikeAgeIsRefused(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeOld(t, root, "backups/db.sql.gz")
	for _, args := range [][]string{{"--rule", "backups/**=6m"}, {"--qr-age", "3m"}, {"--rule", "backups/**=1y"}} {
		r := runCmd(t, append([]string{"--root", root}, args...)...)
		assert.Equal(t, exitUsage, r.code, "%q accepted:\n%s%s", args, r.stdout, r.stderr)
		_, err := os.Stat(filepath.Join(root, "backups", "db.sql.gz"))
		assert.NoError(t, err, "%q deleted the backup", args)
	}
}
