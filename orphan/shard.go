package orphan

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// KeyRange is a range of stored paths in byte order: Start <= p < End,
// with no upper bound when End is "". The zero value is every path.
// Options.Range limits a Finder to one, which is how a run is split into
// shards that many processes or machines run at once: see [ShardMap].
type KeyRange struct {
	Start string `json:"start"`
	End   string `json:"end,omitempty"`
}

// Contains reports whether p is in the range.
func (r KeyRange) Contains(p string) bool {
	return p >= r.Start && (r.End == "" || p < r.End)
}

// all reports whether the range holds every path.
func (r KeyRange) all() bool { return r.Start == "" && r.End == "" }

// listOptions narrows a listing of dir to the range. storage.List's range
// is inclusive at its end, so callers still drop End itself (Contains).
func (r KeyRange) listOptions(dir string, measure func(string) bool) storage.ListOptions {
	opts := storage.ListOptions{Dir: dir, Measure: measure}
	if !r.all() {
		opts.From, opts.To = r.Start, r.End
		if r.End == "" {
			opts.To = "\xff" // above every valid (UTF-8) path
		}
	}
	return opts
}

// ErrShardMap is returned for a shard map that cannot be used: boundaries
// out of order, or a shard number it does not have.
var ErrShardMap = errors.New("orphan: bad shard map")

// ShardMap splits the key space into len(Boundaries)+1 ranges that are
// disjoint and together cover every path: shard 0 is everything before
// Boundaries[0], shard i is [Boundaries[i-1], Boundaries[i]), and the last
// is everything from the last boundary on. Every worker of a sharded run
// must read the same map (write it once, to a file all of them read).
// Each shard's plan is the single run's plan restricted to its range, and
// the guards that read the references (coverage, empty references)
// decide as in the single run; but the limits (Options.MaxDeletes,
// MaxFraction, MaxBytes) apply to each shard on its own, so where the
// boundaries fall decides which shards a limit refuses, and N shards may
// together delete N times a limit.
type ShardMap struct {
	Boundaries []string `json:"boundaries"`
}

// NewShardMap returns a map of n shards whose boundaries are the
// quantiles of sample, a random sample of the paths (see
// [Finder.SampleReferences]), so that the shards hold about as many
// files each.
func NewShardMap(sample []string, n int) (*ShardMap, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d shards", ErrShardMap, n)
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	s = slices.Compact(s)
	if n > 1 && (len(s) == 0 || s[0] == "") {
		// No boundary can be placed, and an empty one would read as "no
		// upper bound": every shard would be the whole key space.
		return nil, fmt.Errorf("%w: a sample of %d paths cannot split the key space into %d shards", ErrShardMap, len(s), n)
	}
	m := &ShardMap{Boundaries: make([]string, 0, n-1)}
	for i := 1; i < n; i++ {
		// With fewer distinct paths than shards some boundaries repeat,
		// and the shards between them are empty.
		m.Boundaries = append(m.Boundaries, s[i*len(s)/n])
	}
	return m, m.Check()
}

// Shards is the number of shards.
func (m *ShardMap) Shards() int { return len(m.Boundaries) + 1 }

// Check refuses boundaries out of order, and an empty boundary, which as
// a range's End would mean no upper bound, so that the shard before it
// would overlap every shard after it. Equal boundaries are allowed: the
// shard between them is empty.
func (m *ShardMap) Check() error {
	if !slices.IsSorted(m.Boundaries) {
		return fmt.Errorf("%w: boundaries out of order", ErrShardMap)
	}
	if len(m.Boundaries) > 0 && m.Boundaries[0] == "" {
		return fmt.Errorf("%w: an empty boundary", ErrShardMap)
	}
	return nil
}

// Range returns shard i's key range (0-based, as Kubernetes numbers the
// pods of an indexed job).
func (m *ShardMap) Range(i int) (KeyRange, error) {
	if err := m.Check(); err != nil {
		return KeyRange{}, err
	}
	if i < 0 || i >= m.Shards() {
		return KeyRange{}, fmt.Errorf("%w: shard %d of %d", ErrShardMap, i, m.Shards())
	}
	var r KeyRange
	if i > 0 {
		r.Start = m.Boundaries[i-1]
	}
	if i < len(m.Boundaries) {
		r.End = m.Boundaries[i]
	}
	return r, nil
}

// SampleReferences streams the finder's references and returns a uniform
// random sample of k of their valid stored paths (fewer when there are
// fewer), in bounded memory: the input of [NewShardMap]. Reading the
// references is usually far cheaper than listing a large bucket, and the
// referenced files are most of the files.
func (f *Finder) SampleReferences(ctx context.Context, k int) ([]string, error) {
	if k < 1 {
		return nil, nil
	}
	sample := make([]string, 0, k)
	seen := 0
	var forms refForms
	err := f.refs.References(ctx, func(ref string) error {
		f.normalise(ref, &forms) // a sample needs one form
		if len(forms.paths) == 0 {
			return nil
		}
		first := forms.paths[0]
		if seen++; seen%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		switch {
		case len(sample) < k:
			sample = append(sample, first)
		default:
			if j := rand.IntN(seen); j < k {
				sample[j] = first
			}
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	return sample, nil
}
