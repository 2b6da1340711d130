package testsrv

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// PGProxy is a TCP proxy in front of a PostgreSQL server that decodes what
// clients send (pgx's pgproto3) to count connections, statements and round
// trips: what a session costs the server, seen from the wire.
type PGProxy struct {
	mu         sync.Mutex
	conns      int
	statements []string
	roundTrips int
}

// NewPGProxy starts a proxy to the server of rawURL, stopped when the test
// ends, and returns it with rawURL pointed at it.
func NewPGProxy(t testing.TB, rawURL string) (*PGProxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	server := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &PGProxy{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
			go p.serve(c, server)
		}
	}()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *PGProxy) serve(c net.Conn, server string) {
	defer c.Close()
	s, err := net.Dial("tcp", server)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { io.Copy(c, s); c.Close() }()
	// Every byte read from the client goes on to the server as it is read;
	// the decoder only watches. It frames messages itself (a type byte and
	// a length, after an untyped startup) and lets pgproto3 decode the ones
	// it counts.
	r := bufio.NewReader(io.TeeReader(c, s))
	next := func(typed bool) (byte, []byte, error) {
		var head [5]byte
		h := head[1:]
		if typed {
			h = head[:]
		}
		if _, err := io.ReadFull(r, h); err != nil {
			return 0, nil, err
		}
		n := int(binary.BigEndian.Uint32(h[len(h)-4:])) - 4
		if n < 0 || n > 1<<26 {
			return 0, nil, fmt.Errorf("not the PostgreSQL protocol")
		}
		body := make([]byte, n)
		_, err := io.ReadFull(r, body)
		return head[0], body, err
	}
	for {
		_, body, err := next(false)
		if err != nil {
			io.Copy(io.Discard, r) // keep forwarding (e.g. after TLS was accepted)
			return
		}
		if len(body) >= 4 {
			if code := binary.BigEndian.Uint32(body); code == sslRequest || code == gssEncRequest {
				continue // refused by the test servers; the startup follows
			}
		}
		break
	}
	for {
		typ, body, err := next(true)
		if err != nil {
			io.Copy(io.Discard, r)
			return
		}
		p.mu.Lock()
		switch typ {
		case 'P':
			var m pgproto3.Parse
			if m.Decode(body) == nil {
				p.statements = append(p.statements, m.Query)
			}
		case 'Q':
			var m pgproto3.Query
			if m.Decode(body) == nil {
				p.statements = append(p.statements, m.String)
			}
			p.roundTrips++
		case 'S':
			p.roundTrips++
		}
		p.mu.Unlock()
	}
}

// The startup codes of SSLRequest and GSSENCRequest.
const (
	sslRequest    = 80877103
	gssEncRequest = 80877104
)

// Connections counts the TCP connections made through the proxy.
func (p *PGProxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// Statements lists the SQL clients sent (each Parse and simple Query).
func (p *PGProxy) Statements() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.statements...)
}

// RoundTrips counts the messages a client waits on the server's answer
// after: each Sync of the extended protocol and each simple Query.
func (p *PGProxy) RoundTrips() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.roundTrips
}

// Reset forgets what was counted so far.
func (p *PGProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns, p.statements, p.roundTrips = 0, nil, 0
}
