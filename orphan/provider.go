package orphan

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
)

// Provider streams the stored paths that records reference. References
// calls fn once per path (duplicates are fine), never concurrently, and
// returns nil only after
// the whole set was streamed: an error, a partial stream or a cancelled
// ctx must be returned as an error, which makes the finder delete nothing.
type Provider interface {
	References(ctx context.Context, fn func(path string) error) error
}

// ProviderFunc adapts a function to [Provider].
type ProviderFunc func(ctx context.Context, fn func(path string) error) error

// References calls f.
func (f ProviderFunc) References(ctx context.Context, fn func(string) error) error { return f(ctx, fn) }

// Paths returns a Provider of a fixed list of paths.
func Paths(paths ...string) Provider {
	return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		for _, p := range paths {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// Lines returns a Provider of the non-empty lines that open returns, one
// path per line. Only the line ending (LF or CRLF) and a leading
// byte-order mark are removed: a stored path may start with a space, a
// no-break space or an ideographic space, so nothing else is trimmed
// (the finder drops trailing ASCII spaces itself, which no stored path
// has). open is called on every References call, so the provider can be
// streamed more than once; a read error is returned, so a truncated read
// deletes nothing.
func Lines(open func() (io.ReadCloser, error)) Provider {
	return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 0; sc.Scan(); n++ {
			if n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			line := strings.TrimSuffix(sc.Text(), "\r")
			if n == 0 {
				line = strings.TrimPrefix(line, "\ufeff") // a byte-order mark
			}
			if line != "" {
				if err := fn(line); err != nil {
					return err
				}
			}
		}
		return sc.Err()
	})
}

// File returns a Provider of the lines of the named file.
func File(name string) Provider {
	return Lines(func() (io.ReadCloser, error) { return os.Open(name) })
}

// Combine returns a Provider that streams every provider in turn. It fails
// if any of them fails.
func Combine(providers ...Provider) Provider {
	return ProviderFunc(func(ctx context.Context, fn func(string) error) error {
		for _, p := range providers {
			if err := p.References(ctx, fn); err != nil {
				return err
			}
		}
		return nil
	})
}
