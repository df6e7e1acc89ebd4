package orphan

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// randomRecord makes records that share long prefixes, repeat, and hold
// the bytes at either end of the range, as sorted forms and multi-form
// records do (NUL, then binary).
func randomRecord(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString([]string{"", "a/", "a/b/", "a-b/", "a.b/", "k/0000000"}[r.IntN(6)])
	for range r.IntN(12) {
		b.WriteByte([]byte{0, 1, '-', '.', '/', '0', '9', 'a', 'z', 0x80, 0xff}[r.IntN(11)])
	}
	return b.String()
}

func sortAll(t *testing.T, ctx context.Context, dir string, in []string) ([]string, error) {
	t.Helper()
	s := newExtSorter(ctx, dir)
	defer s.close()
	for _, rec := range in {
		if err := s.add(ctx, rec); err != nil {
			s.sorted()
			_, _, nerr := s.next()
			return nil, errors.Join(err, nerr)
		}
	}
	s.sorted()
	return drain(s)
}

// drain reads a sorter to its end.
func drain(s *extSorter) ([]string, error) {
	var out []string
	for {
		rec, ok, err := s.next()
		if err != nil || !ok {
			return out, err
		}
		out = append(out, rec)
	}
}

// TestExtSorterSortsAsSliceSort checks the external sort against
// slices.Sort around its run boundaries, with runs spilled to disk and
// merged with the one kept in memory; afterwards no file and no goroutine
// is left.
func TestExtSorterSortsAsSliceSort(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewPCG(1, 3))
	for _, n := range []int{0, 1, 2, 1000, sortChunk - 1, sortChunk, sortChunk + 1, 3*sortChunk + 17} {
		dir := t.TempDir()
		in := make([]string, n)
		for i := range in {
			in[i] = randomRecord(r)
		}
		out, err := sortAll(t, t.Context(), dir, in)
		require.NoError(t, err, n)
		require.Equal(t, slices.Sorted(slices.Values(in)), out, n)
		left, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Empty(t, left, "%d: temporary files left", n)
	}
}

// TestExtSorterBoundsRunsByBytes feeds records so long that a run ends at
// sortChunkBytes, not at sortChunk records.
func TestExtSorterBoundsRunsByBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 4))
	s := newExtSorter(t.Context(), t.TempDir())
	defer s.close()
	var in []string
	for range 400 {
		rec := strings.Repeat(string(rune('a'+r.IntN(26))), 100<<10) + randomRecord(r)
		in = append(in, rec)
		require.NoError(t, s.add(t.Context(), rec))
	}
	s.sorted()
	assert.GreaterOrEqual(t, len(s.runs), 4, "runs of at most %d bytes", sortChunkBytes)
	out, err := drain(s)
	require.NoError(t, err)
	require.Equal(t, slices.Sorted(slices.Values(in)), out)
}

// TestLoserTreeMergesAnyNumberOfRuns merges random sorted runs in memory,
// some empty, and checks the result against one sort of everything.
func TestLoserTreeMergesAnyNumberOfRuns(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for k := 1; k <= 40; k++ {
		var all []string
		srcs := make([]*runReader, k)
		for i := range srcs {
			run := make([]string, r.IntN(30))
			for j := range run {
				run[j] = randomRecord(r)
			}
			slices.Sort(run)
			all = append(all, run...)
			srcs[i] = &runReader{mem: run, left: len(run)}
			require.NoError(t, srcs[i].advance())
		}
		var tree loserTree
		tree.build(srcs)
		var out []string
		for w := tree.winner(); w != nil; w = tree.winner() {
			out = append(out, w.head)
			require.NoError(t, w.advance())
			tree.replay()
		}
		slices.Sort(all)
		require.Equal(t, all, out, "%d runs", k)
	}
}

// TestRunReaderRefusesDamagedRuns: a run whose data ends early, or whose
// length prefix is absurd, is an error, never a short or wrong record.
func TestRunReaderRefusesDamagedRuns(t *testing.T) {
	good := binary.AppendUvarint(nil, 5)
	good = append(good, "a/b.c"...)
	for name, data := range map[string][]byte{
		"no data":         nil,
		"cut record":      good[:4],
		"cut length":      {0x80},
		"huge length":     binary.AppendUvarint(nil, maxRecord+1),
		"long past a buf": append(binary.AppendUvarint(nil, 10_000), make([]byte, 5000)...),
	} {
		rr := &runReader{r: bufio.NewReaderSize(bytes.NewReader(data), minRunBuffer), left: 1}
		assert.Error(t, rr.advance(), name)
	}
	rr := &runReader{r: bufio.NewReaderSize(bytes.NewReader(good), minRunBuffer), left: 1}
	require.NoError(t, rr.advance())
	assert.Equal(t, "a/b.c", rr.head)
	require.NoError(t, rr.advance())
	assert.False(t, rr.ok)
}

// TestExtSorterFailsClosed: an unusable temporary directory fails even a
// small sort; a cancelled context stops adding and reading; the order
// check refuses a record before the last one. Nothing is left running.
func TestExtSorterFailsClosed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	file := t.TempDir() + "/file"
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := sortAll(t, t.Context(), file+"/dir", []string{"b", "a"})
	require.Error(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	in := make([]string, 5*sortChunk)
	for i := range in {
		in[i] = "x"
	}
	cancel()
	_, err = sortAll(t, ctx, t.TempDir(), in)
	require.ErrorIs(t, err, context.Canceled)

	s := newExtSorter(t.Context(), t.TempDir())
	defer s.close()
	for _, rec := range []string{"a", "c"} {
		require.NoError(t, s.add(t.Context(), rec))
	}
	s.sorted()
	rec, ok, err := s.next()
	require.True(t, ok)
	require.NoError(t, err)
	assert.Equal(t, "a", rec)
	s.last = "d" // as if a record after "c" had come first
	_, ok, err = s.next()
	require.ErrorIs(t, err, storage.ErrUnsorted)
	assert.False(t, ok)
	_, _, err = s.next()
	require.ErrorIs(t, err, storage.ErrUnsorted, "an error stays")
}

// TestEntryRecordsRoundTrip encodes listing entries as sort records and
// back, and checks that records sort as their paths do; a path with a NUL
// is refused rather than cut.
func TestEntryRecordsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	var entries []storage.Entry
	var recs []string
	for i := range 2000 {
		e := storage.Entry{
			Path: strings.ReplaceAll(randomRecord(r), "\x00", "") + strconv.Itoa(i),
			Size: r.Int64N(1 << 40), Type: []fs.FileMode{0, fs.ModeSymlink, fs.ModeNamedPipe}[r.IntN(3)],
			ETag: []string{"", `"0123456789abcdef0123456789abcdef"`, `"x-3"`}[r.IntN(3)],
		}
		switch r.IntN(4) {
		case 1:
			e.ModTime = time.Unix(0, r.Int64N(1<<62)-1<<61)
		case 2:
			e.ModTime = time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9)) // far from 1970
		case 3:
			e.ModTime = time.Unix(r.Int64N(1<<40)-1<<39, r.Int64N(1e9)).UTC()
		}
		rec, err := appendEntry(nil, e)
		require.NoError(t, err)
		got, err := parseEntry(string(rec))
		require.NoError(t, err)
		require.True(t, e.ModTime.Equal(got.ModTime), "%s, %s", e.ModTime, got.ModTime)
		require.Equal(t, e.ModTime.IsZero(), got.ModTime.IsZero())
		got.ModTime = e.ModTime // the same instant, maybe in another location
		require.Equal(t, e, got)
		entries, recs = append(entries, e), append(recs, string(rec))
	}
	slices.Sort(recs)
	slices.SortFunc(entries, func(a, b storage.Entry) int { return strings.Compare(a.Path, b.Path) })
	for i, rec := range recs {
		e, err := parseEntry(rec)
		require.NoError(t, err)
		require.Equal(t, entries[i].Path, e.Path)
	}
	_, err := appendEntry(nil, storage.Entry{Path: "a\x00b"})
	require.ErrorIs(t, err, storage.ErrUnsafePath)
	_, err = parseEntry("a/b")
	require.Error(t, err)
	_, err = parseEntry("a/b\x00short")
	require.Error(t, err)
}

// TestExtSorterWriteFailureFailsClosed: a run that cannot be written (a
// full disk; here a closed file) stops the sort with an error, whichever
// spiller meets it, and nothing is given back as sorted.
func TestExtSorterWriteFailureFailsClosed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newExtSorter(t.Context(), t.TempDir())
	defer s.close()
	require.NoError(t, s.file.Close()) // every write now fails
	var err error
	for i := 0; i < 10*sortChunk && err == nil; i++ {
		err = s.add(t.Context(), strconv.Itoa(i))
	}
	require.ErrorIs(t, err, errSortStopped, "adding stops once a run failed")
	require.ErrorIs(t, err, os.ErrClosed, "and says why")
	s.sorted()
	_, ok, err := s.next()
	require.ErrorIs(t, err, os.ErrClosed)
	assert.False(t, ok)
}

// TestExtSorterReadAfterCloseFails: reading a closed sorter, or one whose
// input has not ended, is an error, never a clean end of the records.
func TestExtSorterReadAfterCloseFails(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newExtSorter(t.Context(), t.TempDir())
	for i := range 3*sortChunk + 5 {
		require.NoError(t, s.add(t.Context(), strconv.Itoa(i)))
	}
	s.sorted()
	for range 1500 { // into the second batch
		_, ok, err := s.next()
		require.True(t, ok)
		require.NoError(t, err)
	}
	s.close()
	_, ok, err := s.next()
	require.ErrorIs(t, err, errSortStopped)
	assert.False(t, ok)

	early := newExtSorter(t.Context(), t.TempDir())
	defer early.close()
	require.NoError(t, early.add(t.Context(), "a"))
	_, ok, err = early.next()
	require.Error(t, err)
	assert.False(t, ok)
}

// TestExtSorterMergesInTwoLevels: with more runs than one merge may read
// (maxFanIn, lowered here from 1024), the smallest runs are merged first,
// no more of them than needed, and the result is still exactly
// slices.Sort's; nothing is left behind.
func TestExtSorterMergesInTwoLevels(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(n int) { maxFanIn = n }(maxFanIn)
	maxFanIn = 3
	r := rand.New(rand.NewPCG(9, 9))
	dir := t.TempDir()
	in := make([]string, 10*sortChunk+123)
	for i := range in {
		in[i] = randomRecord(r)
	}
	s := newExtSorter(t.Context(), dir)
	for _, rec := range in {
		require.NoError(t, s.add(t.Context(), rec))
	}
	s.sorted()
	require.LessOrEqual(t, len(s.runs), maxFanIn, "runs left for the last merge")
	kept, size := len(s.chunk), int64(0)
	for _, r := range s.runs {
		kept += r.records
		size += r.size
	}
	assert.Equal(t, len(in), kept, "records in the runs left and in memory")
	// Ten runs into three: merging 3, 3, 3 and then 2 of the smallest
	// rewrites 13 runs' worth; merging in fixed groups of three would
	// rewrite 18.
	assert.LessOrEqual(t, s.off-size, size*13/10, "bytes rewritten by the merges before the last")
	out, err := drain(s)
	require.NoError(t, err)
	s.close()
	require.Equal(t, slices.Sorted(slices.Values(in)), out)
	left, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, left)
}

// TestExtSorterPremergeFailsClosed: a damaged run or a cancelled context
// met while runs are merged before the last merge fails the sort; no
// record comes out, and nothing is left running or on disk.
func TestExtSorterPremergeFailsClosed(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(n int) { maxFanIn = n }(maxFanIn)
	maxFanIn = 3
	for _, fault := range []string{"damaged run", "cancelled"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := newExtSorter(ctx, dir)
			for i := range 6 * sortChunk {
				require.NoError(t, s.add(ctx, fmt.Sprintf("p/%08d", i)))
			}
			s.stopSpill() // every full run is in the file now
			require.Greater(t, len(s.runs), maxFanIn)
			if fault == "damaged run" {
				// An over-long varint where the first run's first length is.
				_, err := s.file.WriteAt(bytes.Repeat([]byte{0xff}, binary.MaxVarintLen64+1), s.runs[0].off)
				require.NoError(t, err)
			} else {
				cancel()
			}
			s.sorted()
			_, ok, err := s.next()
			require.Error(t, err)
			assert.False(t, ok)
			if fault == "cancelled" {
				assert.ErrorIs(t, err, context.Canceled)
			}
			s.close()
			files, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, files)
		})
	}
}
