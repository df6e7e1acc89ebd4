package s3fs

import "github.com/mediaclean/mediaclean/filefield/storage"

// SetBeforeDelete sets the hook RemoveFiles calls just before its delete
// requests, after the storage layer's re-check and any probe.
func SetBeforeDelete(f *Fs, fn func([]storage.Target)) { f.beforeDelete = fn }

// SetPartKeys sets the keys a part of f's parallel listings aims at
// (4000 by default), for tests of many parts on small trees.
func SetPartKeys(f *Fs, n int) { f.partKeys = n }
