package sweep_test

import (
	"context"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/sweep"
)

// TestReviewShadowedRuleWithManyBraceAlternativesIsRefused: covers()
// expanded the later glob's braces first and, past 64 alternatives,
// answered "cannot tell". A receipts rule written per year and month
// (10 x 12 = 120 alternatives) behind "**/*.pdf" was accepted and never
// applied: its receipts went at 30 days, not 10 years.
func TestReviewShadowedRuleWithManyBraceAlternativesIsRefused(t *testing.T) {
	t.Parallel()
	later := "receipts/{2015,2016,2017,2018,2019,2020,2021,2022,2023,2024}/{01,02,03,04,05,06,07,08,09,10,11,12}/*.pdf"
	for _, first := range []string{"**/*.pdf", "**", "receipts/**"} {
		opts := sweep.Options{Rules: []sweep.Rule{
			{Glob: first, MaxAge: 30 * day},
			{Glob: later, MaxAge: 3650 * day},
		}}
		assert.Error(t, sweep.CheckOptions(opts), "%q then %q: the second rule never applies", first, later)
	}
	// And what that costs: a 60-day receipt is deleted.
	fsys := afero.NewMemMapFs()
	put(t, fsys, "receipts/2020/03/r1.pdf", 10, 60*day)
	func() {
		defer func() { recover() }()
		s := sweep.New(fsys, sweep.Options{Now: clock, Rules: []sweep.Rule{
			{Glob: "**/*.pdf", MaxAge: 30 * day},
			{Glob: later, MaxAge: 3650 * day},
		}})
		s.Sweep(context.Background())
	}()
	assert.Contains(t, files(t, fsys), "receipts/2020/03/r1.pdf", "a receipt under a 3650-day rule went at 30 days")
}

// TestReviewShadowedRuleUnderDir: with Options.Dir the sweep lists only
// that directory, so a later rule whose every path inside Dir an earlier
// rule matches never applies; the check ignored Dir and accepted it.
func TestReviewShadowedRuleUnderDir(t *testing.T) {
	t.Parallel()
	opts := sweep.Options{Dir: "receipts", Rules: []sweep.Rule{
		{Glob: "receipts/**", MaxAge: 30 * day},
		{Glob: "**/*.pdf", MaxAge: 3650 * day},
	}}
	assert.Error(t, sweep.CheckOptions(opts), "under Dir receipts, the second rule never applies")
}

// TestReviewRuleThatAppliesIsAccepted: pairs where a real path reaches
// the later rule (named in the case), which the check refused because no
// sample value of '*' started with a digit (user ids) and no sample of a
// trailing "/**" was a bare segment.
func TestReviewRuleThatAppliesIsAccepted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ first, later, reaches string }{
		// Stray folders (not a numeric owner id) go after a day; each
		// owner's QR codes keep the newest (the README's rule).
		{"qr_codes/[!0-9]*/**", "qr_codes/*/*.png", "qr_codes/42/a.png"},
		{"uploads/[!0-9]*", "uploads/*", "uploads/42"},
		{"**/[a-z]*", "avatars/**", "avatars/User1.png"},
	} {
		ok1, _ := doublestarMatch(c.first, c.reaches)
		ok2, _ := doublestarMatch(c.later, c.reaches)
		if ok1 || !ok2 {
			t.Fatalf("bad case %v", c)
		}
		opts := sweep.Options{Rules: []sweep.Rule{
			{Glob: c.first, MaxAge: day},
			{Glob: c.later, KeepLatest: 1},
		}}
		assert.NoError(t, sweep.CheckOptions(opts), "%q then %q: %q reaches the second rule", c.first, c.later, c.reaches)
	}
}

var doublestarMatch = doublestar.Match
