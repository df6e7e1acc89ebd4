package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
	"github.com/mediaclean/mediaclean/examples/internal/appdb/appdbtest"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

// appData builds the example app's database and media folder: 100 users
// with a picture, 10 of them with an e-signature and 20 with a QR code,
// 30 donations with a receipt and 20 forum messages with an image, all
// older than a day; plus old files no row references, in every folder.
// It returns the media root, the database and the orphans.
func appData(t *testing.T) (root, dbPath string, orphans []string) {
	t.Helper()
	base := t.TempDir()
	root, dbPath = filepath.Join(base, "media"), filepath.Join(base, "app.db")
	require.NoError(t, os.MkdirAll(root, 0o755))
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(appdb.Schema)
	require.NoError(t, err)
	return root, dbPath, appdbtest.Seed(t, fsys, db, "?")
}

// readmeCommands returns the cleanup-media command lines of the README:
// the shell example, the crontab line and the systemd ExecStart, each as
// its arguments, with the binary, a cron schedule, "ExecStart=" and output
// redirections taken off.
func readmeCommands(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.Index(line, "cleanup-media --root /srv/app/media")
		if i < 0 {
			continue // the S3 lines are run by the CronJob's test and examples/k8s
		}
		kind := "sh"
		switch {
		case strings.HasPrefix(line, "ExecStart="):
			kind = "systemd"
		case strings.HasPrefix(line, "0 2 * * *"):
			kind = "cron"
		}
		cmd := line[i+len("cleanup-media"):]
		if j := strings.Index(cmd, ">>"); j >= 0 {
			cmd = cmd[:j]
		}
		out[kind] = shellWords(t, cmd)
	}
	return out
}

// shellWords splits s into words as a shell (or systemd) would: spaces
// separate, double or single quotes group.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			t.Fatalf("a line continuation or escape in %q: keep README commands on one line", s)
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	require.Zero(t, quote, "unbalanced quote in %q", s)
	if in {
		words = append(words, cur.String())
	}
	return words
}

// The README's cron, systemd and shell lines, run as written against the
// example app's schema and data, delete the orphans and nothing a row
// references. (Once they listed only users.picture: run verbatim, they
// deleted every receipt and signature, 45 of 146 files, under the
// fraction limit.)
func TestREADMECommandsRunVerbatim(t *testing.T) {
	t.Parallel()
	cmds := readmeCommands(t)
	require.ElementsMatch(t, []string{"sh", "cron", "systemd"}, keys(cmds))
	for kind, args := range cmds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			root, db, orphans := appData(t)
			for i, a := range args {
				a = strings.ReplaceAll(a, "/srv/app/media", root)
				args[i] = strings.ReplaceAll(a, "/srv/app/app.db", db)
			}
			metrics := t.TempDir()
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "/var/lib/node_exporter/textfile_collector", metrics)
			}
			before := listAll(t, root)
			r := runCmd(t, args...)
			require.Equal(t, exitOK, r.code, r.stderr)
			if slices.Contains(args, "--metrics-file") {
				readMetrics(t, filepath.Join(metrics, "cleanup_media.prom"))
			}
			after := listAll(t, root)
			for _, p := range before {
				if !slices.Contains(orphans, p) {
					assert.Contains(t, after, p, "a referenced file was deleted")
				}
			}
			if slices.Contains(args, "--dry-run") {
				assert.Equal(t, before, after)
				return
			}
			for _, o := range orphans {
				assert.NotContains(t, after, o)
			}
		})
	}
}

// The README's Kubernetes CronJob, its container's arguments and
// environment as written, against the S3 server and PostgreSQL the tests
// start: the bucket's name and the Secret's value put in, the AWS
// credentials and endpoint added as a pod's role or Secret would.
func TestREADMECronJobRunsVerbatim(t *testing.T) {
	t.Parallel()
	job := readmeCronJob(t)
	c := job.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "Never", job.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy)
	assert.Equal(t, "Forbid", job.Spec.ConcurrencyPolicy, "two runs never overlap")

	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "uploads/")
	pg := sqltest.Postgres(t)
	db, url := pg.NewDatabase(t)
	_, err := db.Exec(strings.ReplaceAll(appdb.Schema, "INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"))
	require.NoError(t, err)
	orphans := appdbtest.Seed(t, fsys, db, "$")

	var env []string
	for _, e := range c.Env {
		switch {
		case e.Value != "":
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef.Key == "database-url":
			env = append(env, e.Name+"="+url)
		default:
			t.Fatalf("an environment variable the test cannot fill: %+v", e)
		}
	}
	env = append(env, srv.Env(t)...) // the pod's role, and the endpoint of the test server
	args := slices.Clone(c.Args)
	for i, a := range args {
		if strings.HasPrefix(a, "s3://") {
			bucket, prefix, _ := strings.Cut(strings.TrimPrefix(a, "s3://"), "/")
			require.Equal(t, "uploads", prefix)
			args[i] = "s3://" + fsys.Bucket + "/" + prefix
			t.Logf("bucket %s stands for %s", fsys.Bucket, bucket)
		}
	}
	before := storagetest.Files(t, fsys)
	r := runEnv(t, env, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out Output
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "--json")
	after := storagetest.Files(t, fsys)
	for _, p := range before {
		if slices.Contains(orphans, p) {
			assert.NotContains(t, after, p, "an orphan stayed")
		} else {
			assert.Contains(t, after, p, "a referenced file was deleted")
		}
	}
	assert.Equal(t, len(orphans), out.Orphans.Applied.Deleted.Files)
}

// cronJob is the part of a Kubernetes CronJob the test reads.
type cronJob struct {
	Kind string `yaml:"kind"`
	Spec struct {
		ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
		JobTemplate       struct {
			Spec struct {
				Template struct {
					Spec struct {
						RestartPolicy string `yaml:"restartPolicy"`
						Containers    []struct {
							Args []string `yaml:"args"`
							Env  []struct {
								Name      string `yaml:"name"`
								Value     string `yaml:"value"`
								ValueFrom struct {
									SecretKeyRef struct {
										Name string `yaml:"name"`
										Key  string `yaml:"key"`
									} `yaml:"secretKeyRef"`
								} `yaml:"valueFrom"`
							} `yaml:"env"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

func readmeCronJob(t *testing.T) cronJob {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "```yaml\napiVersion: batch/v1\nkind: CronJob\n")
	require.True(t, ok, "the README's CronJob")
	body, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	var job cronJob
	require.NoError(t, yaml.Unmarshal([]byte("kind: CronJob\n"+body), &job))
	require.Len(t, job.Spec.JobTemplate.Spec.Template.Spec.Containers, 1)
	return job
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func listAll(t *testing.T, root string) []string {
	t.Helper()
	fsys, err := rootfs.New(root)
	require.NoError(t, err)
	defer fsys.Close()
	return storagetest.Files(t, fsys)
}

// A run that leaves out a file column is refused by the coverage guard,
// deleting nothing, and says which directories made it refuse.
func TestMissingReferenceQueryIsRefused(t *testing.T) {
	t.Parallel()
	root, db, _ := appData(t)
	before := listAll(t, root)
	r := runCmd(t, "--root", root, "--qr-age", "7d", "--check-orphans", "--db", "sqlite:"+db, "--refs-sql", "SELECT picture FROM users")
	assert.Equal(t, exitRefused, r.code, r.stderr)
	// qr_codes/ too: an age rule manages it, but a missing query there
	// would still make the orphan check delete codes rows show.
	for _, d := range []string{"donation_receipts", "e_signatures", "forum_images", "qr_codes"} {
		assert.Contains(t, r.stderr, "  "+d+"\n")
	}
	assert.Equal(t, before, listAll(t, root), "nothing deleted, not even QR codes")

	// Declared as expected to hold unreferenced files, they are deleted.
	r = runCmd(t, "--root", root, "--qr-age", "7d", "--check-orphans", "--db", "sqlite:"+db, "--refs-sql", "SELECT picture FROM users", "--refs-sql", "SELECT qr_code FROM users",
		"--unreferenced", "donation_receipts/**", "--unreferenced", "e_signatures/**", "--unreferenced", "forum_images/**", "--max-fraction", "0")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.NotContains(t, listAll(t, root), "donation_receipts/"+fmt.Sprintf("%032x.pdf", 1))
}
