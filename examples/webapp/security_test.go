package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

// do sends a form POST to path with extra headers and returns the status.
func (e *env) do(method, path string, values url.Values, header map[string]string) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(values.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	require.NoError(e.t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// A form on another site that the operator's browser submits (CSRF) is
// refused, whether the browser says so with Sec-Fetch-Site or only with
// Origin, and changes nothing; the app's own forms still work.
func TestCrossSiteFormsAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	orphan := "profile_pics/0123456789abcdef0123456789abcdef.png"
	storagetest.WriteFile(t, e.fs, orphan, png("orphan"), time.Now().AddDate(0, 0, -3))
	// The operator ran the dry run: a plan waits to be applied.
	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/orphans", url.Values{"action": {"find"}}).StatusCode)
	before := storagetest.Files(t, e.fs)
	require.Contains(t, before, orphan)

	attacks := []struct {
		path   string
		values url.Values
	}{
		{"/delete/users/1", nil},
		{"/admin/orphans", url.Values{"action": {"apply"}}},
		{"/qr/1", nil},
		{"/admin/sweep", nil},
		{"/users", url.Values{"name": {"mallory"}}},
	}
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1.nip.io"},
		{"Origin": "https://evil.example"}, // a browser without Sec-Fetch-Site
		{"Origin": "null"},                 // a sandboxed frame
	} {
		for _, a := range attacks {
			assert.Equal(t, http.StatusForbidden, e.do("POST", a.path, a.values, h), "%s with %v", a.path, h)
		}
	}
	assert.Equal(t, before, storagetest.Files(t, e.fs), "no file changed")
	var users int
	require.NoError(t, e.db.QueryRow(`SELECT count(*) FROM users`).Scan(&users))
	assert.Equal(t, 1, users, "no user deleted or added")

	// The app's own form: same-origin, as a browser sends it.
	same := map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.url}
	assert.Equal(t, http.StatusSeeOther, e.do("POST", "/admin/orphans", url.Values{"action": {"apply"}}, same))
	assert.NotContains(t, storagetest.Files(t, e.fs), orphan)
	assert.Equal(t, http.StatusSeeOther, e.do("POST", "/delete/users/1", nil, map[string]string{"Origin": e.url}))
	assert.Empty(t, e.inSync("a same-origin delete"))
}

// DNS rebinding: a page on evil.example whose name now points at
// 127.0.0.1 talks to the app as evil.example. Its requests carry that Host
// (and a matching Origin, which the cross-origin check alone would let
// through): they are refused, reads included.
func TestForeignHostIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	before := e.inSync("setup")
	port := e.port()
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port, "127.0.0.1.nip.io:" + port, "192.168.1.10:" + port} {
		h := map[string]string{"Host": host, "Origin": "http://" + host}
		assert.Equal(t, http.StatusMisdirectedRequest, e.do("POST", "/delete/users/1", nil, h), host)
		assert.Equal(t, http.StatusMisdirectedRequest, e.do("GET", "/", nil, h), host)
		assert.Equal(t, http.StatusMisdirectedRequest, e.do("GET", "/media/"+before[0], nil, h), host)
	}
	assert.Equal(t, before, e.inSync("requests with foreign hosts"))
	// Bound to loopback: the address's host, localhost names and loopback IPs.
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost.:" + port, "app.localhost:" + port, "[::1]:" + port, "127.0.0.2:" + port} {
		assert.Equal(t, http.StatusOK, e.do("GET", "/", nil, map[string]string{"Host": host}), host)
	}
}

// -allowed-hosts adds names (a reverse proxy's, a LAN name) to the ones
// the address allows.
func TestAllowedHostsFlag(t *testing.T) {
	t.Parallel()
	e := newEnvConfig(t, func(c *config) { c.allowedHosts = []string{"media.example.org", "Box.LAN:8080"} })
	for host, code := range map[string]int{
		"media.example.org":        http.StatusOK,
		"media.example.org:443":    http.StatusOK,
		"box.lan:" + e.port():      http.StatusOK,
		"evil.example":             http.StatusMisdirectedRequest,
		"example.org":              http.StatusMisdirectedRequest,
		"x.media.example.org":      http.StatusMisdirectedRequest,
		"localhost:" + e.port():    http.StatusOK,
		"127.0.0.1:" + e.port():    http.StatusOK,
		"media.example.org.evil.x": http.StatusMisdirectedRequest,
	} {
		assert.Equal(t, code, e.do("GET", "/", nil, map[string]string{"Host": host}), host)
	}
}

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr    string
		allowed []string
		refused []string
	}{
		{"127.0.0.1:8080",
			[]string{"127.0.0.1:8080", "127.0.0.1", "localhost", "a.localhost:1", "[::1]:8080", "127.1.2.3"},
			[]string{"evil.example", "10.0.0.1", "[fe80::1]", "localhost.evil.example", "0x7f.1", ""}},
		{"localhost:8080",
			[]string{"localhost:8080", "127.0.0.1", "[::1]"},
			[]string{"evil.example", "10.0.0.1"}},
		{"[::1]:8080",
			[]string{"[::1]:8080", "localhost", "127.0.0.1"},
			[]string{"evil.example"}},
		// One non-loopback address: that address only.
		{"192.168.1.5:8080",
			[]string{"192.168.1.5:8080", "192.168.1.5"},
			[]string{"localhost", "127.0.0.1", "192.168.1.6", "evil.example"}},
		{"app.example:8080",
			[]string{"app.example", "APP.example.:8080"},
			[]string{"localhost", "127.0.0.1", "evil.example", "x.app.example"}},
		// Every interface: loopback, and IP literals (a rebinding page's
		// Host is its name, never an IP); names only by -allowed-hosts.
		{":8080",
			[]string{"localhost:8080", "127.0.0.1", "192.168.1.5:8080", "[2001:db8::1]:8080"},
			[]string{"evil.example", "myhost", ""}},
		{"0.0.0.0:8080",
			[]string{"localhost", "10.1.2.3"},
			[]string{"evil.example"}},
	} {
		p, err := newHostPolicy(c.addr, nil)
		require.NoError(t, err, c.addr)
		for _, h := range c.allowed {
			assert.True(t, p.allows(h), "bound to %s, Host %q must be allowed", c.addr, h)
		}
		for _, h := range c.refused {
			assert.False(t, p.allows(h), "bound to %s, Host %q must be refused", c.addr, h)
		}
	}
	for _, bad := range []string{"", "a b", "http://x.example", "x.example/path", "*"} {
		_, err := newHostPolicy("127.0.0.1:8080", []string{bad})
		assert.Error(t, err, "-allowed-hosts %q", bad)
	}
}
