package sqlrefs_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
)

// Firsts keeps each query's first paths (up to FirstsLen), in row order,
// from the last complete run: a check of a few against storage tells a
// wrong column. A failed run keeps the last complete run's.
func TestFirstsPerQuery(t *testing.T) {
	t.Parallel()
	db := openDB(t)
	for i := range 100 {
		_, err := db.Exec(`INSERT INTO users VALUES (?, NULL)`, fmt.Sprintf("p%03d.jpg", i))
		require.NoError(t, err)
	}
	p := sqlrefs.New(db, "SELECT picture FROM users ORDER BY picture", "SELECT signature FROM users", "SELECT picture FROM users WHERE picture = 'x'")
	assert.Nil(t, p.Firsts())
	_, err := collect(t.Context(), p)
	require.NoError(t, err)
	f := p.Firsts()
	require.Len(t, f, 3)
	require.Len(t, f[0], sqlrefs.FirstsLen)
	assert.Equal(t, []string{"a.jpg", "b.jpg", "p000.jpg"}, f[0][:3])
	assert.Equal(t, "p061.jpg", f[0][sqlrefs.FirstsLen-1])
	assert.Equal(t, []string{"s.png"}, f[1])
	assert.Empty(t, f[2])
	f[1][0] = "changed"
	assert.Equal(t, []string{"s.png"}, p.Firsts()[1], "a copy")
	_, err = db.Exec(`DROP TABLE users`)
	require.NoError(t, err)
	_, err = collect(t.Context(), p)
	require.Error(t, err)
	assert.Equal(t, []string{"s.png"}, p.Firsts()[1])
}
