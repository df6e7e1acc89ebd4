package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// "1m" to "12m" are refused because an operator who writes
// "--rule 'backups/**=6m'" means six months, and Go reads minutes
// (TestMonthLikeAgeIsRefused). The same months written with a decimal
// point ("1.5m": a month and a half; "6.0m", "6.m") slip past the check
// (strconv.Atoi does not read them) and are read as minutes: the rule
// deletes every backup older than 90 seconds, exit 0.
func TestS16DecimalMonthLikeAgeIsRefused(t *testing.T) {
	t.Parallel()
	for _, age := range []string{"1.5m", "6.0m", "6.m", "6.5m"} {
		t.Run(age, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeOld(t, root, "backups/db.sql.gz")
			r := runCmd(t, "--root", root, "--qr-age", "0", "--rule", "backups/**="+age)
			assert.Equal(t, exitUsage, r.code, "--rule backups/**=%s accepted:\n%s%s", age, r.stdout, r.stderr)
			_, err := os.Stat(filepath.Join(root, "backups", "db.sql.gz"))
			assert.NoError(t, err, "--rule backups/**=%s deleted a 60-day-old backup", age)
		})
	}
}
