package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// The seed's monitoring advice: track the media directory's size over
// time and watch for unusual growth. After each sweep the app records
// the files and bytes of each top-level directory in storage_usage; the
// admin page draws the last week as a chart and says how much each
// directory grew in the last day and week, and /metrics serves the same
// figures to Prometheus.

// usageSchema is the table of samples: one row per top-level directory
// ("." for files at the root) per sample.
const usageSchema = `CREATE TABLE IF NOT EXISTS storage_usage (
	taken INTEGER NOT NULL, dir TEXT NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL,
	PRIMARY KEY (taken, dir));`

// usageKeep is how long samples are kept: the chart's week and then some.
const usageKeep = 30 * 24 * time.Hour

// growthWindows are the spans the page and the metrics report growth
// over, with their labels.
var growthWindows = []struct {
	label string
	span  time.Duration
}{{"1d", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// topDir is the top-level directory of a stored path, "." for a file at
// the root.
func topDir(p string) string {
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// recordUsage lists storage and records a sample taken now, in one
// transaction that also drops samples older than usageKeep.
func (a *App) recordUsage(ctx context.Context, now time.Time) error {
	tally := map[string]*storage.Count{}
	err := storage.List(ctx, a.fs, storage.ListOptions{}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			d := topDir(e.Path)
			if tally[d] == nil {
				tally[d] = &storage.Count{}
			}
			tally[d].Add(e.Size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	taken := now.Unix()
	if len(tally) == 0 {
		tally["."] = &storage.Count{} // an empty storage is a sample too
	}
	for d, c := range tally {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO storage_usage (taken, dir, files, bytes) VALUES (?, ?, ?, ?)`, taken, d, c.Files, c.Bytes); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM storage_usage WHERE taken < ?`, now.Add(-usageKeep).Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// sample is one directory's figures at one time.
type sample struct {
	taken time.Time
	files int64
	bytes int64
}

// usage is the recorded history since some time: each directory's
// samples, oldest first, and the times of every sample.
type usage struct {
	dirs  map[string][]sample
	times []time.Time
}

// loadUsage reads the samples taken since from (and the last one before
// it, so that growth over a window has its starting point).
func (a *App) loadUsage(ctx context.Context, from time.Time) (*usage, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT taken, dir, files, bytes FROM storage_usage
		WHERE taken >= coalesce((SELECT max(taken) FROM storage_usage WHERE taken <= ?), 0) ORDER BY taken, dir`, from.Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	u := &usage{dirs: map[string][]sample{}}
	for rows.Next() {
		var taken int64
		var d string
		var s sample
		if err := rows.Scan(&taken, &d, &s.files, &s.bytes); err != nil {
			return nil, err
		}
		s.taken = time.Unix(taken, 0)
		u.dirs[d] = append(u.dirs[d], s)
		if n := len(u.times); n == 0 || !u.times[n-1].Equal(s.taken) {
			u.times = append(u.times, s.taken)
		}
	}
	return u, rows.Err()
}

// at returns a directory's figures at sample time t: a directory with no
// row then had no files.
func (u *usage) at(dir string, t time.Time) sample {
	for _, s := range u.dirs[dir] {
		if s.taken.Equal(t) {
			return s
		}
	}
	return sample{taken: t}
}

// latest is the time of the last sample (zero: none).
func (u *usage) latest() time.Time {
	if len(u.times) == 0 {
		return time.Time{}
	}
	return u.times[len(u.times)-1]
}

// base is the sample a window ending at the latest one starts from: the
// last one at or before its start, else the first one there is. It also
// returns the span it really covers, shorter than the window while the
// history is.
func (u *usage) base(window time.Duration) (time.Time, time.Duration) {
	last := u.latest()
	start := last.Add(-window)
	b := u.times[0]
	for _, t := range u.times {
		if t.After(start) {
			break
		}
		b = t
	}
	return b, last.Sub(b)
}

// dirNames are the directories of every sample, by name.
func (u *usage) dirNames() []string {
	var out []string
	for d := range u.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// growth is a directory's figures now and their change over each window.
type growth struct {
	Dir          string
	Files, Bytes int64
	Change       []change // one per growthWindows
}

type change struct {
	Window string        // "1d"
	Bytes  int64         // the change in bytes
	Files  int64         // the change in files
	Span   time.Duration // what the history covers, at most the window
}

// Sign is "+" for growth, "" otherwise (a negative number has its own).
func (c change) Sign() string {
	if c.Bytes > 0 {
		return "+"
	}
	return ""
}

// Human is the change in bytes for people: +1.2 MB, -300 B.
func (c change) Human() string {
	if c.Bytes < 0 {
		return "-" + human(-c.Bytes)
	}
	return c.Sign() + human(c.Bytes)
}

// Partial reports a window the history does not cover yet.
func (c change) Partial() bool { return c.Span < windowSpan(c.Window)-time.Minute }

// SpanText is the span covered, for people.
func (c change) SpanText() string { return took(c.Span.Round(time.Minute)) }

func windowSpan(label string) time.Duration {
	for _, w := range growthWindows {
		if w.label == label {
			return w.span
		}
	}
	return 0
}

// growths returns each directory's latest figures and change over each
// window, plus a line for the total (Dir "").
func (u *usage) growths() []growth {
	if len(u.times) == 0 {
		return nil
	}
	last := u.latest()
	dirs := append(u.dirNames(), "")
	out := make([]growth, 0, len(dirs))
	for _, d := range dirs {
		now := u.sum(d, last)
		g := growth{Dir: d, Files: now.files, Bytes: now.bytes}
		for _, w := range growthWindows {
			b, span := u.base(w.span)
			then := u.sum(d, b)
			g.Change = append(g.Change, change{Window: w.label, Bytes: now.bytes - then.bytes, Files: now.files - then.files, Span: span})
		}
		out = append(out, g)
	}
	return out
}

// sum is a directory's figures at t, or the total for dir "".
func (u *usage) sum(dir string, t time.Time) sample {
	if dir != "" {
		return u.at(dir, t)
	}
	var s sample
	for d := range u.dirs {
		x := u.at(d, t)
		s.files += x.files
		s.bytes += x.bytes
	}
	return s
}

// usageCollector serves the latest sample and the growths to Prometheus,
// read from the database at each scrape: the figures the admin page
// shows.
type usageCollector struct {
	a                           *App
	files, bytes, growth, taken *prometheus.Desc
}

func newUsageCollector(a *App) *usageCollector {
	return &usageCollector{
		a:      a,
		files:  prometheus.NewDesc("mediaclean_media_files", "Regular files in storage at the last sample, by top-level directory (\".\" for files at the root).", []string{"dir"}, nil),
		bytes:  prometheus.NewDesc("mediaclean_media_bytes", "Bytes of the regular files in storage at the last sample, by top-level directory.", []string{"dir"}, nil),
		growth: prometheus.NewDesc("mediaclean_media_growth_bytes", "Change in bytes by top-level directory from the sample that starts the window (1d, 7d; the oldest sample while the history is shorter) to the last.", []string{"dir", "window"}, nil),
		taken:  prometheus.NewDesc("mediaclean_media_sample_timestamp_seconds", "When the last storage sample was taken (after a sweep), in seconds since the Unix epoch.", nil, nil),
	}
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.files, c.bytes, c.growth, c.taken} {
		ch <- d
	}
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := c.a.loadUsage(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.bytes, err)
		return
	}
	if len(u.times) == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.taken, prometheus.GaugeValue, float64(u.latest().Unix()))
	for _, g := range u.growths() {
		if g.Dir == "" {
			continue // Prometheus sums by itself
		}
		ch <- prometheus.MustNewConstMetric(c.files, prometheus.GaugeValue, float64(g.Files), g.Dir)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(g.Bytes), g.Dir)
		for _, x := range g.Change {
			ch <- prometheus.MustNewConstMetric(c.growth, prometheus.GaugeValue, float64(x.Bytes), g.Dir, x.Window)
		}
	}
}

// metricsHandler serves /metrics from a registry of the app's own.
func (a *App) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newUsageCollector(a), a.sweepMetrics.runs, a.sweepMetrics.deleted, a.sweepMetrics.last)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, ErrorHandling: promhttp.ContinueOnError})
}

// sweepMetrics count the sweeps.
type sweepMetrics struct {
	runs    *prometheus.CounterVec
	deleted *prometheus.CounterVec
	last    prometheus.Gauge
}

func newSweepMetrics() sweepMetrics {
	m := sweepMetrics{
		runs:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaclean_qr_sweeps_total", Help: "QR sweeps run, by result (ok, error)."}, []string{"result"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediaclean_qr_swept_total", Help: "What QR sweeps deleted, by unit (files, bytes)."}, []string{"unit"}),
		last:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "mediaclean_qr_sweep_last_success_timestamp_seconds", Help: "When the last QR sweep that succeeded ended, in seconds since the Unix epoch (0: none yet)."}),
	}
	for _, r := range []string{"ok", "error"} {
		m.runs.WithLabelValues(r)
	}
	for _, u := range []string{"files", "bytes"} {
		m.deleted.WithLabelValues(u)
	}
	return m
}
