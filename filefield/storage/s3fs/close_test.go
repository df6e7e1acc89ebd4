package s3fs_test

import (
	"io/fs"
	"net/http"
	"os"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/s3fs"
	"github.com/mediaclean/mediaclean/filefield/storage/s3fs/s3test"
)

// A create-only upload refused because the key exists (412, or AWS's 409
// ConditionalRequestConflict for a conditional write racing another)
// fails Close with fs.ErrExist, and nothing is deleted: the object there
// belongs to whoever won.
func TestCloseRefusedCreateIsErrExist(t *testing.T) {
	srv := s3test.Shared(t)
	for _, c := range []struct {
		status int
		code   string
	}{
		{http.StatusPreconditionFailed, "PreconditionFailed"},
		{http.StatusConflict, "ConditionalRequestConflict"},
	} {
		t.Run(c.code, func(t *testing.T) {
			p := srv.Proxy(t)
			var count s3test.Counter
			fsys := s3fs.New(p.Client(&count), srv.NewBucket(t), s3fs.Options{})
			f, err := fsys.OpenFile("x.png", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			require.NoError(t, err)
			require.NoError(t, afero.WriteFile(fsys, "x.png", []byte("winner"), 0o644), "another writer stores the key")
			p.Fail(s3test.Is("put"), c.status, c.code)
			count.Reset()
			f.Write([]byte("loser"))
			assert.ErrorIs(t, f.Close(), fs.ErrExist)
			assert.Zero(t, count.Get("delete")+count.Get("delete-batch"), "nothing deleted")
			p.Reset()
			got, err := afero.ReadFile(fsys, "x.png")
			require.NoError(t, err)
			assert.Equal(t, "winner", string(got))
		})
	}
}

// A Close that fails for any other reason, including a 412 on a write that
// was not create-only and a 409 that is not about the condition, returns
// an error that does not match fs.ErrExist, and stores nothing.
func TestCloseOtherFailureIsNotErrExist(t *testing.T) {
	srv := s3test.Shared(t)
	for _, c := range []struct {
		name   string
		flag   int
		status int
		code   string
	}{
		{"AccessDenied", os.O_EXCL, http.StatusForbidden, "AccessDenied"},
		{"InvalidRequest", os.O_EXCL, http.StatusBadRequest, "InvalidRequest"},
		{"OperationAborted", os.O_EXCL, http.StatusConflict, "OperationAborted"},
		{"PreconditionFailedNotExclusive", os.O_TRUNC, http.StatusPreconditionFailed, "PreconditionFailed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := srv.Proxy(t)
			fsys := s3fs.New(p.Client(nil), srv.NewBucket(t), s3fs.Options{})
			f, err := fsys.OpenFile("x.png", os.O_WRONLY|os.O_CREATE|c.flag, 0o644)
			require.NoError(t, err)
			p.Fail(s3test.Is("put"), c.status, c.code)
			f.Write([]byte("data"))
			err = f.Close()
			require.Error(t, err)
			assert.NotErrorIs(t, err, fs.ErrExist)
			assert.ErrorContains(t, err, c.code)
			p.Reset()
			_, err = fsys.Stat("x.png")
			assert.ErrorIs(t, err, fs.ErrNotExist)
		})
	}
}
