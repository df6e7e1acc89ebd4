package orphan_test

import (
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/orphan"
)

// Found by a red-team pass. A dry-run Restore reported as restored files a real Restore cannot put
// back (path taken) and files that are no longer in the quarantine.
func TestDryRunRestoreClaimsOnlyWhatItCan(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	put(t, fsys, "pics/ref.jpg", 1, 10*day)
	put(t, fsys, "pics/a.jpg", 5, 10*day)
	put(t, fsys, "pics/b.jpg", 5, 10*day)
	f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, Quarantine: "trash", MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Quarantined.Files)
	put(t, fsys, "pics/a.jpg", 9, 0) // a new upload takes a's path
	require.NoError(t, fsys.Remove("trash/.mediaclean-quarantine/"+rep.QuarantineRun+"/pics/b.jpg"))

	dry, derr := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{DryRun: true}).Restore(t.Context(), rep.QuarantineRun)
	real, rerr := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), rep.QuarantineRun)
	assert.Equal(t, real.Restored, dry.Restored, "dry run says it would restore what the real one cannot")
	assert.Equal(t, rerr != nil, derr != nil, "real: %v, dry: %v", rerr, derr)
}

// Found by a red-team pass. A quarantined file lost from the quarantine while another file took its
// path is reported as "never moved, at its path" and Restore succeeds,
// though the file the run quarantined is gone.
func TestRestoreReportsAReplacedFileAsLost(t *testing.T) {
	t.Parallel()
	fsys := afero.NewMemMapFs()
	put(t, fsys, "pics/ref.jpg", 1, 10*day)
	put(t, fsys, "pics/a.jpg", 5, 10*day)
	f := orphan.New(fsys, orphan.Paths("pics/ref.jpg"), orphan.Options{Now: clock, Quarantine: "trash", MaxFraction: -1})
	plan, err := f.Find(t.Context())
	require.NoError(t, err)
	rep, err := f.Apply(t.Context(), plan)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Quarantined.Files)
	require.NoError(t, fsys.Remove("trash/.mediaclean-quarantine/"+rep.QuarantineRun+"/pics/a.jpg"))
	require.NoError(t, fsys.MkdirAll("pics/a.jpg", 0o755)) // a directory now
	got, err := orphan.NewQuarantine(fsys, "trash", orphan.QuarantineOptions{}).Restore(t.Context(), rep.QuarantineRun)
	assert.Error(t, err, "the quarantined file is lost; report: %+v", got)
}
