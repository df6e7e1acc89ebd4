package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// chart is a line chart of bytes over time, drawn on the server as SVG:
// one line per top-level directory and a dashed one for the total. The
// page needs no script, and the policy allows none.
type chart struct {
	Width, Height            int
	Left, Right, Top, Bottom float64 // the plot area
	Series                   []series
	YTicks, XTicks           []tick
	From, To                 time.Time
	Single                   bool // one sample: points, no lines
}

type series struct {
	Name, Color string
	Dashed      bool
	Points      string // "x,y x,y ..."
	Dots        []point
}

type point struct{ X, Y float64 }

type tick struct {
	At    float64 // x or y
	Label string
}

// palette: distinct colours that read on white.
var palette = []string{"#2f62c7", "#d9822b", "#1d7a46", "#b3261e", "#7b4bb7", "#0f8a8a", "#8a6d0f", "#c2417a"}

// maxSeries bounds the lines: the largest directories.
const maxSeries = 8

// newChart draws the samples of u from its first to its latest; nil when
// there are none.
func newChart(u *usage, window time.Duration) *chart {
	if len(u.times) == 0 {
		return nil
	}
	to := u.latest()
	from := to.Add(-window)
	var times []time.Time
	for _, t := range u.times {
		if !t.Before(from) {
			times = append(times, t)
		}
	}
	if len(times) == 0 {
		times = u.times[len(u.times)-1:]
	}
	from = times[0]
	c := &chart{Width: 720, Height: 240, Left: 72, Right: 700, Top: 14, Bottom: 210, From: from, To: to, Single: len(times) == 1}
	span := to.Sub(from)
	if span < time.Hour {
		// A short history: an hour's axis, the samples on its right.
		span = time.Hour
		from = to.Add(-span)
		c.From = from
	}
	x := func(t time.Time) float64 {
		return c.Left + (c.Right-c.Left)*float64(t.Sub(from))/float64(span)
	}

	// The directories, largest now first, then the total.
	dirs := u.dirNames()
	slices.SortStableFunc(dirs, func(a, b string) int {
		return int(sign(u.at(b, to).bytes - u.at(a, to).bytes))
	})
	if len(dirs) > maxSeries {
		dirs = dirs[:maxSeries]
	}
	var top int64
	for _, t := range times {
		top = max(top, u.sum("", t).bytes)
	}
	step := niceStep(top)
	ymax := step * math.Max(1, math.Ceil(float64(top)/step))
	y := func(b int64) float64 { return c.Bottom - (c.Bottom-c.Top)*float64(b)/ymax }
	for v := 0.0; v <= ymax+step/2; v += step {
		c.YTicks = append(c.YTicks, tick{At: round1(y(int64(v))), Label: human(int64(v))})
	}
	c.XTicks = timeTicks(from, to, x)

	line := func(name, color string, dashed bool, value func(time.Time) int64) {
		s := series{Name: name, Color: color, Dashed: dashed}
		var pts []string
		for _, t := range times {
			p := point{X: round1(x(t)), Y: round1(y(value(t)))}
			pts = append(pts, fmt.Sprintf("%g,%g", p.X, p.Y))
			s.Dots = append(s.Dots, p)
		}
		s.Points = strings.Join(pts, " ")
		c.Series = append(c.Series, s)
	}
	for i, d := range dirs {
		line(d+"/", palette[i%len(palette)], false, func(t time.Time) int64 { return u.at(d, t).bytes })
	}
	if len(dirs) > 1 {
		line("all", "#5d6675", true, func(t time.Time) int64 { return u.sum("", t).bytes })
	}
	return c
}

// niceStep is a tick step of 1, 2 or 5 times a power of ten that cuts
// [0, top] into at most five parts.
func niceStep(top int64) float64 {
	if top <= 0 {
		return 1000
	}
	raw := float64(top) / 4
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return max(1, m*p) // whole bytes
		}
	}
	return 10 * p
}

// timeTicks marks midnights over a span of more than two days, else
// whole hours, a handful of them.
func timeTicks(from, to time.Time, x func(time.Time) float64) []tick {
	var out []tick
	span := to.Sub(from)
	if span > 48*time.Hour {
		d := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, from.Location()).AddDate(0, 0, 1)
		for ; !d.After(to); d = d.AddDate(0, 0, 1) {
			out = append(out, tick{At: round1(x(d)), Label: d.Format("Mon 2")})
		}
		return out
	}
	hours := max(1, int(math.Ceil(span.Hours()/6)))
	t := from.Truncate(time.Hour).Add(time.Hour)
	for ; !t.After(to); t = t.Add(time.Duration(hours) * time.Hour) {
		out = append(out, tick{At: round1(x(t)), Label: t.Format("15:04")})
	}
	return out
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

func sign(n int64) int64 {
	switch {
	case n > 0:
		return 1
	case n < 0:
		return -1
	}
	return 0
}
