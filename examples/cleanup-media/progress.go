package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mediaclean/mediaclean/orphan"
)

// progress shows what the run is doing on stderr while stderr is a
// terminal (or with --progress always): the phase, a count with its rate,
// and a bar where the total is known (the deletions of a plan). Each
// phase's line is cleared when the next starts, and the last at the end:
// nothing of it stays on the screen, and nothing reaches a pipe or a log.
type progress struct {
	w  io.Writer
	on bool

	mu     sync.Mutex
	bar    *progressbar.ProgressBar
	refs   atomic.Int64 // references read, shown in the phase that reads them
	closed bool
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

func newProgress(stderr io.Writer, mode string) *progress {
	on := mode == "always" || (mode == "auto" && isTerminal(stderr))
	return &progress{w: stderr, on: on}
}

// phase ends the current line and starts one for name, with a bar when
// total is known (> 0) and a running count otherwise.
func (p *progress) phase(name string, total int64, unit string) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.clear()
	if total <= 0 {
		total = -1
	}
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(total > 0), // "12/40"; "12" when unknown
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionFullWidth(),
		progressbar.OptionUseANSICodes(true),
	)
}

// add counts n more units of the current phase.
func (p *progress) add(n int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.closed {
		_ = p.bar.Add(n)
	}
}

// reference counts one reference read, shown as the phase's description.
func (p *progress) reference() {
	n := p.refs.Add(1)
	if !p.on || n%1000 != 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.closed {
		p.bar.Describe("reading references: " + strconv.FormatInt(n, 10))
	}
}

// clear removes the current line; p.mu is held.
func (p *progress) clear() {
	if p.bar != nil {
		_ = p.bar.Finish()
		_ = p.bar.Clear()
		p.bar = nil
	}
}

// stop clears the line for good: output that follows starts clean.
func (p *progress) stop() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.clear()
		p.closed = true
	}
}

// counting wraps refs so that each reference read shows on the progress
// line; refs itself when nothing is shown.
func (p *progress) counting(refs orphan.Provider) orphan.Provider {
	if !p.on {
		return refs
	}
	return countingProvider{refs, p}
}

type countingProvider struct {
	refs orphan.Provider
	p    *progress
}

func (c countingProvider) References(ctx context.Context, fn func(string) error) error {
	return c.refs.References(ctx, func(path string) error {
		c.p.reference()
		return fn(path)
	})
}
