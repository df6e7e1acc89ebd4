package sqltest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CutProxy relays TCP connections to a database server and, once armed,
// lets the next COMMIT through to the server but drops the server's
// answer and closes the connection: the commit happens, and the client
// cannot know whether it did. Tests use it to show that a commit whose
// outcome is unknown keeps every file.
type CutProxy struct {
	ln     net.Listener
	target string
	armed  atomic.Bool
}

// NewCutProxy starts a proxy to target (host:port) on a loopback port;
// it stops when tb ends.
func NewCutProxy(tb testing.TB, target string) *CutProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &CutProxy{ln: ln, target: target}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.relay(c) })
		}
	})
	return p
}

// Addr is the proxy's address, host:port.
func (p *CutProxy) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// Arm makes the proxy cut the next COMMIT's answer on every connection.
func (p *CutProxy) Arm() { p.armed.Store(true) }

func (p *CutProxy) relay(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	var dropping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !dropping.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if p.armed.Load() && bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit")) {
				dropping.Store(true)
				server.Write(buf[:n])
				time.Sleep(300 * time.Millisecond) // the server commits
				break
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	server.Close()
	<-done
}
