package orphan

import (
	"context"
	"fmt"
	"hash/maphash"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// maxForms is the most stored paths one reference can name.
const maxForms = 6

// normalise returns the stored paths ref may name: ref itself,
// cleaned, after the first matching StripPrefixes entry; without trailing
// spaces, which no stored path has (a CHAR(n) column pads with them); also
// without leading spaces, which a stored path may have, so both are kept;
// and for a reference written as a URL path, with a query, a fragment or
// %-escapes ("x.jpg?v=3", "my%20photo.jpg"), also that path without its
// query and fragment, escaped and unescaped. Matching more paths can only
// keep more files, the safe direction. Paths that cannot be stored paths
// are left out; n == 0 means none could.
func (f *Finder) normalise(ref string) (paths [maxForms]string, n int) {
	ref = strings.TrimRight(ref, " ")
	add := func(r string) {
		p, err := storage.Clean(r)
		if err == nil && !slices.Contains(paths[:n], p) && n < maxForms {
			paths[n] = p
			n++
		}
	}
	for i, r := range [2]string{ref, strings.TrimLeft(ref, " ")} {
		if i == 1 && r == ref {
			break
		}
		for _, pre := range f.opts.StripPrefixes {
			if strings.HasPrefix(r, pre) {
				r = r[len(pre):]
				break
			}
		}
		add(r)
		if strings.ContainsAny(r, "?#%") {
			u := r
			if i := strings.IndexAny(u, "?#"); i >= 0 {
				u = u[:i]
			}
			add(u)
			if v, err := url.PathUnescape(u); err == nil {
				add(v)
			}
		}
	}
	return paths, n
}

// coverKey returns the directory of p that the coverage guard counts
// references and files in: its scan directory's subdirectory
// CoverageDepth levels down (or p's own directory, when shallower), and
// ok false for a path outside every scan directory.
func (f *Finder) coverKey(p string) (key string, ok bool) {
	root := ""
	if len(f.opts.Dirs) > 0 {
		for _, d := range f.opts.Dirs {
			if strings.HasPrefix(p, d+"/") {
				root = d
				ok = true
				break
			}
		}
		if !ok {
			return "", false
		}
	}
	rest := p
	if root != "" {
		rest = p[len(root)+1:]
	}
	end := 0
	for range f.opts.CoverageDepth {
		i := strings.IndexByte(rest[end:], '/')
		if i < 0 {
			break
		}
		end += i + 1
	}
	switch {
	case end == 0 && root == "":
		return ".", true
	case end == 0:
		return root, true
	case root == "":
		return rest[:end-1], true
	}
	return root + "/" + rest[:end-1], true
}

// cpuWorkers is how many goroutines share CPU-bound work (hashing
// references, looking candidates up): one per CPU, at most eight, since
// each holds its own buffers.
func cpuWorkers() int { return min(runtime.GOMAXPROCS(0), 8) }

// refCounts are what loading the references counted.
type refCounts struct {
	n, invalid   int
	missing      []string // up to maxListed, sorted
	missingCount int
	covered      map[string]bool // coverKey of every valid reference
}

// loadRefs streams every reference into a set. Given stored, it also
// counts the references that are not in it and lists some. The
// provider runs on the calling goroutine and hands references over in
// batches; one worker per CPU (up to eight) normalises and hashes them, so
// that work overlaps the provider's own (reading lines, scanning rows). Any
// provider error is wrapped in ErrProvider.
func (f *Finder) loadRefs(ctx context.Context, stored *pathSet) (*pathSet, refCounts, error) {
	const batchLen = 1024
	type worker struct {
		hashes
		invalid, missingCount int
		missing               []string
		covered               map[string]bool
	}
	seed := maphash.MakeSeed()
	workers := make([]worker, cpuWorkers())
	batches := make(chan []string, len(workers))
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.seed = seed
		w.covered = map[string]bool{}
		wg.Go(func() {
			// Each form of each reference of a batch, with the reference
			// it came from; the stored-file lookups are done per batch.
			var forms []string
			var owner []int32
			var hs []uint64
			var found []bool
			last := "\x00" // the last cover key added, with its "/"
			for batch := range batches {
				forms, owner = forms[:0], owner[:0]
				for ri, ref := range batch {
					paths, n := f.normalise(ref)
					if n == 0 {
						w.invalid++
						continue
					}
					for _, p := range paths[:n] {
						w.add(p)
						if !strings.HasPrefix(p, last) {
							if k, ok := f.coverKey(p); ok {
								w.covered[k] = true
								last = k + "/"
							}
						}
						if stored != nil {
							forms, owner = append(forms, p), append(owner, int32(ri))
						}
					}
				}
				if stored == nil {
					continue
				}
				hs, found = hs[:0], slices.Grow(found[:0], len(forms))[:len(forms)]
				for _, p := range forms {
					hs = append(hs, maphash.String(stored.seed, p))
				}
				stored.hasHashes(hs, found)
				// A reference is missing when none of its forms exists.
				for k := 0; k < len(forms); {
					ri, exists := owner[k], false
					first := forms[k]
					for ; k < len(forms) && owner[k] == ri; k++ {
						exists = exists || found[k]
					}
					if !exists {
						if w.missingCount++; len(w.missing) < maxListed {
							w.missing = append(w.missing, first)
						}
					}
				}
			}
		})
	}
	// The workers end when batches closes: also if the provider panics.
	finish := sync.OnceFunc(func() { close(batches); wg.Wait() })
	defer finish()
	var counts refCounts
	batch := make([]string, 0, batchLen)
	err := f.refs.References(ctx, func(ref string) error {
		if counts.n++; counts.n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if batch = append(batch, ref); len(batch) == batchLen {
			batches <- batch
			batch = make([]string, 0, batchLen)
		}
		return nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if len(batch) > 0 {
		batches <- batch // on an error too: the set is dropped then anyway
	}
	finish()
	if err != nil && f.guards.provider {
		return nil, refCounts{}, fmt.Errorf("%w: %w", ErrProvider, err)
	}
	parts := make([]*hashes, len(workers))
	counts.covered = map[string]bool{}
	for i := range workers {
		w := &workers[i]
		parts[i] = &w.hashes
		counts.invalid += w.invalid
		counts.missingCount += w.missingCount
		counts.missing = append(counts.missing, w.missing...)
		for k := range w.covered {
			counts.covered[k] = true
		}
	}
	slices.Sort(counts.missing)
	counts.missing = slices.Clip(counts.missing[:min(len(counts.missing), maxListed)])
	return newPathSet(seed, parts...), counts, nil
}

// uncovered returns, sorted, the cover keys of orphans that no valid
// reference points into, leaving out orphans declared in
// Options.Unreferenced.
func (f *Finder) uncovered(orphans []Orphan, covered map[string]bool) []string {
	if !f.guards.coverage {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	lastDir := "\x00"
	for _, o := range orphans {
		if storage.MatchAny(f.opts.Unreferenced, o.Path) {
			continue
		}
		if d := storage.Dir(o.Path); d != lastDir {
			lastDir = d
		} else {
			continue // decided with the file before: plans are sorted
		}
		k, ok := f.coverKey(o.Path)
		if !ok || covered[k] || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
