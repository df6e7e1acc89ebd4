package orphan_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage"
	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
	"github.com/mediaclean/mediaclean/orphan/sqlrefs"
	"github.com/mediaclean/mediaclean/sweep"
)

var (
	modelSchedules = flag.Int("model.schedules", 0, "schedules per backend for TestModel (0: a bounded number for CI)")
	modelSteps     = flag.Int("model.steps", 40, "steps per schedule for TestModel")
	modelSeed      = flag.Uint64("model.seed", 0, "run only this schedule of TestModel")
)

// TestModel runs random schedules of everything that writes or deletes
// files (uploads, replaces and deletes, each committed or rolled back by
// an error, a panic or a failed commit; a crash between the database
// commit and the file commit; sweeps; orphan runs deleting or
// quarantining, with a writer uploading while they run; restores; purges;
// time passing) against a small model of what must hold, and checks it
// after every step:
//
//   - every file a committed row references is there, byte for byte;
//   - every file a quarantine run moved is recoverable, in the quarantine
//     or back at its path, byte for byte, until its run is purged;
//   - nothing outside the storage root changed;
//   - no temporary file outlives the step that wrote it.
//
// Schedules are seeded: a failure prints the seed, and -model.seed reruns
// it alone; -model.schedules runs more.
func TestModel(t *testing.T) {
	t.Parallel()
	schedules := map[string]int{"RootFs": 12, "MemMapFs": 12, "S3": 3}
	for name, n := range schedules {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stats := &modelStats{}
			defer func() {
				t.Logf("%d schedules of %d steps: %d commits, %d rollbacks; orphans deleted %d, quarantined %d, restored %d; %d orphan runs refused by a guard; %d swept",
					n, *modelSteps, stats.commits, stats.rollbacks, stats.deleted, stats.quarantined, stats.restored, stats.refused, stats.swept)
			}()
			if *modelSchedules > 0 {
				n = *modelSchedules
			}
			for i := range n {
				seed := uint64(i + 1)
				if *modelSeed != 0 {
					if i > 0 {
						break
					}
					seed = *modelSeed
				}
				ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSchedule(t, name, seed, stats) })
				if !ok {
					t.Logf("rerun with: go test ./orphan -run 'TestModel/%s/seed=%d$' -args -model.seed=%d", name, seed, seed)
					return
				}
			}
		})
	}
}

// world is one schedule's storage, database and model.
type world struct {
	t       *testing.T
	rnd     *rand.Rand
	fs      afero.Fs
	db      *sql.DB
	outside func() // checks that nothing outside the root changed
	fields  []*filefield.Field
	hash    *filefield.Field

	// The model.
	rows    map[int64]string           // committed row -> the path it references
	content map[string][]byte          // every file the schedule wrote, by path
	runs    map[string]map[string]bool // quarantine run -> the paths it moved
	tag     int
	shift   time.Duration // how far time has moved: files are back-dated by it
	log     []string
	stats   *modelStats
}

// modelStats counts what the schedules of a backend did, to show they
// exercise what they claim to.
type modelStats struct {
	mu                                                                 sync.Mutex
	commits, rollbacks, deleted, quarantined, restored, refused, swept int
}

func (s *modelStats) add(f func(s *modelStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newWorld(t *testing.T, backend string, seed uint64) *world {
	w := &world{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), rows: map[int64]string{}, content: map[string][]byte{}, runs: map[string]map[string]bool{}}
	switch backend {
	case "RootFs":
		base := t.TempDir()
		media, out := filepath.Join(base, "media"), filepath.Join(base, "outside")
		require.NoError(t, os.MkdirAll(media, 0o755))
		require.NoError(t, os.MkdirAll(out, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(out, "secret.png"), []byte("outside"), 0o644))
		require.NoError(t, os.Chtimes(filepath.Join(out, "secret.png"), time.Unix(1, 0), time.Unix(1, 0)))
		// Links inside the root that lead out: to a directory and a file.
		require.NoError(t, os.Symlink("../outside", filepath.Join(media, "link")))
		require.NoError(t, os.MkdirAll(filepath.Join(media, "pics"), 0o755))
		require.NoError(t, os.Symlink("../../outside/secret.png", filepath.Join(media, "pics", "escape.png")))
		rfs, err := rootfs.New(media)
		require.NoError(t, err)
		t.Cleanup(func() { rfs.Close() })
		w.fs = rfs
		w.outside = func() {
			b, err := os.ReadFile(filepath.Join(out, "secret.png"))
			require.NoError(t, err, "the file outside the root is gone")
			require.Equal(t, "outside", string(b))
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Len(t, entries, 1, "something appeared outside the root")
			_, err = os.Lstat(filepath.Join(media, "link"))
			require.NoError(t, err, "the link itself was removed")
		}
	case "MemMapFs":
		mem := afero.NewMemMapFs()
		require.NoError(t, afero.WriteFile(mem, "/outside/secret.png", []byte("outside"), 0o644))
		w.fs = afero.NewBasePathFs(mem, "/media")
		require.NoError(t, mem.MkdirAll("/media", 0o755))
		w.outside = func() {
			b, err := afero.ReadFile(mem, "/outside/secret.png")
			require.NoError(t, err)
			require.Equal(t, "outside", string(b))
		}
	case "S3":
		srv := s3test.Shared(t)
		fsys := srv.Fs(t, "media/")
		// An object beside the prefix: outside the root.
		other := s3fs.New(srv.Client(nil), fsys.Bucket, s3fs.Options{})
		require.NoError(t, afero.WriteFile(other, "outside/secret.png", []byte("outside"), 0o644))
		w.fs = fsys
		w.outside = func() {
			b, err := afero.ReadFile(other, "outside/secret.png")
			require.NoError(t, err)
			require.Equal(t, "outside", string(b))
		}
	}
	var err error
	w.db, err = sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "model.db")+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate")
	require.NoError(t, err)
	t.Cleanup(func() { w.db.Close() })
	_, err = w.db.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY, path TEXT NOT NULL);
		CREATE TABLE audit (id INTEGER PRIMARY KEY, row_id INTEGER REFERENCES rows(id) DEFERRABLE INITIALLY DEFERRED)`)
	require.NoError(t, err)
	refs := filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
		var n int
		err := w.db.QueryRowContext(ctx, `SELECT count(*) FROM rows WHERE path = ?`, p).Scan(&n)
		return n > 0, err
	})
	w.fields = []*filefield.Field{
		filefield.New("pics", w.fs, filefield.Options{Dir: "pics"}),
		filefield.New("qr", w.fs, filefield.Options{Dir: "qr/{owner}"}),
	}
	w.hash = filefield.New("hash", w.fs, filefield.Options{Dir: "hash/{shard}", HashNames: true, Refs: refs})
	w.fields = append(w.fields, w.hash)
	return w
}

func runSchedule(t *testing.T, backend string, seed uint64, stats *modelStats) {
	w := newWorld(t, backend, seed)
	w.stats = stats
	defer func() {
		if t.Failed() {
			t.Logf("steps of seed %d:\n  %s", seed, strings.Join(w.log, "\n  "))
		}
	}()
	ops := []struct {
		weight int
		name   string
		run    func()
	}{
		{6, "upload", func() { w.change(0) }},
		{6, "replace", func() { w.change(1) }},
		{3, "delete", func() { w.change(2) }},
		{2, "crash", w.crash},
		{2, "race", w.race},
		{2, "legacy", w.legacy},
		{2, "sweep", w.sweep},
		{4, "orphans", func() { w.orphans(false) }},
		{2, "orphans+writer", func() { w.orphans(true) }},
		{2, "restore", w.restore},
		{1, "purge", w.purge},
		{3, "time", w.passTime},
	}
	total := 0
	for _, op := range ops {
		total += op.weight
	}
	for step := range *modelSteps {
		pick := w.rnd.IntN(total)
		for _, op := range ops {
			if pick < op.weight {
				w.log = append(w.log, fmt.Sprintf("%d %s", step, op.name))
				op.run()
				break
			}
			pick -= op.weight
		}
		w.check(step)
		if t.Failed() {
			return
		}
	}
}

// bytesFor returns new unique upload bytes (a PNG, by its first bytes);
// with HashNames, sometimes the bytes of an earlier upload.
func (w *world) bytesFor(f *filefield.Field) []byte {
	if f == w.hash && w.tag > 0 && w.rnd.IntN(3) == 0 {
		return png(fmt.Sprint("t", w.rnd.IntN(w.tag)))
	}
	w.tag++
	return png(fmt.Sprint("t", w.tag-1))
}

func png(tag string) []byte {
	return append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), tag...)
}

// change runs one transaction: 0 inserts a row with a new file, 1
// replaces a row's file, 2 deletes a row. It ends at random: committed,
// or rolled back by an error, a panic, or a failed commit.
func (w *world) change(kind int) {
	ctx := w.t.Context()
	ids := w.ids()
	if kind > 0 && len(ids) == 0 {
		kind = 0
	}
	var id int64
	var old string
	if kind > 0 {
		id = ids[w.rnd.IntN(len(ids))]
		old = w.rows[id]
	}
	f := w.fields[w.rnd.IntN(len(w.fields))]
	if kind == 1 && !strings.HasPrefix(old, f.Name()+"/") {
		f = w.fieldOf(old)
	}
	data := w.bytesFor(f)
	end := w.rnd.IntN(5) // 0-1 commit, 2 error, 3 panic, 4 failed commit
	errRollback := errors.New("rolled back")
	var newPath string
	func() {
		defer func() {
			if r := recover(); r != nil && r != "boom" {
				panic(r)
			}
		}()
		_, err := filefield.WithTx(ctx, w.db, nil, func(ctx context.Context, tx *sql.Tx) error {
			switch kind {
			case 0:
				ch, err := f.Save(ctx, filefield.Upload{Body: bytes.NewReader(data), Name: "x.png", Owner: "7"})
				if err != nil {
					return err
				}
				newPath = ch.New
				res, err := tx.Exec(`INSERT INTO rows (path) VALUES (?)`, ch.New)
				if err != nil {
					return err
				}
				id, _ = res.LastInsertId()
			case 1:
				ch, err := f.Replace(ctx, old, filefield.Upload{Body: bytes.NewReader(data), Name: "x.png", Owner: "7"})
				if err != nil {
					return err
				}
				newPath = ch.New
				if _, err := tx.Exec(`UPDATE rows SET path = ? WHERE id = ?`, ch.New, id); err != nil {
					return err
				}
			case 2:
				if _, err := f.Delete(ctx, old); err != nil {
					return err
				}
				if _, err := tx.Exec(`DELETE FROM rows WHERE id = ?`, id); err != nil {
					return err
				}
			}
			switch end {
			case 2:
				return errRollback
			case 3:
				panic("boom")
			case 4:
				// A deferred foreign key to a missing row: tx.Commit fails.
				_, err := tx.Exec(`INSERT INTO audit (row_id) VALUES (-1)`)
				return err
			}
			return nil
		})
		if errors.Is(err, filefield.ErrUnsafePath) {
			return // a legacy path outside the field's directory: refused, nothing changed
		}
		w.stats.add(func(s *modelStats) {
			if end <= 1 {
				s.commits++
			} else {
				s.rollbacks++
			}
		})
		if end <= 1 {
			require.NoError(w.t, err, "a transaction that should commit")
			if newPath != "" {
				w.content[newPath] = data
			}
			switch kind {
			case 0, 1:
				w.rows[id] = newPath
			case 2:
				delete(w.rows, id)
			}
		}
	}()
}

// race interleaves two uploads of the same bytes to the content-named
// field: A stores them and keeps its transaction open; B stores the same
// bytes, gets the same path and commits its row; then A commits or rolls
// back. Whatever A does, B's row keeps its file.
func (w *world) race() {
	ctx := w.t.Context()
	data := w.bytesFor(w.hash)
	up := func() filefield.Upload { return filefield.Upload{Body: bytes.NewReader(data), Name: "x.png"} }
	a, err := w.hash.Save(ctx, up())
	require.NoError(w.t, err)
	insert := func(p string) {
		res, err := w.db.Exec(`INSERT INTO rows (path) VALUES (?)`, p)
		require.NoError(w.t, err)
		id, _ := res.LastInsertId()
		w.rows[id], w.content[p] = p, data
	}
	b, err := w.hash.Save(ctx, up())
	require.NoError(w.t, err)
	insert(b.New)
	b.Commit(ctx)
	if w.rnd.IntN(2) == 0 {
		a.Rollback(ctx)
		return
	}
	insert(a.New)
	a.Commit(ctx)
}

// fieldOf returns the field that keeps path p.
func (w *world) fieldOf(p string) *filefield.Field {
	for _, f := range w.fields {
		if strings.HasPrefix(p, f.Name()+"/") {
			return f
		}
	}
	return w.fields[0] // a legacy path: any field may replace it
}

// crash: the database commits a replace, and the process dies before
// the file commit: the old file stays, an orphan to be.
func (w *world) crash() {
	ids := w.ids()
	if len(ids) == 0 {
		return
	}
	ctx := w.t.Context()
	id := ids[w.rnd.IntN(len(ids))]
	f := w.fieldOf(w.rows[id])
	data := w.bytesFor(f)
	tx, err := w.db.BeginTx(ctx, nil)
	require.NoError(w.t, err)
	ch, err := f.Replace(ctx, w.rows[id], filefield.Upload{Body: bytes.NewReader(data), Name: "x.png", Owner: "7"})
	if err != nil {
		// A legacy path outside this field's directory: nothing stored.
		require.NoError(w.t, tx.Rollback())
		return
	}
	_, err = tx.Exec(`UPDATE rows SET path = ? WHERE id = ?`, ch.New, id)
	require.NoError(w.t, err)
	require.NoError(w.t, tx.Commit())
	w.rows[id], w.content[ch.New] = ch.New, data
	// ch.Commit never runs.
}

// legacyNames are names an import or another program might have written,
// with the characters encodings trip on.
var legacyNames = []string{"x+y.png", "x y.png", "x%2By.png", "x%20y.png", "a&b=c.png", "ü.png", "u\u0308x.png", " lead.png", "\u00a0nb.png", "k-1.png", "k.1.png"}

// legacy writes files under hostile names, lookalikes side by side
// ("x+y.png" beside "x y.png"), old, some with a row that references
// them.
func (w *world) legacy() {
	for _, i := range w.rnd.Perm(len(legacyNames))[:2+w.rnd.IntN(4)] {
		p := "legacy/" + legacyNames[i]
		if storage.ValidPath(p) != nil {
			p = "legacy/n" + fmt.Sprint(w.rnd.IntN(1000)) + ".png"
		}
		if _, ok := w.content[p]; ok {
			continue
		}
		data := png("legacy " + p)
		storagetest.WriteFile(w.t, w.fs, p, data, time.Now().Add(-w.shift-48*time.Hour))
		w.content[p] = data
		if w.rnd.IntN(2) == 0 {
			res, err := w.db.Exec(`INSERT INTO rows (path) VALUES (?)`, p)
			require.NoError(w.t, err)
			id, _ := res.LastInsertId()
			w.rows[id] = p
		}
	}
}

func (w *world) refChecker() storage.RefChecker {
	return filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
		var n int
		err := w.db.QueryRowContext(ctx, `SELECT count(*) FROM rows WHERE path = ?`, p).Scan(&n)
		return n > 0, err
	})
}

// sweep deletes old QR codes, pictures and legacy files, keeping the ones
// rows reference.
func (w *world) sweep() {
	rep, err := sweep.New(w.fs, sweep.Options{
		Rules:      []sweep.Rule{{Glob: "qr/**", MaxAge: time.Hour}, {Glob: "pics/**", MaxAge: 48 * time.Hour}, {Glob: "legacy/**", MaxAge: 48 * time.Hour}},
		Refs:       w.refChecker(),
		DryRun:     w.rnd.IntN(4) == 0,
		TempMaxAge: time.Hour,
	}).Sweep(w.t.Context())
	require.NoError(w.t, err)
	w.stats.add(func(s *modelStats) { s.swept += rep.Deleted.Files })
}

// orphans runs an orphan search and applies it, deleting or
// quarantining; with writer, uploads run while it does.
func (w *world) orphans(writer bool) {
	ctx := w.t.Context()
	opts := orphan.Options{MaxFraction: -1, Unreferenced: []string{"qr/**", "legacy/**"}}
	if w.rnd.IntN(2) == 0 {
		opts.Quarantine = "trash"
	}
	if !writer && w.rnd.IntN(3) == 0 {
		opts.MinAge = -1 // no grace period: nothing is in flight
	}
	if w.rnd.IntN(4) == 0 {
		opts.Force = true // a careless operator: past the coverage guard and the limits
	}
	f := orphan.New(w.fs, sqlrefs.New(w.db, "SELECT path FROM rows"), opts)
	var wg sync.WaitGroup
	if writer {
		// Uploads whose rows commit while the search runs: the grace
		// period keeps their files.
		wg.Go(func() {
			for range 3 {
				w.change(0)
			}
		})
	}
	plan, err := f.Find(ctx)
	if err == nil {
		var rep *orphan.Report
		moved := map[string]bool{}
		rep, err = f.Apply(ctx, plan)
		w.stats.add(func(s *modelStats) { s.deleted += rep.Deleted.Files; s.quarantined += rep.Quarantined.Files })
		if rep != nil && rep.QuarantineRun != "" {
			q := orphan.NewQuarantine(w.fs, "trash", orphan.QuarantineOptions{})
			m, merr := q.Manifest(ctx, rep.QuarantineRun)
			require.NoError(w.t, merr)
			for _, o := range m.Files {
				moved[o.Path] = true
			}
			w.runs[rep.QuarantineRun] = moved
		}
	}
	wg.Wait()
	if err != nil {
		w.stats.add(func(s *modelStats) { s.refused++ })
	}
	// A guard that refuses deletes nothing: a fine outcome.
	if err != nil && !errors.Is(err, orphan.ErrUncovered) && !errors.Is(err, orphan.ErrNoReferences) {
		require.NoError(w.t, err)
	}
}

func (w *world) restore() {
	var runs []string
	for r := range w.runs {
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return
	}
	slices.Sort(runs)
	run := runs[w.rnd.IntN(len(runs))]
	// Restored files are back at their paths, orphans again, no longer
	// the run's to keep.
	_, err := orphan.NewQuarantine(w.fs, "trash", orphan.QuarantineOptions{DryRun: w.rnd.IntN(4) == 0, OnEvent: func(e orphan.Event) {
		if e.Action == orphan.ActionMove {
			delete(w.runs[run], e.Path)
			w.stats.add(func(s *modelStats) { s.restored++ })
		}
	}}).Restore(w.t.Context(), run)
	// A path taken again by then is reported and left in quarantine.
	if err != nil && !errors.Is(err, orphan.ErrDeleteFailed) {
		require.NoError(w.t, err)
	}
}

func (w *world) purge() {
	rep, err := orphan.NewQuarantine(w.fs, "trash", orphan.QuarantineOptions{Now: func() time.Time { return time.Now().Add(w.shift) }}).Purge(w.t.Context(), 24*time.Hour)
	require.NoError(w.t, err)
	for _, r := range rep.Runs {
		delete(w.runs, r)
	}
}

// passTime moves the clock forward by back-dating every file (and the
// quarantine's clock with it).
func (w *world) passTime() {
	d := []time.Duration{time.Hour, 25 * time.Hour, 72 * time.Hour}[w.rnd.IntN(3)]
	w.shift += d
	for _, p := range storagetest.Files(w.t, w.fs) {
		fi, err := w.fs.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(p, "manifest.json") {
			continue
		}
		mt := fi.ModTime().Add(-d)
		require.NoError(w.t, w.fs.Chtimes(p, mt, mt))
	}
}

func (w *world) ids() []int64 {
	ids := make([]int64, 0, len(w.rows))
	for id := range w.rows {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// check asserts the invariants.
func (w *world) check(step int) {
	t := w.t
	t.Helper()
	// The database agrees with the model.
	rows, err := w.db.Query(`SELECT id, path FROM rows`)
	require.NoError(t, err)
	got := map[int64]string{}
	for rows.Next() {
		var id int64
		var p string
		require.NoError(t, rows.Scan(&id, &p))
		got[id] = p
	}
	rows.Close()
	require.Equal(t, w.rows, got, "step %d: the model lost track of the database", step)
	for id, p := range w.rows {
		b, err := afero.ReadFile(w.fs, p)
		require.NoError(t, err, "step %d: row %d references %q, which is gone", step, id, p)
		require.Equal(t, string(w.content[p]), string(b), "step %d: %q changed", step, p)
	}
	for run, moved := range w.runs {
		for p := range moved {
			q := path.Join(path.Join("trash", storage.QuarantineDirName, run), p)
			b, err := afero.ReadFile(w.fs, q)
			if err != nil {
				b, err = afero.ReadFile(w.fs, p) // restored
			}
			require.NoError(t, err, "step %d: %q, quarantined in run %s, is neither in the quarantine nor back", step, p, run)
			if want, ok := w.content[p]; ok {
				require.Equal(t, string(want), string(b), "step %d: quarantined %q came back with other bytes", step, p)
			}
		}
	}
	w.outside()
	for _, p := range storagetest.Files(t, w.fs) {
		require.False(t, storage.IsTempName(p), "step %d: a temp file is left: %s", step, p)
	}
}
