package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// A posters is the pool of keep-alive connections posts go out on. It writes
// each request as bytes and reads the answer's status and body, instead of
// going through net/http's client: on two shared cores the load generator's
// CPU per post is taken from the server's, and net/http's client cost about
// 40 µs per post (its transport's goroutines, header maps and body readers)
// where this costs about a third. The server still parses every request in
// full; only the generator is leaner. Other requests (logins, heads, the
// socket upgrades) keep net/http.
type posters struct {
	host string // host:port of the server
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle []*postConn // guarded by mu
}

type postConn struct {
	c    net.Conn
	br   *bufio.Reader
	req  []byte    // the request being written, reused
	used time.Time // when it was last given back
}

// maxIdle is how long a connection may wait unused before it is dropped
// rather than reused: well under the server's idle timeout (2 min), so that
// a post never goes out on a connection the server is closing.
const maxIdle = 30 * time.Second

func newPosters(base string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*posters, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("posters: %q is not an http:// URL", base)
	}
	return &posters{host: u.Host, dial: dial}, nil
}

// errPostTimeout ends a post whose answer took longer than postTimeout.
var errPostTimeout = errors.New("no answer within 30s")

const postTimeout = 30 * time.Second

// post sends a POST of body (JSON) to path with token and returns the answer's
// status and body. A connection that failed or was told to close is dropped;
// the next post dials a new one.
func (p *posters) post(ctx context.Context, path, token, body string) (int, []byte, error) {
	pc, err := p.get(ctx)
	if err != nil {
		return 0, nil, err
	}
	pc.c.SetDeadline(time.Now().Add(postTimeout))
	// After the deadline above, so that a ctx already done wins over it.
	stop := context.AfterFunc(ctx, func() { pc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	b := pc.req[:0]
	b = append(b, "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, p.host...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	pc.req = b
	if _, err := pc.c.Write(b); err != nil {
		pc.c.Close()
		return 0, nil, err
	}
	status, out, keep, err := readAnswer(pc.br)
	if err != nil {
		pc.c.Close()
		if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
			err = errPostTimeout
		}
		return 0, nil, err
	}
	if keep {
		p.put(pc)
	} else {
		pc.c.Close()
	}
	return status, out, nil
}

func (p *posters) get(ctx context.Context) (*postConn, error) {
	p.mu.Lock()
	for n := len(p.idle); n > 0; n-- {
		pc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if time.Since(pc.used) < maxIdle {
			p.mu.Unlock()
			return pc, nil
		}
		pc.c.Close()
	}
	p.mu.Unlock()
	c, err := p.dial(ctx, "tcp", p.host)
	if err != nil {
		return nil, err
	}
	return &postConn{c: c, br: bufio.NewReaderSize(c, 4096)}, nil
}

func (p *posters) put(pc *postConn) {
	pc.used = time.Now()
	p.mu.Lock()
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

// close closes the idle connections (the server's file descriptors count).
func (p *posters) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.idle {
		pc.c.Close()
	}
	p.idle = nil
}

// readAnswer reads one HTTP/1.1 response: its status, its body (by
// Content-Length or chunked), and whether the connection may be used again.
func readAnswer(br *bufio.Reader) (status int, body []byte, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, nil, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, nil, false, fmt.Errorf("posters: bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, false, fmt.Errorf("posters: bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return 0, nil, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, nil, false, fmt.Errorf("posters: bad header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, nil, false, fmt.Errorf("posters: bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			l, err := br.ReadSlice('\n')
			if err != nil {
				return 0, nil, false, err
			}
			l, _, _ = bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(l), 16, 32)
			if err != nil || n < 0 {
				return 0, nil, false, fmt.Errorf("posters: bad chunk size %q", l)
			}
			if n == 0 {
				// Trailers, then the empty line.
				for {
					t, err := br.ReadSlice('\n')
					if err != nil {
						return 0, nil, false, err
					}
					if len(bytes.TrimRight(t, "\r\n")) == 0 {
						return status, body, keep, nil
					}
				}
			}
			start := len(body)
			body = append(body, make([]byte, n)...)
			if _, err := io.ReadFull(br, body[start:]); err != nil {
				return 0, nil, false, err
			}
			if _, err := br.Discard(2); err != nil {
				return 0, nil, false, err
			}
		}
	case length >= 0:
		body = make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return 0, nil, false, err
		}
		return status, body, keep, nil
	default:
		// Neither: the body runs to the connection's end.
		body, err = io.ReadAll(br)
		return status, body, false, err
	}
}
