package filefield_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/orphan"
)

// TestS16PropPendingPathsOrphanRace is a randomized, model-based race of
// uploads against an orphan search with no grace period.
//
// Several workers each repeat: Save (a new row) or Replace (an existing
// row's file; fresh bytes, bytes from a small shared pool, or the row's
// own bytes again) or Delete, on a field with HashNames on or off;
// then, at a random moment, either write the row into a fake database (a
// mutex-guarded map standing for committed rows) and Commit, or Rollback
// without writing it. Meanwhile a loop runs orphan Find+Apply with
// MinAge -1 (ReuseGrace with HashNames) and MaxFraction -1 whose
// references are
// Combine(ProviderFunc(field.PendingPaths), the committed rows). The
// field's Options.Refs reads the same rows (without HashNames; with it,
// the field deletes nothing and the search is the one deleter).
//
// Invariant, after each commit, at every quiescent point (all workers
// and the orphan loop stopped) and at the end: every path a committed
// row names exists with the bytes written for it; no change is pending;
// no temp file is left. Between rounds some files are back-dated (past
// ReuseGrace/2, or past ReuseGrace) to stand for time passing, so that
// the "too old to reuse" and "old enough to delete" branches run.
//
// MEDIACLEAN_S16PROP_SEED and MEDIACLEAN_S16PROP_ROUNDS choose the seed
// (default: random, logged) and the number of rounds on the local
// backends (default 40); S3, whose requests are slower, runs a sixth of
// them.
func TestS16PropPendingPathsOrphanRace(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MEDIACLEAN_S16PROP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MEDIACLEAN_S16PROP_SEED: %v", err)
		}
		seed = v
	}
	rounds := 40
	if s := os.Getenv("MEDIACLEAN_S16PROP_ROUNDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("MEDIACLEAN_S16PROP_ROUNDS: %q", s)
		}
		rounds = v
	}
	t.Logf("seed %d, %d rounds (MEDIACLEAN_S16PROP_SEED=%d MEDIACLEAN_S16PROP_ROUNDS=%d)", seed, rounds, seed, rounds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with MEDIACLEAN_S16PROP_SEED=%d MEDIACLEAN_S16PROP_ROUNDS=%d", seed, rounds)
		}
	})

	type backend struct {
		name string
		// slow: a sixth of the rounds
		slow bool
		// make returns the fs the field and the finder use, and one on
		// the same storage whose Chtimes back-dates (to stand for time
		// passing between rounds).
		make func(t *testing.T, rng *rand.Rand) (fsys, backdate afero.Fs)
	}
	backends := []backend{
		{"MemMapFs", false, func(t *testing.T, rng *rand.Rand) (afero.Fs, afero.Fs) {
			j := &s16propJitterFs{MemMapFs: afero.NewMemMapFs().(*afero.MemMapFs), rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
			return j, j.MemMapFs
		}},
		{"RootFs", false, func(t *testing.T, _ *rand.Rand) (afero.Fs, afero.Fs) {
			fsys, err := rootfs.New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { fsys.Close() })
			return fsys, fsys
		}},
		{"S3", true, func(t *testing.T, _ *rand.Rand) (afero.Fs, afero.Fs) {
			srv := s3test.Shared(t)
			bd := srv.Fs(t, "")
			// The field and the finder use a plain s3fs, which cannot set
			// times: a reuse then stores the same bytes again, as in
			// production.
			return s3fs.New(srv.Client(nil), bd.Bucket, s3fs.Options{}), bd
		}},
	}
	for i, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			fsys, backdate := b.make(t, rng)
			n := rounds
			if b.slow {
				n = max(1, rounds/6)
			}
			start := time.Now()
			s16propRun(t, rng, n, fsys, backdate)
			t.Logf("%s: %d rounds in %v", b.name, n, time.Since(start).Round(time.Millisecond))
		})
	}
}

// s16propJitterFs is a MemMapFs whose removals, renames and time
// changes are sometimes delayed a little, as a disk's are: it widens
// the windows between a check and the act it guards.
type s16propJitterFs struct {
	*afero.MemMapFs
	mu  sync.Mutex
	rng *rand.Rand
}

func (j *s16propJitterFs) pause() {
	j.mu.Lock()
	k, d := j.rng.IntN(3), time.Duration(j.rng.IntN(1500))*time.Microsecond
	j.mu.Unlock()
	switch k {
	case 0:
		time.Sleep(d)
	case 1:
		runtime.Gosched()
	}
}

func (j *s16propJitterFs) Remove(name string) error { j.pause(); return j.MemMapFs.Remove(name) }
func (j *s16propJitterFs) Rename(o, n string) error { j.pause(); return j.MemMapFs.Rename(o, n) }
func (j *s16propJitterFs) Chtimes(name string, a, m time.Time) error {
	j.pause()
	return j.MemMapFs.Chtimes(name, a, m)
}

// s16propRow is a committed row: the path it names and the bytes written
// for it.
type s16propRow struct {
	path string
	body []byte
}

// s16propDB stands for the database: committed rows only.
type s16propDB struct {
	mu   sync.Mutex
	rows map[int]s16propRow
	busy map[int]bool // rows a worker is changing (its row lock)
	next int
}

func (db *s16propDB) snapshot() map[int]s16propRow {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make(map[int]s16propRow, len(db.rows))
	for k, v := range db.rows {
		out[k] = v
	}
	return out
}

// references streams the committed rows' paths: an orphan provider.
func (db *s16propDB) references(ctx context.Context, fn func(string) error) error {
	var paths []string
	for _, r := range db.snapshot() {
		paths = append(paths, r.path)
	}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// isReferenced is the field's Options.Refs.
func (db *s16propDB) isReferenced(_ context.Context, p string) (bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, r := range db.rows {
		if r.path == p {
			return true, nil
		}
	}
	return false, nil
}

// s16propLog records what happened, in order, for a failure's report.
type s16propLog struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (l *s16propLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("%9.3fms ", float64(time.Since(l.start).Microseconds())/1000)+fmt.Sprintf(format, args...))
}

// about returns the lines that mention any of paths (or row ids "row N").
func (l *s16propLog) about(needles ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	n := 0
	for _, line := range l.lines {
		if slices.ContainsFunc(needles, func(s string) bool { return s != "" && strings.Contains(line, s) }) {
			b.WriteString("    " + line + "\n")
			if n++; n > 200 {
				b.WriteString("    ...\n")
				break
			}
		}
	}
	return b.String()
}

// s16propFailures collects failures found on goroutines.
type s16propFailures struct {
	mu  sync.Mutex
	msg []string
}

func (f *s16propFailures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg = append(f.msg, fmt.Sprintf(format, args...))
}

func s16propBody(tag string) []byte {
	// Sniffs as image/png; sizes vary a little.
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), []byte(tag)...)
}

func s16propRun(t *testing.T, rng *rand.Rand, rounds int, fsys, backdate afero.Fs) {
	ctx := context.Background()
	db := &s16propDB{rows: map[int]s16propRow{}, busy: map[int]bool{}}
	log := &s16propLog{start: time.Now()}
	var failed s16propFailures
	var stats struct {
		saves, replaces, deletes, commits, rollbacks, saveErrs, orphanDeleted, orphanRuns, ownName atomic.Int64
	}
	pool := make([][]byte, 4) // shared contents: identical uploads
	for i := range pool {
		pool[i] = s16propBody(fmt.Sprintf("pool-%d", i))
	}
	var uniq atomic.Int64

	for round := 0; round < rounds && !t.Failed(); round++ {
		hash := rng.IntN(4) != 0
		grace := time.Duration(0) // DefaultReuseGrace: a day
		if rng.IntN(3) == 0 {
			grace = time.Hour
		}
		dir := "pics"
		if rng.IntN(3) == 0 {
			dir = "pics/{shard}"
		}
		// With HashNames the field deletes nothing (no Refs): the orphan
		// search is the one deleter. Two deleters of one content-named
		// file, with an identical upload storing it afresh between the
		// last check of one of them and its request, lose the new copy
		// (a limitation the README states; random names never recur).
		var refs filefield.RefChecker = filefield.RefCheckerFunc(db.isReferenced)
		if hash {
			refs = nil
		}
		field := filefield.New("pics", fsys, filefield.Options{
			Dir:        dir,
			HashNames:  hash,
			ReuseGrace: grace,
			Refs:       refs,
			OnEvent: func(e filefield.Event) {
				log.add("field  %s %s %s %v", e.Action, e.Path, e.Reason, e.Err)
			},
		})
		// No grace period, except with HashNames: an upload may take
		// over an old content-named file after the search read the
		// references (the reuse renews a file younger than ReuseGrace/2
		// only), so the search keeps files younger than ReuseGrace.
		minAge := time.Duration(-1)
		if hash {
			minAge = cmp.Or(grace, filefield.DefaultReuseGrace)
		}
		finder := orphan.New(fsys,
			orphan.Combine(orphan.ProviderFunc(field.PendingPaths), orphan.ProviderFunc(db.references)),
			orphan.Options{MinAge: minAge, MaxFraction: -1, AllowEmpty: true, Unreferenced: []string{"**"},
				OnEvent: func(e orphan.Event) {
					if e.Action == storage.ActionDelete || e.Action == storage.ActionFail {
						log.add("orphan %s %s %v", e.Action, e.Path, e.Err)
					}
				}})
		log.add("round %d: HashNames=%v ReuseGrace=%v Dir=%s", round, hash, grace, dir)

		workers := 2 + rng.IntN(3)
		ops := 3 + rng.IntN(4)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < ops; i++ {
					s16propOp(ctx, wrng, w, field, db, log, &failed, pool, &uniq, &stats.saves, &stats.replaces, &stats.deletes, &stats.commits, &stats.rollbacks, &stats.saveErrs, &stats.ownName, hash)
				}
			}()
		}
		stop := make(chan struct{})
		orphanDone := make(chan struct{})
		orng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		go func() {
			defer close(orphanDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := s16propOrphanPass(ctx, finder)
				stats.orphanRuns.Add(1)
				stats.orphanDeleted.Add(int64(n))
				if err != nil {
					failed.add("orphan pass: %v", err)
					return
				}
				if orng.IntN(2) == 0 {
					time.Sleep(time.Duration(orng.IntN(500)) * time.Microsecond)
				}
			}
		}()
		wg.Wait()
		close(stop)
		<-orphanDone

		// Quiescent point.
		s16propCheck(t, fmt.Sprintf("round %d, quiescent", round), fsys, field, db, log, &failed)
		if t.Failed() {
			return
		}
		// One more pass with nothing in flight: it must not touch a row's
		// file either.
		n, err := s16propOrphanPass(ctx, finder)
		stats.orphanDeleted.Add(int64(n))
		if err != nil {
			t.Fatalf("round %d: orphan pass at rest: %v", round, err)
		}
		s16propCheck(t, fmt.Sprintf("round %d, after an orphan pass at rest", round), fsys, field, db, log, &failed)
		if t.Failed() {
			return
		}
		// Time passes: back-date some files past ReuseGrace/2 (no longer
		// reused) or past ReuseGrace (deletable by the field).
		for _, p := range storageFilesS16prop(t, fsys) {
			if rng.IntN(3) != 0 {
				continue
			}
			age := 13 * time.Hour
			if rng.IntN(2) == 0 {
				age = 25 * time.Hour
			}
			old := time.Now().Add(-age)
			if err := backdate.Chtimes(p, old, old); err != nil {
				t.Fatalf("back-dating %s: %v", p, err)
			}
			log.add("test   back-dated %s by %v", p, age)
		}
	}
	t.Logf("saves %d, replaces %d, deletes %d, commits %d, rollbacks %d, upload errors %d, hashed uploads under a name of their own %d, orphan runs %d, orphans deleted %d, rows %d",
		stats.saves.Load(), stats.replaces.Load(), stats.deletes.Load(), stats.commits.Load(), stats.rollbacks.Load(),
		stats.saveErrs.Load(), stats.ownName.Load(), stats.orphanRuns.Load(), stats.orphanDeleted.Load(), len(db.snapshot()))
}

// s16propOrphanPass runs Find then Apply, and returns how many files it
// deleted.
func s16propOrphanPass(ctx context.Context, finder *orphan.Finder) (int, error) {
	plan, err := finder.Find(ctx)
	if err != nil {
		return 0, fmt.Errorf("find: %w", err)
	}
	if len(plan.Orphans) == 0 {
		return 0, nil
	}
	rep, err := finder.Apply(ctx, plan)
	if err != nil {
		return 0, fmt.Errorf("apply: %w", err)
	}
	return int(rep.Deleted.Files), nil
}

// s16propOp is one request of a worker: an upload (or a delete), the
// row written at a random moment and the change committed after it, or
// rolled back without writing it.
func s16propOp(ctx context.Context, rng *rand.Rand, w int, field *filefield.Field, db *s16propDB, log *s16propLog,
	failed *s16propFailures, pool [][]byte, uniq *atomic.Int64, saves, replaces, deletes, commits, rollbacks, saveErrs, ownName *atomic.Int64, hash bool) {
	jitter := func() {
		switch rng.IntN(4) {
		case 0:
			time.Sleep(time.Duration(rng.IntN(800)) * time.Microsecond)
		case 1:
			runtime.Gosched()
		}
	}
	// Take a row: a new one, or a free existing one (the row lock).
	db.mu.Lock()
	var free []int
	for id := range db.rows {
		if !db.busy[id] {
			free = append(free, id)
		}
	}
	slices.Sort(free)
	id, old, exists := 0, s16propRow{}, false
	// Few rows, so that a run stays short and contents are shared often.
	if len(free) > 0 && (len(db.rows) >= 12 || rng.IntN(3) != 0) {
		id = free[rng.IntN(len(free))]
		old, exists = db.rows[id], true
	} else {
		db.next++
		id = db.next
	}
	db.busy[id] = true
	db.mu.Unlock()
	defer func() {
		db.mu.Lock()
		delete(db.busy, id)
		db.mu.Unlock()
	}()
	who := fmt.Sprintf("w%d row %d", w, id)

	var ch *filefield.Change
	var body []byte
	var err error
	switch {
	case exists && rng.IntN(max(2, 16-len(db.snapshot()))) == 0:
		deletes.Add(1)
		ch, err = field.Delete(ctx, old.path)
		log.add("%s: Delete(%s) -> err %v", who, old.path, err)
	default:
		switch k := rng.IntN(3); {
		case k == 0:
			body = pool[rng.IntN(len(pool))]
		case k == 1 && exists:
			body = old.body // identical bytes
		default:
			body = s16propBody(fmt.Sprintf("fresh-%d-%s", uniq.Add(1), strings.Repeat("x", rng.IntN(64))))
		}
		up := filefield.Upload{Body: bytes.NewReader(body), Name: "a.png"}
		if exists {
			replaces.Add(1)
			ch, err = field.Replace(ctx, old.path, up)
		} else {
			saves.Add(1)
			ch, err = field.Save(ctx, up)
		}
		newPath := ""
		if ch != nil {
			newPath = ch.New
			sum := sha256.Sum256(body)
			if hash && !strings.HasSuffix(newPath, "/"+hex.EncodeToString(sum[:16])+".png") {
				ownName.Add(1) // too old to reuse: a name of its own
			}
		}
		log.add("%s: upload (old %q, %d bytes %q) -> %s err %v", who, old.path, len(body), body[16:min(len(body), 40)], newPath, err)
	}
	if err != nil {
		// An upload may fail (the client uploads again); nothing is
		// written to the row.
		saveErrs.Add(1)
		if errors.Is(err, filefield.ErrUnsafePath) {
			failed.add("%s: unexpected error: %v", who, err)
		}
		return
	}
	jitter()
	if rng.IntN(4) == 0 {
		jitter()
		rollbacks.Add(1)
		r := ch.Rollback(ctx)
		log.add("%s: rolled back %s: %+v", who, ch.New, r)
		return
	}
	jitter()
	db.mu.Lock()
	if ch.New == "" {
		delete(db.rows, id)
	} else {
		db.rows[id] = s16propRow{path: ch.New, body: body}
	}
	db.mu.Unlock()
	log.add("%s: row committed = %q", who, ch.New)
	jitter()
	r := ch.Commit(ctx)
	commits.Add(1)
	log.add("%s: committed %s (old %s): %+v", who, ch.New, ch.Old, r)
	if ch.New != "" {
		// The row names it now, and holds it until this worker changes
		// the row again: it must be there with the row's bytes.
		got, err := afero.ReadFile(field.Fs(), ch.New)
		if err != nil || !bytes.Equal(got, body) {
			failed.add("%s: right after its commit, the row's file %s: err %v, %d bytes (want %d)", who, ch.New, err, len(got), len(body))
		}
	}
}

// s16propCheck checks the invariant at a quiescent point.
func s16propCheck(t *testing.T, when string, fsys afero.Fs, field *filefield.Field, db *s16propDB, log *s16propLog, failed *s16propFailures) {
	t.Helper()
	failed.mu.Lock()
	msgs := slices.Clone(failed.msg)
	failed.mu.Unlock()
	var needles []string
	for _, m := range msgs {
		t.Errorf("%s: %s", when, m)
		for _, f := range strings.Fields(m) {
			if strings.HasPrefix(f, "pics/") {
				needles = append(needles, strings.TrimRight(f, ":,"))
			}
		}
	}
	for id, r := range db.snapshot() {
		got, err := afero.ReadFile(fsys, r.path)
		if err != nil || !bytes.Equal(got, r.body) {
			t.Errorf("%s: row %d names %s, which is lost: err %v, %d bytes (want %d)", when, id, r.path, err, len(got), len(r.body))
			needles = append(needles, r.path)
		}
	}
	var pending []string
	if err := field.PendingPaths(context.Background(), func(p string) error { pending = append(pending, p); return nil }); err != nil {
		t.Errorf("%s: PendingPaths: %v", when, err)
	}
	if len(pending) > 0 {
		t.Errorf("%s: pending paths with no request in flight: %v", when, pending)
	}
	for _, p := range storageFilesS16prop(t, fsys) {
		if strings.Contains(p, storage.TempPrefix) {
			t.Errorf("%s: temp file left behind: %s", when, p)
		}
	}
	if len(needles) > 0 {
		t.Logf("what happened to %v:\n%s", needles, log.about(needles...))
	}
}

// storageFilesS16prop lists the files under the root (an empty root is
// fine).
func storageFilesS16prop(t *testing.T, fsys afero.Fs) []string {
	t.Helper()
	var out []string
	err := storage.List(context.Background(), fsys, storage.ListOptions{}, func(e storage.Entry) error {
		if !e.Type.IsDir() {
			out = append(out, e.Path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing: %v", err)
	}
	return out
}
