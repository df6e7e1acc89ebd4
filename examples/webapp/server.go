package main

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// openDB opens the SQLite database at path with the connection settings
// the service relies on: WAL, enforced foreign keys, and transactions that
// take the write lock when they begin (_txlock=immediate), waiting up to
// the busy timeout for it. A deferred transaction that reads, then writes,
// fails at once with "database is locked" when another wrote since its
// read began (SQLite cannot wait for that, the busy timeout does not
// apply); an immediate one waits its turn at BEGIN. Every transaction here
// writes, and each is short: files are stored before it opens.
func openDB(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
}

// defaultBodyTimeout is how long a client may take to send a request,
// its body included: 10 MiB at about 170 KiB/s.
const defaultBodyTimeout = time.Minute

// Server returns the HTTP server run serves the application with. Every
// request goes through, in order: the Host check (DNS rebinding) and the
// cross-origin check (CSRF), then the routes.
func (a *App) Server(cfg config) (*http.Server, error) {
	hosts, err := newHostPolicy(cfg.addr, cfg.allowedHosts)
	if err != nil {
		return nil, err
	}
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.WarnContext(r.Context(), "cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		errorPage(w, http.StatusForbidden, "Forms from other sites are refused.")
	}))
	routes := a.Routes()
	// Every body is bounded: by the largest form with a file here, and
	// by each route's own, smaller limit in its handler.
	var maxBody int64
	for _, k := range a.kinds {
		maxBody = max(maxBody, k.maxSize+formAllowance)
	}
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := limitBody(w, r, maxBody); err != nil {
			a.fail(w, r, err)
			return
		}
		routes.ServeHTTP(w, r)
	}))
	h = csrf.Handler(h)
	h = hosts.handler(a, h)
	h = securityHeaders(h)
	bodyTimeout := cfg.bodyTimeout
	if bodyTimeout <= 0 {
		bodyTimeout = defaultBodyTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// A request, body included, gets bodyTimeout; a stalled upload
		// then fails its read, and its pending file is removed.
		ReadTimeout: bodyTimeout,
		// The response is due within a minute after the body.
		WriteTimeout: bodyTimeout + time.Minute,
		IdleTimeout:  2 * time.Minute,
	}, nil
}

// pagePolicy is the pages' Content-Security-Policy: their own images and
// stylesheet (no inline style, no script at all), forms that post to the app, and no framing (a framed
// delete or apply button could be clicked by a user who sees another
// page: clickjacking). /media/ sets its own, stricter one.
const pagePolicy = "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", pagePolicy)
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// hostPolicy says which Host headers the server answers. A page whose DNS
// name an attacker points at 127.0.0.1 (DNS rebinding) is same-origin
// with itself, so the cross-origin check lets its requests through; its
// Host header still carries the attacker's name, and that is refused.
type hostPolicy struct {
	names    map[string]bool // lowercase, without port or trailing dot
	loopback bool            // localhost names and loopback IPs
	anyIP    bool            // any IP literal: a rebinding page's Host is a name
}

// newHostPolicy allows the host of addr, and extra names (-allowed-hosts,
// "name" or "name:port"; the port is ignored). Bound to loopback
// (127.0.0.1, ::1, localhost), it also allows localhost names and loopback
// IPs; bound to every interface (":8080", "0.0.0.0:8080"), those and any IP
// literal, since the names the machine is reached by are not known: give
// them with -allowed-hosts.
func newHostPolicy(addr string, extra []string) (*hostPolicy, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %q: %w", addr, err)
	}
	p := &hostPolicy{names: map[string]bool{}}
	switch h := normHost(host); {
	case h == "":
		p.loopback, p.anyIP = true, true
	case isLocalhostName(h):
		p.loopback = true
	default:
		if ip, err := netip.ParseAddr(h); err == nil {
			p.anyIP = ip.IsUnspecified()
			p.loopback = ip.Unmap().IsLoopback() || p.anyIP
		}
		p.names[h] = true
	}
	for _, e := range extra {
		h := e
		if hh, port, err := net.SplitHostPort(e); err == nil {
			if _, err := strconv.ParseUint(port, 10, 16); err != nil {
				return nil, fmt.Errorf("-allowed-hosts: %q: bad port", e)
			}
			h = hh
		}
		h = normHost(h)
		if !validHostName(h) {
			return nil, fmt.Errorf("-allowed-hosts: %q is not a host name (a name or IP, with an optional port)", e)
		}
		p.names[h] = true
	}
	return p, nil
}

// allows reports whether a request's Host header (host or host:port) is
// one the server answers to.
func (p *hostPolicy) allows(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normHost(host)
	switch {
	case host == "":
		return false
	case p.names[host]:
		return true
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.anyIP || (p.loopback && ip.Unmap().IsLoopback())
	}
	return p.loopback && isLocalhostName(host)
}

func (p *hostPolicy) handler(a *App, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allows(r.Host) {
			a.log.WarnContext(r.Context(), "request for a foreign host refused", "host", r.Host, "path", r.URL.Path)
			w.Header().Set("Connection", "close")
			errorPage(w, http.StatusMisdirectedRequest, "This server does not answer to that host name.")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// normHost lowercases a host, drops IPv6 brackets and a trailing dot.
func normHost(h string) string {
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(h, ".")
}

// isLocalhostName: browsers resolve localhost and *.localhost to loopback
// themselves (RFC 6761), so no DNS answer can point them elsewhere.
func isLocalhostName(h string) bool {
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// validHostName accepts an IP literal or a DNS name of letters, digits,
// hyphens and dots.
func validHostName(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}
