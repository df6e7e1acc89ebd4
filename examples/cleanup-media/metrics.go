package main

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mediaclean/mediaclean/orphan"
)

// metrics are what --metrics-file writes: the run's figures in the
// Prometheus text format, for node_exporter's textfile collector. Every
// series is a gauge describing the last run, except the timestamps, which
// say when the last run and the last successful run ended; a failed run
// carries the last success over from the file it replaces, so an alert
// on "no success for two days" works across failures.
type metrics struct {
	reg *prometheus.Registry

	files, bytes         *prometheus.GaugeVec
	orphansFound         *prometheus.GaugeVec
	orphansDeleted       *prometheus.GaugeVec
	swept                *prometheus.GaugeVec
	failures             prometheus.Gauge
	refusals             *prometheus.GaugeVec
	duration             prometheus.Gauge
	success              prometheus.Gauge
	lastRun, lastSuccess prometheus.Gauge

	dirFiles, dirBytes map[string]float64
}

// guards are the refusals --metrics-file counts, by label.
var guards = []struct {
	name string
	err  error
}{
	{"provider", orphan.ErrProvider},
	{"no_references", orphan.ErrNoReferences},
	{"uncovered", orphan.ErrUncovered},
	{"max_delete", orphan.ErrDeleteLimit},
	{"max_fraction", orphan.ErrFractionLimit},
	{"max_bytes", orphan.ErrBytesLimit},
	{"stale_listing", orphan.ErrStaleListing},
	{"empty_source", errEmptySource},
	{"nothing_stored", errNothingStored},
}

// newMetrics returns the run's gauges; shard ("I/N"), when set, labels
// every series, so that the shards of one run write files side by side.
func newMetrics(shard string) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), dirFiles: map[string]float64{}, dirBytes: map[string]float64{}}
	var reg prometheus.Registerer = m.reg
	if shard != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"shard": shard}, m.reg)
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mediaclean", Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	vec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mediaclean", Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	m.files = vec("media_files", "Regular files in the media root at the last run, by top-level directory (\".\" for files at the root).", "dir")
	m.bytes = vec("media_bytes", "Bytes of the regular files in the media root at the last run, by top-level directory.", "dir")
	m.orphansFound = vec("orphans_found", "Orphans the last run found (files no reference names, older than the grace period).", "unit")
	m.orphansDeleted = vec("orphans_deleted", "Orphans the last run deleted or quarantined.", "unit")
	m.swept = vec("swept", "Files the last run's age rules deleted.", "unit")
	m.failures = gauge("failures", "Deletions and moves that failed in the last run.")
	m.refusals = vec("guard_refusals", "1 for the guard that refused the last run's orphan plan, by guard.", "guard")
	m.duration = gauge("run_duration_seconds", "How long the last run took.")
	m.success = gauge("last_run_success", "1 if the last run succeeded, 0 if it failed or was refused.")
	m.lastRun = gauge("last_run_timestamp_seconds", "When the last run ended, in seconds since the Unix epoch.")
	m.lastSuccess = gauge("last_success_timestamp_seconds", "When the last successful run ended, in seconds since the Unix epoch (0: never).")
	for _, g := range guards {
		m.refusals.WithLabelValues(g.name).Set(0)
	}
	for _, u := range []string{"files", "bytes"} {
		m.orphansFound.WithLabelValues(u).Set(0)
		m.orphansDeleted.WithLabelValues(u).Set(0)
		m.swept.WithLabelValues(u).Set(0)
	}
	return m
}

// file counts one regular file of the root under its top directory.
func (m *metrics) file(path string, size int64) {
	dir, _, ok := strings.Cut(path, "/")
	if !ok {
		dir = "."
	}
	m.dirFiles[dir]++
	m.dirBytes[dir] += float64(size)
}

// refused records the guard that err names, if any.
func (m *metrics) refused(err error) {
	for _, g := range guards {
		if errors.Is(err, g.err) {
			m.refusals.WithLabelValues(g.name).Set(1)
		}
	}
}

// fill copies the run's reports into the gauges.
func (m *metrics) fill(out *Output) {
	for dir, n := range m.dirFiles {
		m.files.WithLabelValues(dir).Set(n)
		m.bytes.WithLabelValues(dir).Set(m.dirBytes[dir])
	}
	var failed int
	if o := out.Orphans; o != nil && o.Plan != nil {
		m.orphansFound.WithLabelValues("files").Set(float64(o.Plan.Total.Files))
		m.orphansFound.WithLabelValues("bytes").Set(float64(o.Plan.Total.Bytes))
		if a := o.Applied; a != nil { // nil in a dry run
			m.orphansDeleted.WithLabelValues("files").Set(float64(a.Deleted.Files + a.Quarantined.Files))
			m.orphansDeleted.WithLabelValues("bytes").Set(float64(a.Deleted.Bytes + a.Quarantined.Bytes))
			failed += a.Failed.Files
		}
	}
	if s := out.Sweep; s != nil && !out.DryRun { // a dry run's Deleted counts what would go
		m.swept.WithLabelValues("files").Set(float64(s.Deleted.Files))
		m.swept.WithLabelValues("bytes").Set(float64(s.Deleted.Bytes))
		failed += s.Failed.Files
	}
	m.failures.Set(float64(failed))
}

// write replaces path with the run's metrics: written to a temporary name
// in the same directory and renamed into place, so the collector never
// reads half a file. ok says whether the run succeeded; when it did not,
// the last success is carried over from the file being replaced.
func (m *metrics) write(path string, out *Output, took time.Duration, end time.Time, ok bool) error {
	m.fill(out)
	m.duration.Set(took.Seconds())
	m.lastRun.Set(float64(end.UnixNano()) / 1e9)
	if ok {
		m.success.Set(1)
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	} else {
		m.success.Set(0)
		m.lastSuccess.Set(previousSuccess(path))
	}
	return prometheus.WriteToTextfile(path, m.reg)
}

// previousSuccess reads the last success's time from an earlier metrics
// file; 0 when there is none or it cannot be read.
func previousSuccess(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(f)
	if err != nil {
		return 0
	}
	fam := families["mediaclean_last_success_timestamp_seconds"]
	if fam == nil || len(fam.GetMetric()) != 1 {
		return 0
	}
	return fam.GetMetric()[0].GetGauge().GetValue()
}
