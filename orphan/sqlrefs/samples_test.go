package sqlrefs_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

// Samples keeps a sample of each query's paths (up to SampleLen), from
// the last complete run: a check of a few against storage tells a wrong
// column. A failed run keeps the last complete run's.
func TestSamplesPerQuery(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	all := map[string]bool{"a.jpg": true, "b.jpg": true}
	for i := range 1000 {
		p := fmt.Sprintf("p%04d.jpg", i)
		all[p] = true
		_, err := db.Exec(`INSERT INTO users VALUES (?, NULL)`, p)
		require.NoError(t, err)
	}
	p := sqlrefs.NewWithOptions(db, sqlrefs.Options{AllowEmpty: true}, "SELECT picture FROM users ORDER BY picture", "SELECT signature FROM users", "SELECT picture FROM users WHERE picture = 'x'")
	assert.Nil(t, p.Samples())
	_, err := collect(t.Context(), p)
	require.NoError(t, err)
	s := p.Samples()
	require.Len(t, s, 3)
	require.Len(t, s[0], sqlrefs.SampleLen)
	late := 0
	for _, v := range s[0] {
		assert.True(t, all[v], v)
		if v > "p0100" {
			late++
		}
	}
	assert.Positive(t, late, "a sample of the whole stream, not its first rows: %v", s[0])
	assert.Equal(t, []string{"s.png"}, s[1])
	assert.Empty(t, s[2])
	s[1][0] = "changed"
	assert.Equal(t, []string{"s.png"}, p.Samples()[1], "a copy")
	_, err = db.Exec(`DROP TABLE users`)
	require.NoError(t, err)
	_, err = collect(t.Context(), p)
	require.Error(t, err)
	assert.Equal(t, []string{"s.png"}, p.Samples()[1])
}

// Sample keeps every value while fewer than k came, and a uniform sample
// after: over many streams each of 10 values lands in a sample of 2
// about a fifth of the time.
func TestSampleIsUniform(t *testing.T) {
	t.Parallel()
	hits := map[string]int{}
	const rounds = 20000
	for range rounds {
		var s []string
		for n := 1; n <= 10; n++ {
			s = sqlrefs.Sample(s, 2, n, fmt.Sprint(n))
		}
		require.Len(t, s, 2)
		for _, v := range s {
			hits[v]++
		}
	}
	for v, h := range hits {
		assert.InDelta(t, 0.2, float64(h)/rounds, 0.02, v)
	}
	assert.Len(t, hits, 10)
}
