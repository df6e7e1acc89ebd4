package age

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for _, c := range []struct {
		s    string
		bare time.Duration
		want time.Duration
		ok   bool
	}{
		{"90m", 0, 90 * time.Minute, true},
		{"36h", 0, 36 * time.Hour, true},
		{"7d", 0, 7 * day, true},
		{"1.5d", 0, 36 * time.Hour, true},
		{"2w", 0, 14 * day, true},
		{"0", 0, 0, true},
		{"0d", 0, 0, true},
		{"7", day, 7 * day, true},
		{"7", 0, 0, false},
		{"-1d", 0, 0, false},
		{"-5m", 0, 0, false},
		{"d", 0, 0, false},
		{"7x", 0, 0, false},
		{"NaNd", 0, 0, false},
		{"1e300d", 0, 0, false},
		// An operator writing months gets an error, not minutes.
		{"6m", 0, 0, false},
		{"1m", 0, 0, false},
		{"12m", 0, 0, false},
		{"1.5m", 0, 0, false},
		{"6.0m", 0, 0, false},
		{"6.m", 0, 0, false},
		{"0.5m", 0, 0, false},
		{"12.9m", 0, 0, false},
		{"+6m", 0, 0, false},
		{"0m", 0, 0, true},
		{"13.5m", 0, 13*time.Minute + 30*time.Second, true},
		{"6mo", 0, 0, false},
		{"1y", 0, 0, false},
		{"2years", 0, 0, false},
		{"6min", 0, 6 * time.Minute, true},
		{"13m", 0, 13 * time.Minute, true},
		{"1h30m", 0, 90 * time.Minute, true},
		{"min", 0, 0, false},
	} {
		got, err := Parse(c.s, c.bare)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("Parse(%q, %v) = %v, %v; want %v, ok=%v", c.s, c.bare, got, err, c.want, c.ok)
		}
	}
	for _, d := range []time.Duration{7 * day, 14 * day, 36 * time.Hour, 90 * time.Minute, time.Minute, 12 * time.Minute, 13 * time.Minute} {
		if got, err := Parse(Format(d), 0); err != nil || got != d {
			t.Errorf("Parse(Format(%v)) = %v, %v", d, got, err)
		}
	}
}

func TestFormatUsesTheLargestWholeUnit(t *testing.T) {
	for d, want := range map[time.Duration]string{
		14 * 24 * time.Hour: "2w", 7 * 24 * time.Hour: "7d", 36 * time.Hour: "36h",
		90 * time.Minute: "90m", time.Minute: "1min", 12 * time.Minute: "12min", 13 * time.Minute: "13m", 45 * time.Second: "45s", 1500 * time.Millisecond: "1.5s", 0: "0s",
	} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
	}
}
