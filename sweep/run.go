package sweep

import (
	"context"
	"math/rand/v2"
	"time"
)

// Run sweeps now and then every interval (spread by Options.Jitter) until
// ctx is cancelled, passing each report to Options.OnReport. Sweeps never
// overlap. It returns ctx.Err() promptly on cancel and leaves no goroutine
// behind. It panics if every is not positive.
func (s *Sweeper) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		panic("sweep: Run interval must be positive")
	}
	for {
		rep, err := s.Sweep(ctx)
		if s.opts.OnReport != nil {
			s.opts.OnReport(rep, err)
		}
		wait := every
		if s.opts.Jitter > 0 {
			wait += time.Duration((rand.Float64()*2 - 1) * s.opts.Jitter * float64(every))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
