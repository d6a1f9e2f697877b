package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHTTPFloor is the cheapest a post can be over HTTP/1.1 on loopback
// here: the posters of the load generator against a net/http server that
// decodes the post and answers a message of the same size with the same
// headers, and does nothing else — no token, no access check, no store. It
// reports the CPU (user and system, client and server together, in this one
// process) per post, the floor under caseroom's own per-post figure.
//
//	go test -run XXX -bench HTTPFloor -benchtime 200000x ./cmd/caseroom-bench
func BenchmarkHTTPFloor(b *testing.B) {
	var seq atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/rooms/{room}/messages", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ClientID string `json:"client_id"`
			Body     string `json:"body"`
		}
		d := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		d.DisallowUnknownFields()
		if err := d.Decode(&in); err != nil || r.Header.Get("Authorization") == "" {
			http.Error(w, "bad post", http.StatusBadRequest)
			return
		}
		out, _ := json.Marshal(map[string]any{"room": r.PathValue("room"), "seq": seq.Add(1), "kind": "text",
			"sender": "bench.00123", "sender_unit": "150102-police", "client_id": in.ClientID, "body": in.Body,
			"created_at": time.Now().UTC(), "hash": "9f2c6d1e0b7a4c3f8e5d2a1b0c9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f"})
		h := w.Header()
		for _, k := range []string{"X-Request-Id", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
			"Cross-Origin-Opener-Policy", "Cache-Control"} {
			h.Set(k, "x")
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		w.Write(append(out, '\n'))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := newPosters(srv.URL, (&net.Dialer{}).DialContext)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	token := "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCJ9." + strings.Repeat("x", 300) + ".sig" // an access token's size
	var n atomic.Int64
	b.SetParallelism(128) // 256 posters on two cores, as in the ingest runs
	cpu0 := cpuSelf()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := `{"client_id":"b` + strconv.FormatInt(i, 10) + `","body":"` + texts[i%int64(len(texts))] + `"}`
			status, _, err := p.post(context.Background(), "/api/v1/rooms/r_bfux6rhvnipac26c/messages", token, body)
			if err != nil || status != http.StatusCreated {
				b.Errorf("post: %d %v", status, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric((cpuSelf()-cpu0)*1e6/float64(b.N), "cpu-µs/post")
}
