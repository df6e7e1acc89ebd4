package filefield_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

func multipartRequest(t *testing.T, field, filename string, body []byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	require.NoError(t, w.WriteField("note", "hello"))
	if field != "" {
		fw, err := w.CreateFormFile(field, filename)
		require.NoError(t, err)
		fw.Write(body)
	}
	require.NoError(t, w.Close())
	r := httptest.NewRequest(http.MethodPost, "/upload", &buf)
	r.Header.Set("Content-Type", w.FormDataContentType())
	return r
}

func TestFormFile(t *testing.T) {
	t.Parallel()
	storagetest.ForEachBackend(t, backends, func(t *testing.T, fsys afero.Fs, _ string) {
		f := filefield.New("pics", fsys, filefield.Options{Dir: "pics/{owner}", MaxSize: 100})
		ctx := t.Context()

		ch, err := f.FormFile(ctx, multipartRequest(t, "picture", "../../me.png", png("a")), "picture", "", "7")
		require.NoError(t, err)
		assert.Regexp(t, `^pics/7/[0-9a-f]{32}\.png$`, ch.New)
		ch.Commit(ctx)

		_, err = f.FormFile(ctx, multipartRequest(t, "picture", "big.png", append(png("b"), make([]byte, 200)...)), "picture", ch.New, "7")
		assert.ErrorIs(t, err, filefield.ErrTooLarge)
		_, err = f.FormFile(ctx, multipartRequest(t, "picture", "x.png", []byte("<html>")), "picture", ch.New, "7")
		assert.ErrorIs(t, err, filefield.ErrTypeNotAllowed)
		_, err = f.FormFile(ctx, multipartRequest(t, "picture", "x.png", nil), "picture", ch.New, "7")
		assert.ErrorIs(t, err, filefield.ErrEmpty)
		_, err = f.FormFile(ctx, multipartRequest(t, "", "", nil), "picture", ch.New, "7")
		assert.ErrorIs(t, err, http.ErrMissingFile)
		_, err = f.FormFile(ctx, multipartRequest(t, "picture", "x.png", png("c")), "picture", "../etc/passwd", "7")
		assert.ErrorIs(t, err, filefield.ErrUnsafePath)
		assert.Equal(t, []string{ch.New}, files(t, fsys), "rejections left nothing behind")

		// FileHeader: a parsed form, with a header that declares too much.
		r := multipartRequest(t, "picture", "b.png", png("d"))
		require.NoError(t, r.ParseMultipartForm(1<<20))
		fh := r.MultipartForm.File["picture"][0]
		ch2, err := f.FileHeader(ctx, fh, ch.New, "7")
		require.NoError(t, err)
		assert.Equal(t, []string{ch.New}, ch2.Commit(ctx).Deleted)
		fh.Size = 1000
		_, err = f.FileHeader(ctx, fh, ch2.New, "7")
		assert.ErrorIs(t, err, filefield.ErrTooLarge)
		assert.Equal(t, []string{ch2.New}, files(t, fsys))
	})
}
