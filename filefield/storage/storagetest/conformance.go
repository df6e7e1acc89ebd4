package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// Divergences declares the known ways a backend differs from a POSIX disk.
// The conformance suite does not skip a declared divergence silently: it
// checks that the backend still shows it, so a backend that gets fixed
// fails the suite until its declaration is removed. Declare only what the
// library can live with; each field says how mediaclean copes.
type Divergences struct {
	// CreatesMissingParents: creating a/b/c succeeds when a/b does not
	// exist (MemMapFs). filefield creates parents itself, so this is
	// harmless, but tests on such a backend miss a class of bugs.
	CreatesMissingParents bool
	// RemovesNonEmptyDirs: Remove on a directory with entries succeeds
	// (MemMapFs: the directory vanishes from listings while its files stay
	// reachable by name). Sweepers list a directory and find it empty
	// before removing it, so only a race can lose a file there.
	RemovesNonEmptyDirs bool
	// AcceptsNUL: a name with a NUL byte can be created (MemMapFs).
	// mediaclean validates every path with storage.ValidPath first.
	AcceptsNUL bool
	// NoChtimes: modification times cannot be set (most object stores);
	// the suite checks that Chtimes fails, and age-based tests must
	// back-date files another way.
	NoChtimes bool
	// BatchRemoveBlind: RemoveFiles reports a missing file, or a name that
	// is only a directory, as removed (S3's DeleteObjects does not say).
	// Sweepers then count such a file as deleted; nothing else is lost.
	BatchRemoveBlind bool
}

// MemMapFsDivergences are the divergences of afero.MemMapFs v1.15.0.
var MemMapFsDivergences = Divergences{
	CreatesMissingParents: true,
	RemovesNonEmptyDirs:   true,
	AcceptsNUL:            true,
}

// ObjectStoreDivergences are the divergences of mediaclean's S3 backend
// (package s3fs): directories are virtual, LastModified cannot be set, and
// DeleteObjects does not report missing keys.
var ObjectStoreDivergences = Divergences{
	CreatesMissingParents: true,
	NoChtimes:             true,
	BatchRemoveBlind:      true,
}

type check struct {
	name string
	run  func(ctx context.Context, fsys afero.Fs, dir string, d Divergences) error
}

var checks = []check{
	{"StatMissing", checkStatMissing},
	{"PrefixKey", checkPrefixKey},
	{"RemoveMissing", checkRemoveMissing},
	{"CreateExclusive", checkCreateExclusive},
	{"RenameOverExisting", checkRenameOver},
	{"CreateWithoutParent", checkCreateWithoutParent},
	{"RemoveNonEmptyDir", checkRemoveNonEmptyDir},
	{"RefusesNUL", checkNUL},
	{"OddNames", checkOddNames},
	{"KeyCharacters", checkKeyCharacters},
	{"ModTimeRoundTrip", checkModTime},
	{"ListWhileDeleting", checkListWhileDeleting},
	{"FastPathsAgree", checkFastPathsAgree},
	{"NamesThenStats", checkNamesThenStats},
	{"RangeListing", checkRangeListing},
	{"ConditionalRemove", checkConditionalRemove},
	{"SortedListing", checkSortedListing},
}

// TestFS runs the conformance suite against backends made by newFS, one
// subtest per check, each on a fresh backend. It fails the test for every
// misbehaviour found.
func TestFS(t *testing.T, newFS func(t *testing.T) afero.Fs, d Divergences) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			fsys := newFS(t)
			if err := c.run(t.Context(), fsys, "conformance-"+c.name, d); err != nil {
				t.Error(err)
			}
		})
	}
}

// CheckFS runs the conformance suite against fsys, each check in its own
// directory named "conformance-<check>", and returns every misbehaviour
// found, joined; nil means the backend conforms. It leaves those
// directories behind.
func CheckFS(ctx context.Context, fsys afero.Fs, d Divergences) error {
	var errs []error
	for _, c := range checks {
		if err := c.run(ctx, fsys, "conformance-"+c.name, d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

func writeFile(fsys afero.Fs, name string, data []byte) error {
	if err := fsys.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	return afero.WriteFile(fsys, name, data, 0o644)
}

func checkStatMissing(_ context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	if _, err := fsys.Stat(dir + "/missing.jpg"); !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("Stat of a missing file: got %v, want fs.ErrNotExist", err))
	}
	if _, err := fsys.Open(dir + "/missing.jpg"); !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("Open of a missing file: got %v, want fs.ErrNotExist", err))
	}
	if _, err := fsys.Stat(dir + "/no/such/dir/x"); !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("Stat below a missing directory: got %v, want fs.ErrNotExist", err))
	}
	return errors.Join(errs...)
}

func checkPrefixKey(_ context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	name := dir + "/uploads/12.jpg"
	if err := writeFile(fsys, name, []byte("twelve")); err != nil {
		return err
	}
	var errs []error
	for _, p := range []string{dir + "/uploads/1", dir + "/uploads/12", dir + "/uploads/12.j"} {
		if fi, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("Stat(%q), a prefix of %q: got (%v, %v), want fs.ErrNotExist", p, name, fi, err))
		}
	}
	if fi, err := fsys.Stat(name); err != nil || fi.Size() != 6 || fi.IsDir() {
		errs = append(errs, fmt.Errorf("Stat(%q): got (%v, %v), want a 6-byte file", name, fi, err))
	}
	return errors.Join(errs...)
}

func checkRemoveMissing(_ context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := fsys.Remove(dir + "/missing.jpg"); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("Remove of a missing file: got %v, want fs.ErrNotExist", err)
	}
	return nil
}

func checkCreateExclusive(_ context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	name := dir + "/a.jpg"
	if err := writeFile(fsys, name, []byte("original")); err != nil {
		return err
	}
	var errs []error
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if !errors.Is(err, fs.ErrExist) {
		errs = append(errs, fmt.Errorf("O_EXCL create of an existing file: got %v, want fs.ErrExist", err))
		if f != nil {
			f.Close()
		}
	}
	if got, _ := afero.ReadFile(fsys, name); string(got) != "original" {
		errs = append(errs, fmt.Errorf("O_EXCL create changed the existing file to %q", got))
	}
	f, err = fsys.OpenFile(dir+"/b.jpg", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		errs = append(errs, fmt.Errorf("O_EXCL create of a new file: %v", err))
	} else if err := f.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkRenameOver(_ context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	a, b := dir+"/a.tmp", dir+"/b.jpg"
	if err := writeFile(fsys, a, []byte("new")); err != nil {
		return err
	}
	if err := writeFile(fsys, b, []byte("old")); err != nil {
		return err
	}
	if err := fsys.Rename(a, b); err != nil {
		return fmt.Errorf("Rename onto an existing file: %v", err)
	}
	var errs []error
	if got, err := afero.ReadFile(fsys, b); err != nil || string(got) != "new" {
		errs = append(errs, fmt.Errorf("after Rename the target holds (%q, %v), want \"new\"", got, err))
	}
	if _, err := fsys.Stat(a); !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("after Rename the source still exists: %v", err))
	}
	return errors.Join(errs...)
}

func checkCreateWithoutParent(_ context.Context, fsys afero.Fs, dir string, d Divergences) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := fsys.OpenFile(dir+"/no-such-dir/x.jpg", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if f != nil {
		f.Close()
	}
	switch {
	case d.CreatesMissingParents && err != nil:
		return fmt.Errorf("declared CreatesMissingParents, but creating below a missing directory failed (%v): remove the declaration", err)
	case !d.CreatesMissingParents && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("create below a missing directory: got %v, want fs.ErrNotExist", err)
	}
	return nil
}

func checkRemoveNonEmptyDir(_ context.Context, fsys afero.Fs, dir string, d Divergences) error {
	if err := writeFile(fsys, dir+"/full/x.jpg", []byte("x")); err != nil {
		return err
	}
	err := fsys.Remove(dir + "/full")
	_, dirErr := fsys.Stat(dir + "/full")
	_, statErr := fsys.Stat(dir + "/full/x.jpg")
	switch {
	case d.RemovesNonEmptyDirs && (err != nil || dirErr == nil):
		return fmt.Errorf("declared RemovesNonEmptyDirs, but Remove of a non-empty directory kept it (%v): remove the declaration", err)
	case !d.RemovesNonEmptyDirs && (err == nil || statErr != nil):
		return fmt.Errorf("Remove of a non-empty directory: got %v and the file inside is %v; want an error and the file kept", err, statErr)
	}
	return nil
}

func checkNUL(_ context.Context, fsys afero.Fs, dir string, d Divergences) error {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := fsys.Create(dir + "/a\x00b.jpg")
	if f != nil {
		f.Close()
	}
	switch {
	case d.AcceptsNUL && err != nil:
		return fmt.Errorf("declared AcceptsNUL, but a name with NUL was refused (%v): remove the declaration", err)
	case !d.AcceptsNUL && err == nil:
		return errors.New("a name with a NUL byte was accepted")
	}
	return nil
}

var oddNames = []string{"with space.jpg", "a+b.jpg", "100%.jpg", "%2F.jpg", "ünïcödé.jpg", "日本語.png", "emoji-😀.gif", "semi;colon.jpg", "quote'd.jpg"}

func checkOddNames(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	var errs []error
	for i, n := range oddNames {
		if err := writeFile(fsys, dir+"/"+n, bytes.Repeat([]byte{'x'}, i+1)); err != nil {
			errs = append(errs, fmt.Errorf("create %q: %v", n, err))
		}
	}
	var listed []string
	err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
		listed = append(listed, strings.TrimPrefix(e.Path, dir+"/"))
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("list: %v", err))
	}
	slices.Sort(listed)
	want := slices.Sorted(slices.Values(oddNames))
	if !slices.Equal(listed, want) {
		errs = append(errs, fmt.Errorf("listing gave %q, want %q", listed, want))
	}
	for i, n := range oddNames {
		p := dir + "/" + n
		if fi, err := fsys.Stat(p); err != nil || fi.Size() != int64(i+1) {
			errs = append(errs, fmt.Errorf("Stat(%q): (%v, %v), want size %d", n, fi, err, i+1))
		}
		if err := fsys.Remove(p); err != nil {
			errs = append(errs, fmt.Errorf("Remove(%q): %v", n, err))
		}
		if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("after Remove, Stat(%q): %v, want fs.ErrNotExist", n, err))
		}
	}
	return errors.Join(errs...)
}

func checkModTime(ctx context.Context, fsys afero.Fs, dir string, d Divergences) error {
	name := dir + "/old.jpg"
	if err := writeFile(fsys, name, []byte("x")); err != nil {
		return err
	}
	want := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if d.NoChtimes {
		if err := fsys.Chtimes(name, want, want); err == nil {
			return errors.New("declared NoChtimes, but Chtimes succeeded: remove the declaration")
		}
		return nil
	}
	if err := fsys.Chtimes(name, want, want); err != nil {
		return fmt.Errorf("Chtimes: %v", err)
	}
	var errs []error
	if fi, err := fsys.Stat(name); err != nil || !fi.ModTime().Equal(want) {
		errs = append(errs, fmt.Errorf("Stat after Chtimes: (%v, %v), want mtime %v", fi, err, want))
	}
	err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
		if !e.ModTime.Equal(want) {
			return fmt.Errorf("listed mtime %v, want %v", e.ModTime, want)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkListWhileDeleting(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	const n = 120
	for i := range n {
		if err := writeFile(fsys, fmt.Sprintf("%s/d%d/f%03d.jpg", dir, i%3, i), []byte("x")); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seen := map[string]int{}
	done := make(chan error, 1)
	go func() {
		done <- storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
			seen[e.Path]++
			if e.Type.IsRegular() {
				return fsys.Remove(e.Path)
			}
			return nil
		})
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return errors.New("listing while deleting did not finish in 30s (deadlock?)")
	}
	if err != nil {
		return fmt.Errorf("listing while deleting: %v", err)
	}
	var errs []error
	files := 0
	for p, c := range seen {
		if c != 1 {
			errs = append(errs, fmt.Errorf("%q listed %d times", p, c))
		}
		if strings.HasSuffix(p, ".jpg") {
			files++
		}
	}
	if files != n {
		errs = append(errs, fmt.Errorf("listed %d files while deleting, want %d", files, n))
	}
	left := 0
	if err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			left++
		}
		return nil
	}); err != nil {
		errs = append(errs, err)
	}
	if left != 0 {
		errs = append(errs, fmt.Errorf("%d files left after deleting each as it was listed", left))
	}
	return errors.Join(errs...)
}

// checkFastPathsAgree compares the backend's fast paths with the portable
// ones: List against the portable walk, and RemoveFiles against what is left.
func checkFastPathsAgree(ctx context.Context, fsys afero.Fs, dir string, d Divergences) error {
	for i := range 30 {
		if err := writeFile(fsys, fmt.Sprintf("%s/a/b%d/f%02d.jpg", dir, i%4, i), bytes.Repeat([]byte{'y'}, i)); err != nil {
			return err
		}
	}
	if err := checkListAgrees(ctx, fsys, dir); err != nil {
		return err
	}
	return checkRemoveFiles(ctx, fsys, dir, d)
}

// checkListAgrees compares storage.List on fsys with the portable walk on
// fsys without its fast paths, over the 30 files checkFastPathsAgree
// wrote.
func checkListAgrees(ctx context.Context, fsys afero.Fs, dir string) error {
	collect := func(fsys afero.Fs) (map[string]storage.Entry, error) {
		m := map[string]storage.Entry{}
		err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
			if e.Type.IsRegular() {
				e.ModTime = e.ModTime.Truncate(time.Second)
				m[e.Path] = e
			}
			return nil
		})
		return m, err
	}
	fast, err := collect(fsys)
	if err != nil {
		return fmt.Errorf("storage.List: %v", err)
	}
	slow, err := collect(struct{ afero.Fs }{fsys})
	if err != nil {
		return fmt.Errorf("storage.List without fast paths: %v", err)
	}
	var errs []error
	if len(fast) != 30 {
		errs = append(errs, fmt.Errorf("storage.List found %d files, want 30", len(fast)))
	}
	for p, e := range slow {
		if f, ok := fast[p]; !ok || f.Size != e.Size || !f.ModTime.Equal(e.ModTime) {
			errs = append(errs, fmt.Errorf("storage.List with and without fast paths disagree on %q: %+v vs %+v", p, f, e))
		}
	}
	for p := range fast {
		if _, ok := slow[p]; !ok {
			errs = append(errs, fmt.Errorf("storage.List found %q, the portable walk did not", p))
		}
	}
	return errors.Join(errs...)
}

// checkConditionalRemove removes, with storage.RemoveFiles, a file
// listed with its ETag (which must go) and a file under an ETag it does
// not have: kept with storage.ErrChanged where the backend says, after the
// call, that its deletions are conditional ("batch" or "single"), removed
// where it says they are not ("none", or "" on backends without ETags).
func checkConditionalRemove(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	same, other := dir+"/same.jpg", dir+"/other.jpg"
	for _, p := range []string{same, other} {
		if err := writeFile(fsys, p, []byte("v1")); err != nil {
			return err
		}
	}
	etag := ""
	err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
		if e.Path == same {
			etag = e.ETag
		}
		return nil
	})
	if err != nil {
		return err
	}
	res := storage.RemoveFiles(ctx, fsys, []storage.Target{{Path: same, ETag: etag}, {Path: other, ETag: `"0123456789abcdef0123456789abcdef"`}})
	var errs []error
	if _, serr := fsys.Stat(same); res[0] != nil || !errors.Is(serr, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("RemoveFiles of a file with its own ETag %q: %v, and then Stat: %v", etag, res[0], serr))
	}
	_, serr := fsys.Stat(other)
	switch mode := storage.FeaturesOf(fsys).ConditionalDeletes; mode {
	case "batch", "single":
		if !errors.Is(res[1], storage.ErrChanged) || serr != nil {
			errs = append(errs, fmt.Errorf("conditional deletes %q, yet RemoveFiles under a wrong ETag gave %v, and then Stat %v", mode, res[1], serr))
		}
	default:
		if res[1] != nil || !errors.Is(serr, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("conditional deletes %q, yet RemoveFiles under a wrong ETag gave %v, and then Stat %v", mode, res[1], serr))
		}
	}
	return errors.Join(errs...)
}

// checkRemoveFiles removes an existing file, a missing one, a directory
// and another file with storage.RemoveFiles, and checks each result and
// what is left.
func checkRemoveFiles(ctx context.Context, fsys afero.Fs, dir string, d Divergences) error {
	paths := []string{dir + "/a/b0/f00.jpg", dir + "/a/b0/missing.jpg", dir + "/a/b1", dir + "/a/b2/f02.jpg"}
	targets := make([]storage.Target, len(paths))
	for i, p := range paths {
		targets[i] = storage.Target{Path: p}
	}
	res := storage.RemoveFiles(ctx, fsys, targets)
	if len(res) != len(paths) {
		return fmt.Errorf("RemoveFiles returned %d results for %d paths", len(res), len(paths))
	}
	var errs []error
	if res[0] != nil || res[3] != nil {
		errs = append(errs, fmt.Errorf("RemoveFiles of existing files: %v, %v", res[0], res[3]))
	}
	switch {
	case d.BatchRemoveBlind && (res[1] != nil || res[2] != nil):
		errs = append(errs, fmt.Errorf("declared BatchRemoveBlind, but RemoveFiles reported %v and %v for a missing file and a directory: remove the declaration", res[1], res[2]))
	case !d.BatchRemoveBlind && !errors.Is(res[1], fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("RemoveFiles of a missing file: %v, want fs.ErrNotExist", res[1]))
	case !d.BatchRemoveBlind && res[2] == nil:
		errs = append(errs, errors.New("RemoveFiles removed a directory"))
	}
	if fi, err := fsys.Stat(dir + "/a/b1/f01.jpg"); err != nil || fi.IsDir() {
		errs = append(errs, fmt.Errorf("a file inside the directory RemoveFiles refused is gone: %v", err))
	}
	for _, p := range []string{paths[0], paths[3]} {
		if _, err := fsys.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("after RemoveFiles %q is still there: %v", p, err))
		}
	}
	return errors.Join(errs...)
}

// checkNamesThenStats checks the names-first path the orphan finder takes:
// a listing that measures nothing finds what List finds, and Restat gives
// what List gave for the files it left unmeasured, skips a missing path
// and calls back with each path's own index.
func checkNamesThenStats(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	for i := range 12 {
		if err := writeFile(fsys, fmt.Sprintf("%s/n%d/f%02d.jpg", dir, i%3, i), bytes.Repeat([]byte{'z'}, i+1)); err != nil {
			return err
		}
	}
	full, err := regularFiles(ctx, fsys, dir)
	if err != nil {
		return err
	}
	unmeasured, errs, err := namesOnly(ctx, fsys, dir, full)
	if err != nil {
		return err
	}
	slices.Sort(unmeasured)
	paths := slices.Insert(slices.Clone(unmeasured), len(unmeasured)/2, dir+"/n0/missing.jpg")
	errs = append(errs, checkRestat(ctx, fsys, paths, len(unmeasured), full))
	return errors.Join(errs...)
}

// namesOnly lists dir measuring nothing, compares what it finds with
// full, and returns the paths it left unmeasured.
func namesOnly(ctx context.Context, fsys afero.Fs, dir string, full map[string]storage.Entry) (unmeasured []string, errs []error, err error) {
	names := 0
	if err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir, Measure: func(string) bool { return false }}, func(e storage.Entry) error {
		if !e.Type.IsRegular() {
			return nil
		}
		names++
		want, ok := full[e.Path]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("a names-only listing found %q, List did not", e.Path))
		case e.ModTime.IsZero():
			unmeasured = append(unmeasured, e.Path)
		case e.Size != want.Size || !e.ModTime.Equal(want.ModTime):
			errs = append(errs, fmt.Errorf("a names-only listing and List disagree on %q: %+v vs %+v", e.Path, e, want))
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("storage.List, names only: %v", err)
	}
	if names != len(full) {
		errs = append(errs, fmt.Errorf("a names-only listing found %d files, List %d", names, len(full)))
	}
	return unmeasured, errs, nil
}

// checkRestat restats paths (existing files but one) and checks each
// callback against full, and that an error from the callback stops it.
func checkRestat(ctx context.Context, fsys afero.Fs, paths []string, existing int, full map[string]storage.Entry) error {
	var errs []error
	seen := map[int]bool{}
	if err := storage.Restat(ctx, fsys, paths, func(i int, e storage.Entry) error {
		want, ok := full[e.Path]
		switch {
		case seen[i]:
			errs = append(errs, fmt.Errorf("storage.Restat reported index %d twice", i))
		case i < 0 || i >= len(paths) || paths[i] != e.Path:
			errs = append(errs, fmt.Errorf("storage.Restat reported %q at index %d", e.Path, i))
		case !ok:
			errs = append(errs, fmt.Errorf("storage.Restat reported %q, which List did not find", e.Path))
		case e.Size != want.Size || !e.ModTime.Equal(want.ModTime) || !e.Type.IsRegular():
			errs = append(errs, fmt.Errorf("storage.Restat and List disagree on %q: %+v vs %+v", e.Path, e, want))
		}
		seen[i] = true
		return nil
	}); err != nil {
		return fmt.Errorf("storage.Restat: %v", err)
	}
	if len(seen) != existing {
		errs = append(errs, fmt.Errorf("storage.Restat reported %d of %d existing files", len(seen), existing))
	}
	stop := errors.New("stop")
	if len(paths) > 1 {
		if err := storage.Restat(ctx, fsys, paths, func(int, storage.Entry) error { return stop }); !errors.Is(err, stop) {
			errs = append(errs, fmt.Errorf("storage.Restat returned %v, not the error of its callback", err))
		}
	}
	return errors.Join(errs...)
}

// checkRangeListing checks that a key-range List (ListOptions.From and
// To) reports every file between its
// bounds, inclusive, with what List reports for it: including the bounds
// themselves, names that share a prefix with them, and a range of one.
func checkRangeListing(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	names := []string{"a/0.jpg", "a/1.jpg", "a/10.jpg", "a/1.jpgx", "a/2.jpg", "b/0.jpg", "b/1.jpg"}
	for i, n := range names {
		if err := writeFile(fsys, dir+"/"+n, bytes.Repeat([]byte{'r'}, i+1)); err != nil {
			return err
		}
	}
	full, err := regularFiles(ctx, fsys, dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range [][2]string{{"a/1.jpg", "a/2.jpg"}, {"a/0.jpg", "b/1.jpg"}, {"a/10.jpg", "a/10.jpg"}, {"a/3.jpg", "a/9.jpg"}} {
		first, last := dir+"/"+r[0], dir+"/"+r[1]
		got := map[string]storage.Entry{}
		if err := storage.List(ctx, fsys, storage.ListOptions{From: first, To: last}, func(e storage.Entry) error {
			if e.Type.IsRegular() {
				got[e.Path] = e
			}
			return nil
		}); err != nil {
			return fmt.Errorf("storage.List from %q to %q: %v", r[0], r[1], err)
		}
		for p, want := range full {
			e, ok := got[p]
			switch {
			case p >= first && p <= last && !ok:
				errs = append(errs, fmt.Errorf("storage.List from %q to %q missed %q", r[0], r[1], p))
			case ok && (p < first || p > last):
				errs = append(errs, fmt.Errorf("storage.List from %q to %q reported %q, outside the range", r[0], r[1], p))
			case ok && (e.Size != want.Size || !e.ModTime.Equal(want.ModTime)):
				errs = append(errs, fmt.Errorf("a key-range List and List disagree on %q: %+v vs %+v", p, e, want))
			}
		}
	}
	return errors.Join(errs...)
}

// regularFiles lists the regular files below dir with storage.List.
func regularFiles(ctx context.Context, fsys afero.Fs, dir string) (map[string]storage.Entry, error) {
	files := map[string]storage.Entry{}
	err := storage.List(ctx, fsys, storage.ListOptions{Dir: dir}, func(e storage.Entry) error {
		if e.Type.IsRegular() {
			files[e.Path] = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage.List: %v", err)
	}
	return files, nil
}

// checkSortedListing stores names chosen to trip a listing that sorts by
// name alone (files "a-b", "a.b" and "a0" beside a directory "a/",
// every key character in file and directory names) and checks that a
// sorted List gives every regular file of an unsorted one, exactly once,
// in byte order of the full path, over the whole tree, one directory and
// key ranges; that a directory, where reported, comes before what it
// holds; and that List stops at a callback's error.
func checkSortedListing(ctx context.Context, fsys afero.Fs, dir string, _ Divergences) error {
	names := append(keyNames(), "p/a", "p/a-b", "p/a.b", "p/a0", "q/a-b", "q/a.b", "q/a/w", "q/a/x-y/z",
		"q/a/x.y", "q/a/x/y", "q/a/x0", "q/a0", "q/ab/c", "\u00e9/x", "e/x", "z/a/b/c/d")
	for i, n := range names {
		if err := writeFile(fsys, dir+"/"+n, []byte{byte(i)}); err != nil {
			return err
		}
	}
	full, err := regularFiles(ctx, fsys, dir)
	if err != nil {
		return err
	}
	all := slices.Sorted(maps.Keys(full))
	var errs errList
	sorted := func(opts storage.ListOptions) []string {
		var files []string
		err := storage.List(ctx, fsys, opts, func(e storage.Entry) error {
			if e.Type.IsDir() {
				// A directory, where reported, comes before its contents.
				for _, f := range files {
					if strings.HasPrefix(f, e.Path+"/") {
						errs.add("sorted List gave %q before its directory", f)
					}
				}
			} else if e.Type.IsRegular() {
				files = append(files, e.Path)
			}
			return nil
		})
		if err != nil {
			errs.add("sorted List %+v: %v", opts, err)
		}
		return files
	}
	inRange := func(first, last string) []string {
		var want []string
		for _, p := range all {
			if p >= first && p <= last {
				want = append(want, p)
			}
		}
		return want
	}
	if got := sorted(storage.ListOptions{Dir: dir, Sorted: true}); !slices.Equal(got, all) {
		errs.add("sorted List of the tree: %d paths, want %d; %s", len(got), len(all), firstDiff(got, all))
	}
	sub := dir + "/q/a"
	want := slices.DeleteFunc(slices.Clone(all), func(p string) bool { return !strings.HasPrefix(p, sub+"/") })
	if got := sorted(storage.ListOptions{Dir: sub, Sorted: true}); !slices.Equal(got, want) {
		errs.add("sorted List of %q: %s", sub, firstDiff(got, want))
	}
	for _, r := range [][2]string{{"p/a", "q/a/x/y"}, {"q/a-b", "q/a0"}, {"d", "e"}, {"q/a/x0", "z"}} {
		first, last := dir+"/"+r[0], dir+"/"+r[1]
		if got, want := sorted(storage.ListOptions{From: first, To: last, Sorted: true}), inRange(first, last); !slices.Equal(got, want) {
			errs.add("sorted List from %q to %q: %s", r[0], r[1], firstDiff(got, want))
		}
	}
	// A callback's error stops the listing.
	stop := errors.New("stop")
	n := 0
	err = storage.List(ctx, fsys, storage.ListOptions{Dir: dir, Sorted: true}, func(storage.Entry) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		errs.add("sorted List after a callback's error: %v after %d calls, want stop after 3", err, n)
	}
	return errs.err()
}

// firstDiff describes where got first differs from want.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("entry %d is %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("%d more than wanted, from %q", len(got)-len(want), got[len(want)])
	}
	if len(got) < len(want) {
		return fmt.Sprintf("%d missing, from %q", len(want)-len(got), want[len(got)])
	}
	return "equal"
}
