package main

// From a red-team pass on the example app: each test asserts the safe,
// documented behaviour.

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// README: ages are "90m, 36h, 7d or 2w everywhere (the example app too),
// and 0 turns a limit or the grace period off". The app's -qr-age 0 and
// -sweep-every 0 are accepted by the flag parser and then crash the
// server with a Go panic and a stack trace (sweep.New refuses a rule of
// age 0; time.NewTicker a period of 0), after the database was opened
// and, for -sweep-every, after it said it runs. Either is a value to
// refuse with a usage message (or to honour as "off"), not a panic.
func TestZeroAgesAreRefusedNotPanics(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-qr-age", "0"}, {"-sweep-every", "0"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			code, stdout, stderr := runMain(t, ctx, append([]string{"-addr", "127.0.0.1:0", "-data", t.TempDir()}, args...)...)
			t.Logf("exit %d\nstdout: %s\nstderr: %.600s", code, stdout, stderr)
			assert.NotContains(t, stderr, "panic:", "%q crashes the server", args)
			assert.NotContains(t, stderr, "goroutine ", "%q crashes the server", args)
			assert.Equal(t, 1, code)
			assert.Contains(t, stderr, args[0]+" must be more than 0")
		})
	}
}

// An upload in flight (its file part half sent, its temp file on disk)
// for a user who is deleted meanwhile: a new picture for the user, a
// forum message by them, a donation by them. Each upload must fail,
// leave no file behind, and the media folder must hold exactly what the
// rows reference.
func TestUserDeletedWhileUploadInFlight(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ path, fields string }{
		{"/files/picture/1", ""},
		{"/files/signature/1", ""},
		{"/forum", "user_id=1&body=hi"},
		{"/donations", "user_id=1&amount=5"},
	} {
		t.Run(c.path, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
			require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "bob"}, png("bob"), "b.png"))
			pr, pw := io.Pipe()
			mw := multipart.NewWriter(pw)
			type answer struct {
				code int
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				req, _ := http.NewRequest("POST", e.url+c.path, pr)
				req.Header.Set("Content-Type", mw.FormDataContentType())
				resp, err := client.Do(req)
				if err != nil {
					done <- answer{0, err}
					return
				}
				resp.Body.Close()
				done <- answer{resp.StatusCode, nil}
			}()
			vals, _ := url.ParseQuery(c.fields)
			for k := range vals {
				require.NoError(t, mw.WriteField(k, vals.Get(k)))
			}
			fw, err := mw.CreateFormFile("file", "x.png")
			require.NoError(t, err)
			_, err = fw.Write(append(png("new"), make([]byte, 200<<10)...))
			require.NoError(t, err)
			require.Eventually(t, func() bool { return e.pendingFiles() > 0 }, 10*time.Second, 10*time.Millisecond, "no temp file")
			resp := e.postForm("/delete/users/1", url.Values{})
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			_, err = fw.Write(make([]byte, 10<<10))
			require.NoError(t, err)
			require.NoError(t, mw.Close())
			require.NoError(t, pw.Close())
			a := <-done
			require.NoError(t, a.err)
			assert.GreaterOrEqual(t, a.code, 400, "the upload for a deleted user must fail")
			e.inSync("an upload for a user deleted meanwhile")
		})
	}
}
