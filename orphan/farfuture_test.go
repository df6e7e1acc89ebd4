package orphan_test

import (
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
	"github.com/mediaclean/mediaclean/orphan"
)

// A file whose mtime is far in the future (past 2262, where nanoseconds
// since 1970 overflow 64 bits) or far in the past is planned with its own
// time: a future one is young and kept in both modes, a past one is an
// orphan with its real time.
func TestFarTimesKeepTheirMeaning(t *testing.T) {
	future := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	past := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, merge := range []bool{false, true} {
		mem := afero.NewMemMapFs()
		storagetest.WriteFile(t, mem, "a/future.png", []byte("f"), future)
		storagetest.WriteFile(t, mem, "a/past.png", []byte("p"), past)
		storagetest.WriteFile(t, mem, "a/ref.png", []byte("r"), past)
		plan, err := orphan.New(mem, orphan.Paths("a/ref.png"), orphan.Options{MaxFraction: -1, Merge: merge, TempDir: t.TempDir()}).Find(t.Context())
		require.NoError(t, err)
		require.Len(t, plan.Orphans, 1, "merge %v", merge)
		assert.Equal(t, "a/past.png", plan.Orphans[0].Path)
		assert.True(t, plan.Orphans[0].ModTime.Equal(past), "merge %v: %s", merge, plan.Orphans[0].ModTime)
		assert.Equal(t, 1, plan.Kept["young"].Files, "merge %v", merge)
	}
}
