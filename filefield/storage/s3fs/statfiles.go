package s3fs

import (
	"context"
	"errors"
	"io/fs"

	"golang.org/x/sync/errgroup"

	"github.com/mediaclean/mediaclean/filefield/storage"
)

// statWorkers bounds the HEAD requests StatFiles has in flight at once.
const statWorkers = 16

// StatFiles implements storage.Stater: one HeadObject per path, up to 16
// at once, and for each object that exists an Entry with its size, time
// and ETag. The ETag is what a stat through afero loses: with it, a
// re-check of a few files (storage.Restat) makes their deletion
// conditional on what it saw, as the re-check by listing of many does. A
// path that names a virtual directory is reported as one; a missing path
// is skipped. fn is called on the caller's goroutine, in path order.
func (f *Fs) StatFiles(ctx context.Context, paths []string, fn func(i int, e storage.Entry) error) error {
	found := make([]*fileInfo, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(statWorkers)
	for i, p := range paths {
		g.Go(func() error {
			fi, err := f.stat(gctx, p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			found[i] = fi
			return err
		})
	}
	if err := g.Wait(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return err
	}
	for i, fi := range found {
		if fi == nil {
			continue
		}
		e := storage.Entry{Path: paths[i], ModTime: fi.mod, Type: fi.Mode().Type(), ETag: fi.etag}
		if !fi.isDir {
			e.Size = fi.size
		}
		if err := fn(i, e); err != nil {
			return err
		}
	}
	return nil
}
