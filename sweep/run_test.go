package sweep_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/sweep"
)

// TestMain stops the S3 server the S3 backend starts, then checks that no
// goroutine is left (Run, the parallel listing, batch deletes).
func TestMain(m *testing.M) { s3test.Main(m) }

// Run sweeps once per interval, never overlapping, and returns promptly on
// cancel. synctest's fake clock makes the hour pass instantly.
func TestRunOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := afero.NewMemMapFs()
		var runs []time.Time
		s := sweep.New(fsys, sweep.Options{
			Rules:    []sweep.Rule{{Glob: "**", MaxAge: time.Hour}},
			Jitter:   -1,
			OnReport: func(*sweep.Report, error) { runs = append(runs, time.Now()) },
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		start := time.Now()
		go func() { done <- s.Run(ctx, 10*time.Minute) }()
		time.Sleep(time.Hour + time.Minute)
		synctest.Wait()
		assert.Len(t, runs, 7, "one run at start, then one per 10 minutes")
		for i, r := range runs {
			assert.Equal(t, time.Duration(i)*10*time.Minute, r.Sub(start))
		}
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		assert.Equal(t, start.Add(time.Hour+time.Minute), time.Now(), "Run returned at once on cancel")
	})
}

func TestRunJitterStaysInBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs []time.Time
		s := sweep.New(afero.NewMemMapFs(), sweep.Options{
			Rules:    []sweep.Rule{{Glob: "**", MaxAge: time.Hour}},
			Jitter:   0.5,
			OnReport: func(*sweep.Report, error) { runs = append(runs, time.Now()) },
		})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx, time.Minute) }()
		time.Sleep(time.Hour)
		cancel()
		<-done
		for i := 1; i < len(runs); i++ {
			gap := runs[i].Sub(runs[i-1])
			assert.GreaterOrEqual(t, gap, 30*time.Second)
			assert.LessOrEqual(t, gap, 90*time.Second)
		}
		assert.Greater(t, len(runs), 40)
	})
}
