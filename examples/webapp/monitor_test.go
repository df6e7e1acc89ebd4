package main

import (
	"context"
	"net/http"
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

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// latestUsage is the last sample's bytes by directory.
func (e *env) latestUsage() map[string]int64 {
	e.t.Helper()
	rows, err := e.db.Query(`SELECT dir, bytes FROM storage_usage WHERE taken = (SELECT max(taken) FROM storage_usage)`)
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var d string
		var b int64
		require.NoError(e.t, rows.Scan(&d, &b))
		out[d] = b
	}
	require.NoError(e.t, rows.Err())
	return out
}

// storageBytes is what storage holds, by top-level directory.
func (e *env) storageBytes() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	for _, p := range storagetest.Files(e.t, e.fs) {
		fi, err := e.fs.Stat(p)
		require.NoError(e.t, err)
		out[topDir(p)] += fi.Size()
	}
	return out
}

// metrics fetches /metrics, lints it as promtool check metrics does, and
// parses it.
func (e *env) metrics() map[string]*dto.MetricFamily {
	e.t.Helper()
	code, body := e.get("/metrics")
	require.Equal(e.t, http.StatusOK, code)
	problems, err := promlint.New(strings.NewReader(string(body))).Lint()
	require.NoError(e.t, err)
	assert.Empty(e.t, problems, "promlint")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(e.t, err)
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name, value, name, value...).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	fam := fams[name]
	require.NotNil(t, fam, name)
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

// Each sweep records the bytes of each top-level directory; the admin page
// draws them and says how much each grew in the last day and week, and
// /metrics serves the same figures, lint-free.
func TestStorageUsageAfterEachSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("picture"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/forum", map[string]string{"user_id": "1", "body": "hi"}, png("an image"), "f.png"))

	// No sample yet: the page says so, and /metrics has none.
	_, page := e.browser().get("/admin")
	assert.Contains(t, page, "No samples yet")
	assert.Nil(t, e.metrics()["mediaclean_media_bytes"])

	// A history: eight days ago, thirty hours ago, and two hours ago.
	now := time.Now()
	for _, s := range []struct {
		ago   time.Duration
		dir   string
		bytes int64
	}{
		{8 * 24 * time.Hour, "profile_pics", 5},
		{30 * time.Hour, "profile_pics", 10},
		{30 * time.Hour, "forum_images", 1},
		{2 * time.Hour, "profile_pics", 20},
		{2 * time.Hour, "forum_images", 25},
		{2 * time.Hour, "qr_codes", 100}, // gone since: a fall
	} {
		_, err := e.db.Exec(`INSERT INTO storage_usage (taken, dir, files, bytes) VALUES (?, ?, 1, ?)`, now.Add(-s.ago).Unix(), s.dir, s.bytes)
		require.NoError(t, err)
	}
	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/sweep", nil).StatusCode)
	have := e.storageBytes()
	assert.Equal(t, have, e.latestUsage(), "the sample is what storage holds")
	pics, images := have["profile_pics"], have["forum_images"]
	require.Positive(t, pics)
	require.Positive(t, images)

	fams := e.metrics()
	assert.Equal(t, float64(pics), value(t, fams, "mediaclean_media_bytes", "dir", "profile_pics"))
	assert.Equal(t, float64(images), value(t, fams, "mediaclean_media_bytes", "dir", "forum_images"))
	assert.Equal(t, 0.0, value(t, fams, "mediaclean_media_bytes", "dir", "qr_codes"), "a directory that emptied reads 0")
	assert.Equal(t, float64(1), value(t, fams, "mediaclean_media_files", "dir", "forum_images"))
	// The day's growth starts from the sample thirty hours ago (the last
	// one at or before a day ago), the week's from eight days ago.
	assert.Equal(t, float64(pics-10), value(t, fams, "mediaclean_media_growth_bytes", "dir", "profile_pics", "window", "1d"))
	assert.Equal(t, float64(images-1), value(t, fams, "mediaclean_media_growth_bytes", "dir", "forum_images", "window", "1d"))
	assert.Equal(t, float64(pics-5), value(t, fams, "mediaclean_media_growth_bytes", "dir", "profile_pics", "window", "7d"))
	assert.Equal(t, float64(images), value(t, fams, "mediaclean_media_growth_bytes", "dir", "forum_images", "window", "7d"))
	assert.InDelta(t, float64(time.Now().Unix()), value(t, fams, "mediaclean_media_sample_timestamp_seconds"), 60)
	assert.Equal(t, 1.0, value(t, fams, "mediaclean_qr_sweeps_total", "result", "ok"))

	_, page = e.browser().get("/admin")
	assert.Contains(t, page, `<svg class="chart"`)
	assert.Equal(t, 4, strings.Count(page, `<polyline class="series"`), "three directories and the total")
	assert.Regexp(t, `<polyline class="series" points="(\d+(\.\d)?,\d+(\.\d)? ){2}\d+(\.\d)?,\d+(\.\d)?" stroke="#[0-9a-f]{6}"/>`, page, "three samples in the week: eight days ago is outside")
	row := regexp.MustCompile(`<td class="path">profile_pics/</td><td class="num">1</td><td class="num">([^<]+)</td>\s*<td class="num growth up">&#43;([^<]+)</td><td class="num growth up">&#43;([^<]+)</td>`).FindStringSubmatch(page)
	require.NotNil(t, row, "profile_pics's growth on the page:\n%s", page[strings.Index(page, `id="usage"`):strings.Index(page, `id="sweep"`)])
	assert.Equal(t, []string{human(pics), human(pics - 10), human(pics - 5)}, row[1:], "the page shows the figures /metrics serves")
	assert.Contains(t, page, `<td class="path">qr_codes/</td><td class="num">0</td><td class="num">0 B</td>`)
}

// The sample is recorded by the sweeper's own runs too, and old samples
// are dropped after usageKeep.
func TestUsageKeepsAMonth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.db.Exec(`INSERT INTO storage_usage (taken, dir, files, bytes) VALUES (?, 'x', 1, 1), (?, 'x', 1, 2)`,
		time.Now().Add(-usageKeep-time.Hour).Unix(), time.Now().Add(-usageKeep+time.Hour).Unix())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.app.RunSweeper(ctx, time.Hour) }()
	started := time.Now().Unix()
	require.Eventually(t, func() bool {
		var old, n int
		require.NoError(t, e.db.QueryRow(`SELECT count(*) FILTER (WHERE taken < ?), count(DISTINCT taken) FROM storage_usage`, started-int64(usageKeep.Seconds())).Scan(&old, &n))
		return old == 0 && n == 2
	}, 10*time.Second, 10*time.Millisecond, "the sweeper's first run records a sample and drops the one past a month")
	cancel()
	<-done
	assert.Equal(t, map[string]int64{".": 0}, e.latestUsage(), "an empty storage is a sample too")
}

// The chart's ticks are round figures.
func TestNiceStep(t *testing.T) {
	for top, want := range map[int64]float64{0: 1000, 1: 1, 7: 2, 100: 50, 999: 500, 4000: 1000, 12_345_678: 5_000_000} {
		assert.Equal(t, want, niceStep(top), "%d", top)
	}
}
