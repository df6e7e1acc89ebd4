package s3test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Proxy is an HTTP proxy in front of a Server that can hold chosen
// requests without ever answering them, or answer them with an S3 error,
// for tests of deadlines and failures. Every other request goes through
// to the server.
type Proxy struct {
	Endpoint string // http://127.0.0.1:PORT

	srv  *httptest.Server
	tr   *http.Transport
	done chan struct{}

	mu    sync.Mutex
	rules []rule
}

// rule stalls the requests match accepts (status 0) or fails them.
type rule struct {
	match  func(*http.Request) bool
	status int
	code   string
}

// Proxy starts a proxy in front of s, closed when tb's test ends.
func (s *Server) Proxy(tb testing.TB) *Proxy {
	tb.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		tb.Fatalf("s3test: %v", err)
	}
	p := &Proxy{tr: &http.Transport{}, done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = p.tr
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client giving up is expected
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ru, ok := p.rule(r)
		switch {
		case !ok:
			// The client signs the Host header it sends, which is the
			// proxy's: pass it on as it is.
			rp.ServeHTTP(w, r)
		case ru.status == 0:
			select {
			case <-r.Context().Done():
			case <-p.done:
			}
		default:
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(ru.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>injected by s3test.Proxy</Message><RequestId>s3test</RequestId></Error>`, ru.code)
		}
	}))
	p.Endpoint = p.srv.URL
	tb.Cleanup(p.close)
	return p
}

func (p *Proxy) close() {
	close(p.done)
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

func (p *Proxy) rule(r *http.Request) (rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ru := range p.rules {
		if ru.match(r) {
			return ru, true
		}
	}
	return rule{}, false
}

// Client returns an S3 client that goes through the proxy. counter, when
// not nil, counts the HTTP requests it sends.
func (p *Proxy) Client(counter *Counter) *s3.Client { return newClient(p.Endpoint, counter) }

// Stall makes the proxy hold every request match accepts without
// answering, until the client gives up or the test ends.
func (p *Proxy) Stall(match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rule{match: match})
}

// Fail makes the proxy answer every request match accepts with an S3
// error: the HTTP status, and code as the error's Code.
func (p *Proxy) Fail(match func(*http.Request) bool, status int, code string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, rule{match: match, status: status, code: code})
}

// Reset drops every Stall and Fail: requests go through again.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Is returns a matcher, for Stall and Fail, of the requests whose Kind is
// one of kinds.
func Is(kinds ...string) func(*http.Request) bool {
	return func(r *http.Request) bool { return slices.Contains(kinds, Kind(r)) }
}

// Kind names the S3 operation of a request, as Counter counts them:
// "list" (ListObjectsV2), "delete-batch" (DeleteObjects), "copy"
// (CopyObject), "create-multipart", "upload-part", "complete-multipart",
// "abort-multipart", "list-multipart" (ListMultipartUploads), and
// otherwise by method: "head", "get", "put", "delete", "other".
func Kind(r *http.Request) string {
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet:
		switch {
		case q.Get("list-type") == "2":
			return "list"
		case q.Has("uploads"):
			return "list-multipart"
		}
		return "get"
	case http.MethodPost:
		switch {
		case q.Has("delete"):
			return "delete-batch"
		case q.Has("uploads"):
			return "create-multipart"
		case q.Has("uploadId"):
			return "complete-multipart"
		}
	case http.MethodPut:
		switch {
		case q.Has("uploadId"):
			return "upload-part"
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return "copy"
		}
		return "put"
	case http.MethodDelete:
		if q.Has("uploadId") {
			return "abort-multipart"
		}
		return "delete"
	case http.MethodHead:
		return "head"
	}
	return "other"
}
