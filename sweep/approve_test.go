package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/sweep"
)

var errNo = errors.New("not this plan")

// A refused plan deletes nothing, on every backend, in a real run: each
// planned file is kept as refused, with an event, and the hook's error
// comes back matchable.
func TestApproveRefusalDeletesNothing(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for i := range 12 {
			put(t, fsys, fmt.Sprintf("qr/%d/%02d.png", i%3, i), 10+i, time.Duration(i)*day)
		}
		before := files(t, fsys)
		var asked []string
		var refused []string
		s := sweep.New(fsys, sweep.Options{
			Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: 5 * day}}, Now: clock, RemoveEmptyDirs: true,
			Approve: func(_ context.Context, paths []string) error {
				asked = slices.Clone(paths)
				return errNo
			},
			OnEvent: func(e sweep.Event) {
				require.NotEqual(t, sweep.ActionDelete, e.Action, "deleted %s", e.Path)
				if e.Reason == sweep.KeptRefused {
					refused = append(refused, e.Path)
				}
			},
		})
		rep, err := s.Sweep(t.Context())
		require.ErrorIs(t, err, errNo)
		assert.Equal(t, before, files(t, fsys), "a refused sweep deleted something")
		slices.Sort(asked)
		slices.Sort(refused)
		assert.Len(t, asked, 6, "files older than 5 days: 6 to 11")
		assert.Equal(t, asked, refused, "every planned file is kept as refused, with an event")
		assert.Equal(t, len(asked), rep.Kept[sweep.KeptRefused].Files)
		assert.Zero(t, rep.Deleted.Files)
		assert.Zero(t, rep.DirsRemoved)
	})
}

// The hook sees exactly the plan the sweep applies: what an approved run
// deletes (or a dry run would) is what the hook was given, less what Refs
// keeps, over random trees, rules, budgets and references.
func TestApproveSeesThePlanApplied(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fsys := afero.NewMemMapFs()
		for i := range 20 + rng.IntN(40) {
			put(t, fsys, fmt.Sprintf("d%d/%d.png", rng.IntN(4), i), 1+rng.IntN(100), time.Duration(rng.IntN(20*24))*time.Hour)
		}
		referenced := map[string]bool{}
		for _, p := range files(t, fsys) {
			if rng.IntN(4) == 0 {
				referenced[p] = true
			}
		}
		opts := sweep.Options{
			Rules: []sweep.Rule{{Glob: "d0/**", KeepLatest: 1 + rng.IntN(3)}, {Glob: "**", MaxAge: time.Duration(1+rng.IntN(10)) * day}},
			Now:   clock, DryRun: rng.IntN(2) == 0,
			Refs: filefield.RefCheckerFunc(func(_ context.Context, p string) (bool, error) { return referenced[p], nil }),
		}
		if rng.IntN(2) == 0 {
			opts.Budget.Files = 1 + rng.IntN(10)
		}
		var asked, acted []string
		opts.Approve = func(_ context.Context, paths []string) error { asked = slices.Clone(paths); return nil }
		opts.OnEvent = func(e sweep.Event) {
			if e.Action == sweep.ActionDelete || e.Action == sweep.ActionWouldDelete {
				acted = append(acted, e.Path)
			}
		}
		rep, err := sweep.New(fsys, opts).Sweep(t.Context())
		require.NoError(t, err, "seed %d", seed)
		var want []string
		for _, p := range asked {
			if !referenced[p] {
				want = append(want, p)
			}
		}
		slices.Sort(want)
		slices.Sort(acted)
		assert.Equal(t, want, acted, "seed %d (dry run %v)", seed, opts.DryRun)
		assert.Equal(t, len(acted), rep.Deleted.Files, "seed %d", seed)
		assert.Zero(t, rep.Kept[sweep.KeptRefused].Files, "seed %d", seed)
	}
}

// A listing that fails never reaches the hook: it judges only a whole
// plan.
func TestApproveNotAskedAboutAPartialPlan(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	put(t, fsys, "qr/a.png", 1, 10*day)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, err := sweep.New(fsys, sweep.Options{
		Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: day}}, Now: clock,
		Approve: func(context.Context, []string) error { called = true; return nil },
	}).Sweep(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, called, "the hook saw a plan from a cancelled listing")
	assert.Equal(t, []string{"qr/a.png"}, files(t, fsys))
}

// Approve gets the planned paths in byte order, whatever order the listing
// gave them in: a walk that lists directory "a" before file "a-b" gives
// "a/x" first, though "a-b" sorts before it.
func TestApproveGetsPathsInByteOrder(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		for _, p := range []string{"qr/a/x.png", "qr/a-b.png", "qr/a.b.png", "qr/a/y/z.png", "qr/a+.png", "qr/é.png", "qr/b.png"} {
			put(t, fsys, p, 10, 10*day)
		}
		var asked []string
		s := sweep.New(fsys, sweep.Options{
			Rules: []sweep.Rule{{Glob: "qr/**", MaxAge: 5 * day}}, Now: clock, DryRun: true,
			Approve: func(_ context.Context, paths []string) error {
				asked = slices.Clone(paths)
				return nil
			},
		})
		_, err := s.Sweep(t.Context())
		require.NoError(t, err)
		assert.Len(t, asked, 7)
		assert.True(t, slices.IsSorted(asked), "%q", asked)
	})
}
