package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// historyMain measures GET /api/v1/rooms/{room}/messages?before=…&limit=50,
// the latest 50 messages of a room, as one of its members, -conc at a time.
func historyMain(args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	users := fs.String("users", "", "file written by caseroomd admin bench-provision")
	n := fs.Int("n", 2000, "requests")
	conc := fs.Int("conc", 4, "concurrent requests")
	rooms := fs.Int("rooms", 100, "rooms to read (the first fan-out rooms; the ingest phase fills them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*base); err != nil {
		return err
	}
	uf, err := loadUsers(*users)
	if err != nil {
		return err
	}
	type target struct{ room, token string }
	var ts []target
	var idx []int
	for b := range uf.Rooms {
		for j, id := range uf.Rooms[b] {
			if len(ts) < *rooms {
				u := uf.Members[b][j][0]
				idx = append(idx, u)
				ts = append(ts, target{room: id})
			}
		}
	}
	if err := ensureTokens(context.Background(), *base, uf, *users, idx, 3*time.Minute, 16, logf); err != nil {
		return err
	}
	for i := range ts {
		ts[i].token = uf.Users[idx[i]].Access
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *conc}}
	var h hist
	var next, errs, bytes atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				t := ts[i%len(ts)]
				req, _ := http.NewRequest("GET", *base+"/api/v1/rooms/"+t.room+"/messages?before=9007199254740991&limit=50", nil)
				req.Header.Set("Authorization", "Bearer "+t.token)
				s := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				k, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				bytes.Add(k)
				h.add(float64(time.Since(s).Nanoseconds()) / 1e3)
			}
		}()
	}
	wg.Wait()
	q, cnt := quantiles(h.sparse(), 0.5, 0.99, 0.999)
	fmt.Printf("RESULT {\"phase\":\"history\",\"requests\":%d,\"errors\":%d,\"secs\":%.2f,\"avg_bytes\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f}\n",
		cnt, errs.Load(), time.Since(t0).Seconds(), float64(bytes.Load())/float64(max(cnt, 1)), q[0], q[1], q[2])
	return nil
}
