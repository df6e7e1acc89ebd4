package storagetest

import (
	"testing"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield/storage/rootfs"
)

// Backend is one kind of storage a behaviour suite runs on.
type Backend struct {
	// Name names the subtest: "RootFs", "OsFs", "MemMapFs", "S3", ...
	Name string
	// New returns a fresh, empty filesystem for t and registers its own
	// cleanup. Dir is the real directory that holds the files when there
	// is one (tests use it to plant links and special files), "" when
	// there is not.
	New func(t *testing.T) (fsys afero.Fs, dir string)
}

// OnDisk reports whether the backend keeps its files in a real directory.
func (b Backend) OnDisk() bool { return b.Name == "RootFs" || b.Name == "OsFs" }

// LocalBackends returns, in this order, the backends that need no server:
//
//   - "RootFs": rootfs.New over t.TempDir(), the production local backend;
//   - "OsFs": afero.BasePathFs over t.TempDir(), a local disk without
//     rootfs's protections (what a user who wires afero by hand has);
//   - "MemMapFs": afero.MemMapFs, which accepts things a disk refuses.
//
// Add a real object store (s3test.Backend) for the full matrix.
func LocalBackends() []Backend {
	return []Backend{
		{Name: "RootFs", New: func(t *testing.T) (afero.Fs, string) {
			dir := t.TempDir()
			rfs, err := rootfs.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rfs.Close() })
			return rfs, dir
		}},
		{Name: "OsFs", New: func(t *testing.T) (afero.Fs, string) {
			dir := t.TempDir()
			return afero.NewBasePathFs(afero.NewOsFs(), dir), dir
		}},
		{Name: "MemMapFs", New: func(*testing.T) (afero.Fs, string) { return afero.NewMemMapFs(), "" }},
	}
}

// ForEachBackend runs fn as a parallel subtest, named after the backend,
// on a fresh filesystem of each of backends. dir is the backend's real
// directory, "" when it has none.
func ForEachBackend(t *testing.T, backends []Backend, fn func(t *testing.T, fsys afero.Fs, dir string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fsys, dir := b.New(t)
			fn(t, fsys, dir)
		})
	}
}
