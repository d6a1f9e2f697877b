package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPostersReadEveryAnswer posts through a real net/http server answering
// with a Content-Length, chunked, and closing the connection, and checks each
// status and body, the request as the server parsed it, and that a
// connection is reused unless the server closed it.
func TestPostersReadEveryAnswer(t *testing.T) {
	var dials atomic.Int32
	big := strings.Repeat("案", 3000) // over net/http's buffer: sent chunked
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer tok" ||
			r.Header.Get("Content-Type") != "application/json" || string(body) != `{"body":"hi"}` {
			http.Error(w, "bad request as parsed: "+r.Method+" "+r.Header.Get("Authorization")+" "+string(body), 400)
			return
		}
		switch r.URL.Path {
		case "/created":
			w.WriteHeader(201)
			io.WriteString(w, `{"seq":7}`)
		case "/chunked":
			w.WriteHeader(200)
			io.WriteString(w, big)
			w.(http.Flusher).Flush()
			io.WriteString(w, "end")
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{}}`)
		}
	}))
	defer srv.Close()
	var d net.Dialer
	p, err := newPosters(srv.URL, func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for _, c := range []struct {
		path   string
		status int
		body   string
		dials  int32
	}{
		{"/created", 201, `{"seq":7}`, 1},
		{"/chunked", 200, big + "end", 1},
		{"/created", 201, `{"seq":7}`, 1},
		{"/close", 429, `{"error":{}}`, 1},
		{"/created", 201, `{"seq":7}`, 2}, // the server closed the last one
	} {
		status, body, err := p.post(t.Context(), c.path, "tok", `{"body":"hi"}`)
		if err != nil || status != c.status || string(body) != c.body {
			t.Errorf("post %s = %d, %.80q, %v; want %d, %.80q", c.path, status, body, err, c.status, c.body)
		}
		if n := dials.Load(); n != c.dials {
			t.Errorf("after post %s: %d connections dialed, want %d", c.path, n, c.dials)
		}
	}
	// A connection unused for longer than maxIdle is not reused.
	p.mu.Lock()
	for _, pc := range p.idle {
		pc.used = time.Now().Add(-maxIdle - time.Second)
	}
	p.mu.Unlock()
	if status, _, err := p.post(t.Context(), "/created", "tok", `{"body":"hi"}`); err != nil || status != 201 {
		t.Errorf("post after the idle spell = %d, %v; want 201", status, err)
	}
	if n := dials.Load(); n != 3 {
		t.Errorf("after a post on a connection idle too long: %d connections dialed, want 3", n)
	}
	if _, err := newPosters("https://127.0.0.1:1", nil); err == nil {
		t.Errorf("newPosters(https://...) = nil error, want a refusal")
	}
}
