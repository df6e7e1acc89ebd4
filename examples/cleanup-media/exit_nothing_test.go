package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// --detailed-exit-codes tells "nothing to do" (4) from "done" (0); a
// dry run that would act is done; refusals stay 3; without the flag a run
// with nothing to do exits 0, as cron wrappers and Kubernetes Jobs expect.
func TestDetailedExitCodes(t *testing.T) {
	t.Parallel()
	files := map[string]time.Duration{"pics/b.jpg": 72 * time.Hour, "qr_codes/1/old.png": 10 * 24 * time.Hour}
	var refs []string
	for _, p := range []string{"pics/a.jpg", "pics/c.jpg", "pics/d.jpg", "pics/e.jpg"} {
		files[p] = 72 * time.Hour
		refs = append(refs, p)
	}
	root, db := reviewTree(t, files, refs, nil)
	kept := []string{"pics/a.jpg", "pics/c.jpg", "pics/d.jpg", "pics/e.jpg"}
	all := []string{"pics/a.jpg", "pics/b.jpg", "pics/c.jpg", "pics/d.jpg", "pics/e.jpg", "qr_codes/1/old.png"}
	orphans := []string{"--root", root, "--db", "sqlite:" + db, "--check-orphans", "--refs-sql", "SELECT picture FROM users", "--unreferenced", "qr_codes/**"}
	steps := []struct {
		name string
		args []string
		code int
		left []string
	}{
		{"dry run that would act", append(orphans, "--dry-run", "--detailed-exit-codes"), exitOK, all},
		{"refused by a guard", append(orphans, "--max-delete", "1", "--detailed-exit-codes"), exitRefused, all},
		{"real run", append(orphans, "--detailed-exit-codes"), exitOK, kept},
		{"again: nothing to do", append(orphans, "--detailed-exit-codes"), exitNothing, kept},
		{"again, dry run", append(orphans, "--dry-run", "--detailed-exit-codes"), exitNothing, kept},
		{"again, sweep only", []string{"--root", root, "--detailed-exit-codes"}, exitNothing, kept},
		{"again, without the flag", orphans, exitOK, kept},
	}
	for _, s := range steps {
		r := runCmd(t, s.args...)
		assert.Equal(t, s.code, r.code, "%s: %s", s.name, r.stderr)
		assert.Equal(t, s.left, reviewFiles(t, root), s.name)
	}
}
