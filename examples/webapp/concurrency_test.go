package main

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Parallel uploads for one user all succeed (none fails with "database is
// locked"), and the media folder then holds exactly the referenced files:
// each replace deletes the file the row held when it committed.
func TestParallelUploadsForOneUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	const n = 20
	codes := make([]string, 3*n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			code, body := e.postFile("/files/picture/1", nil, png(fmt.Sprint("p", i)), "p.png")
			codes[i] = fmt.Sprint(code, " ", body)
		})
		wg.Go(func() {
			code, body := e.postFile("/files/signature/1", nil, png(fmt.Sprint("s", i)), "s.png")
			codes[n+i] = fmt.Sprint(code, " ", body)
		})
		wg.Go(func() {
			code, body := e.postFile("/forum", map[string]string{"user_id": "1", "body": "hi"}, png(fmt.Sprint("f", i)), "f.png")
			codes[2*n+i] = fmt.Sprint(code, " ", body)
		})
	}
	wg.Wait()
	t.Logf("%d parallel uploads took %v", 3*n, time.Since(start).Round(time.Millisecond))
	for i, c := range codes {
		assert.Equal(t, "303 ", c[:min(len(c), 4)], "upload %d: %s", i, c)
	}
	refs := e.inSync("parallel uploads")
	assert.Len(t, refs, 2+n, "one picture, one signature, a forum image per message")
}
