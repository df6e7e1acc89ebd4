// Package age parses the one duration syntax of the example programs:
// Go durations ("90m", "36h", "1h30m") plus days and weeks ("7d", "2w",
// "1.5d"), so that every flag taking an age reads the same way.
package age

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse parses s as an age: a Go duration, or a number followed by "d"
// (days), "w" (weeks) or "min" (minutes). "1m" to "12m" (and "1.5m",
// anything above 0 and below 13 "m") are refused as ambiguous (an
// operator may mean months), and so are months and years,
// which have no fixed length. A bare number means that many of bare, when bare
// is not zero ("--qr-age 7" counts days, as the seed's command did), and
// is an error otherwise. Negative ages are refused; zero is allowed.
func Parse(s string, bare time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	unit := time.Duration(0)
	num := s
	if n, ok := strings.CutSuffix(s, "min"); ok {
		// Minutes, unmistakably: "6min".
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return 0, fmt.Errorf("bad age %q: want a number before \"min\", such as 30min", s)
		}
		return scale(s, v, time.Minute)
	}
	if monthLike(s) {
		return 0, fmt.Errorf("ambiguous age %q: m means minutes, not months; write %smin for minutes, or days (180d is about six months)", s, s[:len(s)-1])
	}
	for _, u := range []string{"mo", "month", "months", "y", "year", "years"} {
		if n, ok := strings.CutSuffix(s, u); ok && n != "" && strings.Trim(n, "0123456789.") == "" {
			return 0, fmt.Errorf("bad age %q: months and years have no fixed length; write days, such as 180d or 365d", s)
		}
	}
	switch {
	case strings.HasSuffix(s, "d"):
		unit, num = 24*time.Hour, s[:len(s)-1]
	case strings.HasSuffix(s, "w"):
		unit, num = 7*24*time.Hour, s[:len(s)-1]
	default:
		if n, err := strconv.ParseFloat(s, 64); err == nil && bare != 0 {
			return scale(s, n, bare)
		}
	}
	if unit != 0 {
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("bad age %q: want a number before %q, such as 7d or 2w", s, s[len(s)-1:])
		}
		return scale(s, n, unit)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad age %q: want a duration such as 90m, 36h, 7d or 2w", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("bad age %q: must not be negative", s)
	}
	return d, nil
}

// monthLike reports whether s is a number above 0 and below 13 followed
// by "m", with or without a sign or a decimal point ("6m", "+6m",
// "1.5m", "6.m"): Go reads it as minutes, while an operator writing
// "--rule 'backups/**=6m'" or "=1.5m" means months, and would delete
// everything older than six minutes or ninety seconds. No media cleanup
// keeps files for less than 13 minutes, so such an age is refused and
// "6min" says minutes.
func monthLike(s string) bool {
	n, ok := strings.CutSuffix(s, "m")
	if !ok || strings.Trim(n, "+0123456789.") != "" {
		return false
	}
	v, err := strconv.ParseFloat(n, 64)
	return err == nil && v > 0 && v < 13
}

func scale(s string, n float64, unit time.Duration) (time.Duration, error) {
	if n < 0 || n != n || n*float64(unit) > float64(1<<62) {
		return 0, fmt.Errorf("bad age %q: must be between 0 and about 146 years", s)
	}
	return time.Duration(n * float64(unit)), nil
}

// Format writes d in the same syntax, in its largest whole unit: "2w"
// (from two weeks up), "7d", "36h", "90m", "45s"; anything else as a Go
// duration ("1.5s").
func Format(d time.Duration) string {
	const day = 24 * time.Hour
	for _, u := range []struct {
		d      time.Duration
		suffix string
	}{{7 * day, "w"}, {day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d != 0 && d%u.d == 0 && (u.suffix != "w" || d >= 2*u.d) {
			s := strconv.FormatInt(int64(d/u.d), 10) + u.suffix
			if monthLike(s) {
				s += "in" // "6min": Parse refuses "6m"
			}
			return s
		}
	}
	return d.String()
}

// Value is a flag.Value for an age, with the bare unit of Parse.
type Value struct {
	D    *time.Duration
	Bare time.Duration
}

// String formats the age.
func (v Value) String() string {
	if v.D == nil {
		return ""
	}
	return Format(*v.D)
}

// Set parses an age.
func (v Value) Set(s string) error {
	d, err := Parse(s, v.Bare)
	if err != nil {
		return err
	}
	*v.D = d
	return nil
}

// Type names the flag's value for help texts (pflag).
func (v Value) Type() string { return "age" }
