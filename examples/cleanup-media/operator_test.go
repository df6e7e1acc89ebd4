package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// --dry-run --verbose lists every file it would delete, with size and
// reason, and no kept file; --verbose alone lists what was deleted.
func TestVerboseListsDeletions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := runCmd(t, f.orphanArgs("--dry-run", "--verbose")...)
	require.Equal(t, 0, r.code, r.stderr)
	var got []string
	for _, l := range regexp.MustCompile(`(?m)^(\S+) +(\d+ B) +(.+?) +(\S+)$`).FindAllStringSubmatch(r.stdout, -1) {
		got = append(got, strings.Join(l[1:], " | "))
	}
	assert.ElementsMatch(t, []string{
		"would_delete | 400 B | unreferenced | profile_pics/orphan.jpg",
		"would_delete | 100 B | unreferenced | qr_codes/1/old.png",  // the orphan plan
		"would_delete | 100 B | rule qr_codes | qr_codes/1/old.png", // and the sweep
	}, got, r.stdout)
	assert.NotContains(t, r.stdout, "keep", "kept files are not listed")
	assert.NotContains(t, r.stdout, "ref.jpg")

	r = runCmd(t, f.orphanArgs("--verbose")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Regexp(t, `(?m)^delete +400 B +unreferenced +profile_pics/orphan\.jpg$`, r.stdout)
	assert.Regexp(t, `(?m)^delete +100 B +rule qr_codes +qr_codes/1/old\.png$`, r.stdout)
	assert.NotContains(t, r.stdout, "would_delete")
	assert.NotContains(t, r.stdout, "already_gone", "the orphan the sweep took first is not news")
}

// --exclude keeps matching files from the orphan check and the sweep;
// --strip-prefix turns URL references into stored paths;
// --remove-empty-dirs removes what the sweep empties.
func TestExcludeStripPrefixRemoveEmptyDirs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	refs := filepath.Join(t.TempDir(), "refs.txt")
	require.NoError(t, os.WriteFile(refs, []byte(
		"https://cdn.example.com/media/profile_pics/ref.jpg\n/media/qr_codes/1/new.png\nforum_images/a.png\n"), 0o644))
	r := runCmd(t, "--root", f.root, "--check-orphans", "--refs-file", refs, "--force",
		"--strip-prefix", "https://cdn.example.com/media/", "--strip-prefix", "/media/",
		"--exclude", "profile_pics/orphan.*", "--exclude", "qr_codes/1/old.png", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	files := f.files(t)
	for _, p := range []string{"profile_pics/ref.jpg", "qr_codes/1/new.png", "profile_pics/orphan.jpg", "qr_codes/1/old.png"} {
		assert.Contains(t, files, p)
	}

	// Without the excludes, the orphan and the old QR code go; the sweep
	// (QR codes) runs before the orphans and leaves qr_codes/2 empty.
	fsys, err := rootfs.New(f.root)
	require.NoError(t, err)
	defer fsys.Close()
	storagetest.WriteFile(t, fsys, "qr_codes/2/x.png", []byte("x"), time.Now().Add(-30*24*time.Hour))
	r = runCmd(t, "--root", f.root, "--refs-file", refs, "--strip-prefix", "https://cdn.example.com/media/",
		"--strip-prefix", "/media/", "--remove-empty-dirs")
	require.Equal(t, 0, r.code, r.stderr)
	files = f.files(t)
	assert.NotContains(t, files, "qr_codes/2/x.png")
	assert.NotContains(t, files, "qr_codes/1/old.png")
	_, err = os.Stat(filepath.Join(f.root, "qr_codes", "2"))
	assert.True(t, os.IsNotExist(err), "emptied folder removed: %v", err)
	assert.Contains(t, files, "qr_codes/1/new.png", "referenced through a stripped prefix")
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	for arg, want := range map[string]string{
		"--dryrun":       "did you mean --dry-run?",
		"--check-orphan": "did you mean --check-orphans?",
		"-root":          "did you mean --root?",
		"--refs-sq=x":    "did you mean --refs-sql?",
	} {
		r := runCmd(t, "--root", t.TempDir(), arg)
		assert.Equal(t, exitUsage, r.code, arg)
		assert.Contains(t, r.stderr, want, arg)
	}
	r := runCmd(t, "--help")
	assert.Equal(t, 0, r.code)
	for _, s := range []string{"Usage:\n  cleanup-media --root", "--dry-run", "--refs-sql QUERY", "Examples:", "Exit codes:"} {
		assert.Contains(t, r.stderr, s)
	}
}

// --json prints one document for errors too, usage errors included.
func TestJSONOnErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--json", "--bogus"}, exitUsage},
		{[]string{"--json", "--root", f.root + "-missing"}, exitError},
		{f.orphanArgs("--json", "--max-delete", "1"), exitRefused},
	} {
		r := runCmd(t, tc.args...)
		assert.Equal(t, tc.code, r.code)
		var out Output
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.NotNil(t, out.Error, r.stdout)
		assert.Equal(t, tc.code, out.Error.ExitCode)
		assert.NotEmpty(t, out.Error.Message)
	}
}

// --metrics-file writes the textfile collector's format, through a
// temporary name; a failed run keeps the last success's time.
func TestMetricsFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	dir := t.TempDir()
	prom := filepath.Join(dir, "cleanup_media.prom")
	before := time.Now()
	r := runCmd(t, f.orphanArgs("--metrics-file", prom)...)
	require.Equal(t, 0, r.code, r.stderr)
	fam := readMetrics(t, prom)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")

	assert.Equal(t, 2.0, gauge(t, fam, "mediaclean_media_files", "dir", "qr_codes"), "qr_codes holds old.png and new.png (and a link, not a file)")
	assert.Equal(t, 300.0, gauge(t, fam, "mediaclean_media_bytes", "dir", "qr_codes"))
	assert.Equal(t, 1200.0, gauge(t, fam, "mediaclean_media_bytes", "dir", "profile_pics"), "300+400+500")
	assert.Equal(t, 2.0, gauge(t, fam, "mediaclean_orphans_found", "unit", "files"))
	assert.Equal(t, 500.0, gauge(t, fam, "mediaclean_orphans_found", "unit", "bytes"))
	// old.png is swept before the orphans are applied: Apply finds it gone.
	assert.Equal(t, 400.0, gauge(t, fam, "mediaclean_orphans_deleted", "unit", "bytes"))
	assert.Equal(t, 100.0, gauge(t, fam, "mediaclean_swept", "unit", "bytes"))
	assert.Equal(t, 1.0, gauge(t, fam, "mediaclean_last_run_success", "", ""))
	success := gauge(t, fam, "mediaclean_last_success_timestamp_seconds", "", "")
	assert.InDelta(t, float64(before.Unix()), success, 60)
	assert.Equal(t, 0.0, gauge(t, fam, "mediaclean_guard_refusals", "guard", "max_delete"))

	r = runCmd(t, f.orphanArgs("--metrics-file", prom, "--refs-sql", "SELECT nothing FROM nowhere")...)
	require.Equal(t, exitRefused, r.code, r.stderr)
	fam = readMetrics(t, prom)
	assert.Equal(t, 0.0, gauge(t, fam, "mediaclean_last_run_success", "", ""))
	assert.Equal(t, success, gauge(t, fam, "mediaclean_last_success_timestamp_seconds", "", ""), "carried over")
	assert.Equal(t, 1.0, gauge(t, fam, "mediaclean_guard_refusals", "guard", "provider"))
	assert.GreaterOrEqual(t, gauge(t, fam, "mediaclean_last_run_timestamp_seconds", "", ""), success)

	// A dry run deletes nothing, and says so.
	r = runCmd(t, "--root", f.root, "--dry-run", "--rule", "**=1s", "--metrics-file", prom)
	require.Equal(t, 0, r.code, r.stderr)
	fam = readMetrics(t, prom)
	assert.Equal(t, 0.0, gauge(t, fam, "mediaclean_swept", "unit", "files"))

	// Without an orphan check the media are measured by a listing.
	r = runCmd(t, "--root", f.root, "--qr-age", "0", "--metrics-file", prom)
	require.Equal(t, 0, r.code, r.stderr)
	fam = readMetrics(t, prom)
	assert.Equal(t, 800.0, gauge(t, fam, "mediaclean_media_bytes", "dir", "profile_pics"), "orphan.jpg is gone")
}

// readMetrics parses the file and lints it as "promtool check metrics"
// does (promlint is its linter).
func readMetrics(t *testing.T, name string) map[string]*dto.MetricFamily {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	problems, err := promlint.New(strings.NewReader(string(data))).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(data)))
	require.NoError(t, err)
	return fams
}

func gauge(t *testing.T, fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	t.Helper()
	fam := fams[name]
	require.NotNil(t, fam, name)
	for _, m := range fam.GetMetric() {
		if label == "" {
			return m.GetGauge().GetValue()
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// Shard flags that cannot work are usage errors, before anything runs;
// a map of another size is refused.
func TestShardFlags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	maps := t.TempDir()
	two := filepath.Join(maps, "two.json")
	require.NoError(t, os.WriteFile(two, []byte(`{"boundaries": ["profile_pics/"]}`), 0o644))
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{f.orphanArgs("--shard", "2/2", "--shard-map", two), "want 0 <= I < N"},
		{f.orphanArgs("--shard", "x"), "want I/N"},
		{f.orphanArgs("--shards", "2", "--shard-map", two), "JOB_COMPLETION_INDEX"},
		{f.orphanArgs("--shard", "0/2"), "--shard-map FILE is needed"},
		{f.orphanArgs("--shard", "0/3", "--shard-map", two), "has 2 shards, not 3"},
		{[]string{"--root", f.root, "--shard", "0/2", "--shard-map", two}, "give --check-orphans"},
		{[]string{"--root", f.root, "--make-shard-map", "--shards", "2", "--shard-map", two}, "samples the references"},
	} {
		r := runCmd(t, tc.args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.msg)
	}
	before := f.files(t)
	assert.Equal(t, before, f.files(t))

	// Two shards from a map the command wrote delete what one run would.
	m := filepath.Join(maps, "made.json")
	r := runCmd(t, append(f.orphanArgs("--make-shard-map", "--shards", "2", "--shard-map", m), "--check-orphans=false")...)
	require.Equal(t, 0, r.code, r.stderr)
	for i := range 2 {
		r = runEnv(t, []string{fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i)}, f.orphanArgs("--shards", "2", "--shard-map", m, "--qr-age", "0", "--max-fraction", "0")...)
		require.Equal(t, 0, r.code, r.stderr)
	}
	files := f.files(t)
	assert.NotContains(t, files, "profile_pics/orphan.jpg")
	assert.NotContains(t, files, "qr_codes/1/old.png")
	assert.Len(t, files, len(before)-2)
}
