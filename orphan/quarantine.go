package orphan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// quarantine is one Apply's trash folder: <Quarantine>/<run>/ holds the
// moved files at their stored paths and manifest.json.
type quarantine struct {
	dir      string
	run      string
	manifest Manifest
}

// Manifest records a quarantine run, for Restore and Purge.
type Manifest struct {
	Run     string    `json:"run"`
	Created time.Time `json:"created"`
	Files   []Orphan  `json:"files"`
}

const manifestName = "manifest.json"

func (f *Finder) newQuarantine() (*quarantine, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	now := f.now().UTC()
	run := now.Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	q := &quarantine{dir: storage.Join(f.opts.Quarantine, run), run: run, manifest: Manifest{Run: run, Created: now, Files: []Orphan{}}}
	if err := f.fs.MkdirAll(q.dir, 0o755); err != nil {
		return nil, storage.Wrap("quarantine", q.dir, err)
	}
	return q, nil
}

func (q *quarantine) move(fsys afero.Fs, o Orphan) error {
	dst := storage.Join(q.dir, o.Path)
	if err := fsys.MkdirAll(storage.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := fsys.Stat(dst); err == nil {
		return &storage.PathError{Op: "quarantine", Path: dst, Err: fs.ErrExist}
	}
	return fsys.Rename(o.Path, dst)
}

func (q *quarantine) save(fsys afero.Fs) error {
	b, err := json.MarshalIndent(q.manifest, "", "  ")
	if err != nil {
		return err
	}
	// Replaced atomically: a failed save must leave the previous
	// (write-ahead) manifest intact, or moved files could not be restored.
	return storage.WriteFileAtomic(context.Background(), fsys, storage.Join(q.dir, manifestName), b)
}

func (f *Finder) readManifest(run string) (*Manifest, error) {
	if err := storage.ValidPath(run); err != nil {
		return nil, err
	}
	p := storage.Join(storage.Join(f.opts.Quarantine, run), manifestName)
	b, err := afero.ReadFile(f.fs, p)
	if err != nil {
		return nil, storage.Wrap("read", p, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, storage.Wrap("read", p, err)
	}
	return &m, nil
}

// Restore moves the files of a quarantine run back to their stored paths.
// A file whose path is taken again is left in quarantine and reported as
// failed. It returns the number restored.
func (f *Finder) Restore(ctx context.Context, run string) (int, []Failure, error) {
	if f.opts.Quarantine == "" {
		return 0, nil, errors.New("orphan: no quarantine directory configured")
	}
	m, err := f.readManifest(run)
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var fails []Failure
	for _, o := range m.Files {
		if err := ctx.Err(); err != nil {
			return n, fails, err
		}
		if storage.ValidPath(o.Path) != nil {
			fails = append(fails, Failure{Path: o.Path, Error: "unsafe path in manifest"})
			continue
		}
		if _, err := f.fs.Stat(o.Path); err == nil {
			fails = append(fails, Failure{Path: o.Path, Error: "path is taken"})
			continue
		}
		if err := f.fs.MkdirAll(storage.Dir(o.Path), 0o755); err == nil {
			err = f.fs.Rename(storage.Join(storage.Join(f.opts.Quarantine, run), o.Path), o.Path)
			if err == nil {
				n++
				continue
			}
			fails = append(fails, Failure{Path: o.Path, Error: err.Error()})
		}
	}
	return n, fails, nil
}

// Purge deletes quarantine runs created more than retention ago and
// returns their names. It deletes exactly the files each run's manifest
// lists, then the manifest, then the directories left empty: anything
// else found in a run folder is kept, and so is the folder. Runs without a
// readable manifest are kept. Failures are reported, not returned.
func (f *Finder) Purge(ctx context.Context, retention time.Duration) ([]string, []Failure, error) {
	if f.opts.Quarantine == "" {
		return nil, nil, errors.New("orphan: no quarantine directory configured")
	}
	entries, err := afero.ReadDir(f.fs, f.opts.Quarantine)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, nil
		}
		return nil, nil, storage.Wrap("list", f.opts.Quarantine, err)
	}
	var purged []string
	var fails []Failure
	now := f.now()
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return purged, fails, err
		}
		if !e.IsDir() {
			continue
		}
		m, err := f.readManifest(e.Name())
		if err != nil || m.Run != e.Name() || now.Sub(m.Created) <= retention {
			continue
		}
		runDir := storage.Join(f.opts.Quarantine, m.Run)
		paths := []string{}
		dirs := []string{}
		for _, o := range m.Files {
			if storage.ValidPath(o.Path) != nil {
				fails = append(fails, Failure{Path: o.Path, Error: "unsafe path in manifest"})
				continue
			}
			p := storage.Join(runDir, o.Path)
			paths = append(paths, p)
			dirs = append(dirs, storage.Dir(p))
		}
		failed := false
		for i, err := range storage.RemoveFiles(ctx, f.fs, paths) {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				failed = true
				fails = append(fails, Failure{Path: paths[i], Error: err.Error()})
				continue
			}
			f.event(ctx, Event{Action: "purge", Path: paths[i]})
		}
		if failed {
			continue // keep the manifest: the run can be purged again
		}
		if err := storage.RemoveFiles(ctx, f.fs, []string{storage.Join(runDir, manifestName)})[0]; err != nil {
			fails = append(fails, Failure{Path: storage.Join(runDir, manifestName), Error: err.Error()})
			continue
		}
		storage.RemoveEmptyDirs(ctx, f.fs, append(dirs, runDir), f.opts.Quarantine, storage.DeleteOptions{})
		purged = append(purged, m.Run)
	}
	return purged, fails, nil
}
