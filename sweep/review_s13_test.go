package sweep_test

// Review, session 13: future-dated files under KeepLatest.

import (
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/sweep"
)

// Loss (found in a review of session 13; fixed) (KeepLatest-only rule, the seed's "one QR code per user"). Two
// app servers write a user's QR codes; one runs 10 minutes ahead. The
// fast server wrote ahead.png (dated in the future); the other then
// regenerated the code, current.png, which the row now holds. KeepLatest
// ranks by time, so ahead.png takes the one "latest" slot and current.png,
// the newest real file, falls to decideAge: MaxAge 0 means any age, it
// is not in the future, so it is deleted. d355f11 made the future file
// young but still lets it count toward KeepLatest; a future-dated file
// should not displace the real latest ones.
func TestS13ReviewFutureFileDisplacesRealLatest(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr/1/ahead.png", 1, -10*time.Minute)
		put(t, fsys, "qr/1/current.png", 1, time.Minute)
		_, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", KeepLatest: 1}}, Now: clock}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Contains(t, files(t, fsys), "qr/1/current.png", "the newest real file was deleted")
	})
}

// Held. A future-dated file alone, and a future-dated file with MaxAge:
// nothing goes.
func TestS13ReviewFutureFileKeptWithMaxAge(t *testing.T) {
	s13Backends(t, func(t *testing.T, fsys afero.Fs, _ string) {
		put(t, fsys, "qr/1/ahead.png", 1, -10*time.Minute)
		put(t, fsys, "qr/1/current.png", 1, time.Minute)
		put(t, fsys, "qr/2/ahead.png", 1, -day)
		_, err := sweep.New(fsys, sweep.Options{Rules: []sweep.Rule{{Glob: "qr/**", KeepLatest: 1, MaxAge: time.Hour}}, Now: clock}).Sweep(t.Context())
		require.NoError(t, err)
		assert.Equal(t, []string{"qr/1/ahead.png", "qr/1/current.png", "qr/2/ahead.png"}, files(t, fsys))
	})
}
