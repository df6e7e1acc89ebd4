package k8s_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mediaclean/mediaclean/examples/internal/appdb"
	"github.com/mediaclean/mediaclean/examples/internal/appdb/appdbtest"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs/sqltest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "k8s-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "cleanup-media")
	if out, err := exec.Command("go", "build", "-o", binary, "../cleanup-media").CombinedOutput(); err != nil {
		panic(fmt.Sprintf("build: %v\n%s", err, out))
	}
	code := m.Run()
	s3test.StopShared()
	sqltest.StopAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

// manifest is the part of cronjob.yaml the test reads.
type manifest struct {
	Kind string `yaml:"kind"`
	Spec struct {
		ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
		JobTemplate       struct {
			Spec struct {
				CompletionMode       string `yaml:"completionMode"`
				Completions          int    `yaml:"completions"`
				Parallelism          int    `yaml:"parallelism"`
				BackoffLimitPerIndex int    `yaml:"backoffLimitPerIndex"`
				Template             struct {
					Spec struct {
						RestartPolicy string `yaml:"restartPolicy"`
						Containers    []struct {
							Args []string `yaml:"args"`
							Env  []struct {
								Name      string `yaml:"name"`
								Value     string `yaml:"value"`
								ValueFrom struct {
									SecretKeyRef struct{ Key string } `yaml:"secretKeyRef"`
								} `yaml:"valueFrom"`
							} `yaml:"env"`
							VolumeMounts []struct {
								Name      string `yaml:"name"`
								MountPath string `yaml:"mountPath"`
							} `yaml:"volumeMounts"`
						} `yaml:"containers"`
						Volumes []struct {
							Name      string `yaml:"name"`
							ConfigMap struct {
								Name string `yaml:"name"`
							} `yaml:"configMap"`
						} `yaml:"volumes"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
}

type run struct {
	code           int
	stdout, stderr string
}

func start(env []string, args []string) run {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return run{code, out.String(), errb.String()}
}

// The CronJob's Indexed Job, run as the kubelet would run its pods: N
// processes at once, each with its JOB_COMPLETION_INDEX, the container's
// arguments and environment as written (the bucket's name, the Secret's
// value and the ConfigMap's file put in), against the S3 server and
// PostgreSQL the tests start. Together they delete exactly the orphans;
// a shard that fails deletes nothing, and run again alone it finishes
// the job.
func TestIndexedJobShards(t *testing.T) {
	data, err := os.ReadFile("cronjob.yaml")
	require.NoError(t, err)
	var m manifest
	require.NoError(t, yaml.Unmarshal(data, &m))
	job := m.Spec.JobTemplate.Spec
	require.Equal(t, "CronJob", m.Kind)
	assert.Equal(t, "Indexed", job.CompletionMode)
	assert.Equal(t, "Forbid", m.Spec.ConcurrencyPolicy)
	assert.Equal(t, "Never", job.Template.Spec.RestartPolicy)
	n := job.Completions
	require.Greater(t, n, 1)
	assert.Equal(t, n, job.Parallelism)
	c := job.Template.Spec.Containers[0]
	require.Contains(t, c.Args, fmt.Sprint(n), "--shards N matches the completions")
	require.Len(t, c.VolumeMounts, 1)
	mount := c.VolumeMounts[0].MountPath

	srv := s3test.Shared(t)
	fsys := srv.Fs(t, "uploads/")
	db, url := sqltest.Postgres(t).NewDatabase(t)
	_, err = db.Exec(strings.ReplaceAll(appdb.Schema, "INTEGER PRIMARY KEY", "BIGINT PRIMARY KEY"))
	require.NoError(t, err)
	orphans := appdbtest.Seed(t, fsys, db, "$")
	before := storagetest.Files(t, fsys)

	env := srv.Env(t)
	for _, e := range c.Env {
		switch {
		case e.Value != "":
			env = append([]string{e.Name + "=" + e.Value}, env...) // the test server's region wins
		case e.ValueFrom.SecretKeyRef.Key == "database-url":
			env = append(env, e.Name+"="+url)
		default:
			t.Fatalf("an environment variable the test cannot fill: %+v", e)
		}
	}
	dir := t.TempDir()
	args := slices.Clone(c.Args)
	for i, a := range args {
		a = strings.ReplaceAll(a, "s3://app-media/", "s3://"+fsys.Bucket+"/")
		args[i] = strings.ReplaceAll(a, mount, dir)
	}

	// The ConfigMap: made once, as the manifest's comment says.
	mapArgs := []string{"--root", args[slices.Index(args, "--root")+1], "--make-shard-map", "--shards", fmt.Sprint(n),
		"--shard-map", filepath.Join(dir, "shards.json"), "--db-env", "DATABASE_URL"}
	for i, a := range args {
		if a == "--refs-sql" {
			mapArgs = append(mapArgs, a, args[i+1])
		}
	}
	r := start(env, mapArgs)
	require.Equal(t, 0, r.code, r.stderr)

	// Shard 1 fails first: its database is unreachable.
	broken := slices.Clone(env)
	broken = append(broken, "DATABASE_URL=postgres://nobody:x@127.0.0.1:1/none", "JOB_COMPLETION_INDEX=1")
	r = start(broken, args)
	require.Equal(t, 1, r.code, r.stderr)
	assert.Equal(t, before, storagetest.Files(t, fsys), "a failed shard deletes nothing")

	runs := make([]run, n)
	var wg sync.WaitGroup
	for i := range n {
		if i == 1 {
			continue // it failed above; the others do not wait for it
		}
		wg.Go(func() { runs[i] = start(append(slices.Clone(env), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i)), args) })
	}
	wg.Wait()
	deleted := map[string]int{}
	ranges := map[string]bool{}
	collect := func(i int, r run) {
		require.Equal(t, 0, r.code, "shard %d: %s", i, r.stderr)
		var out struct {
			Orphans struct {
				Plan struct {
					Orphans []struct{ Path string }
					Range   *struct{ Start, End string }
				}
				Applied struct{ Deleted struct{ Files int } }
			}
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.NotNil(t, out.Orphans.Plan.Range, "shard %d's plan names its range", i)
		ranges[out.Orphans.Plan.Range.Start+"|"+out.Orphans.Plan.Range.End] = true
		for _, o := range out.Orphans.Plan.Orphans {
			deleted[o.Path]++
		}
		assert.Equal(t, len(out.Orphans.Plan.Orphans), out.Orphans.Applied.Deleted.Files)
	}
	for i, r := range runs {
		if i != 1 {
			collect(i, r)
		}
	}
	after := storagetest.Files(t, fsys)
	for _, p := range before {
		if !slices.Contains(orphans, p) {
			assert.Contains(t, after, p, "a referenced file was deleted")
		}
	}
	// Shard 1's orphans wait for it: no other shard touched its range.
	var sm orphan.ShardMap
	raw, err := os.ReadFile(filepath.Join(dir, "shards.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &sm))
	one, err := sm.Range(1)
	require.NoError(t, err)
	var waiting []string
	for _, o := range orphans {
		if one.Contains(o) {
			waiting = append(waiting, o)
			assert.Contains(t, after, o)
		}
	}
	require.NotEmpty(t, waiting, "shard 1 (%+v) holds an orphan, so its failure shows", one)

	// Shard 1, run again alone, finishes the job.
	r = start(append(slices.Clone(env), "JOB_COMPLETION_INDEX=1"), args)
	collect(1, r)
	assert.Len(t, ranges, n, "every shard had its own range")
	after = storagetest.Files(t, fsys)
	for _, o := range orphans {
		assert.NotContains(t, after, o, "orphan left")
		assert.Equal(t, 1, deleted[o], "%s planned by exactly one shard", o)
	}
	assert.Len(t, after, len(before)-len(orphans))
}
