package main

import (
	"fmt"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"sort"
	"sync"
	"time"
)

// metrics are the counters /metrics shows, in the Prometheus text format.
// Written by hand: a handful of counters needs no client library.
type metrics struct {
	start time.Time

	mu       sync.Mutex
	requests map[string]uint64 // "method status" → count; guarded by mu
	seconds  float64           // guarded by mu

	gauges []gauge // read at scrape time
}

type gauge struct {
	name, help, kind string // kind: gauge or counter
	read             func() float64
}

func newMetrics() *metrics {
	return &metrics{start: time.Now(), requests: map[string]uint64{}}
}

func (m *metrics) request(method string, status int, d time.Duration) {
	m.mu.Lock()
	m.requests[fmt.Sprintf("%s %d", method, status)]++
	m.seconds += d.Seconds()
	m.mu.Unlock()
}

// gauge registers a value read at each scrape.
func (m *metrics) gauge(name, help string, read func() float64) {
	m.gauges = append(m.gauges, gauge{name, help, "gauge", read})
}

// counter registers a count that only grows, read at each scrape.
func (m *metrics) counter(name, help string, read func() float64) {
	m.gauges = append(m.gauges, gauge{name, help, "counter", read})
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.mu.Lock()
	keys := make([]string, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "# HELP caseroom_http_requests_total HTTP requests by method and status.")
	fmt.Fprintln(w, "# TYPE caseroom_http_requests_total counter")
	for _, k := range keys {
		var method string
		var status int
		fmt.Sscanf(k, "%s %d", &method, &status)
		fmt.Fprintf(w, "caseroom_http_requests_total{method=%q,status=\"%d\"} %d\n", method, status, m.requests[k])
	}
	fmt.Fprintln(w, "# HELP caseroom_http_request_seconds_total Time spent serving HTTP requests.")
	fmt.Fprintln(w, "# TYPE caseroom_http_request_seconds_total counter")
	fmt.Fprintf(w, "caseroom_http_request_seconds_total %g\n", m.seconds)
	m.mu.Unlock()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintln(w, "# HELP caseroom_uptime_seconds Seconds since the process started.")
	fmt.Fprintln(w, "# TYPE caseroom_uptime_seconds gauge")
	fmt.Fprintf(w, "caseroom_uptime_seconds %g\n", time.Since(m.start).Seconds())
	fmt.Fprintln(w, "# HELP caseroom_goroutines Goroutines alive.")
	fmt.Fprintln(w, "# TYPE caseroom_goroutines gauge")
	fmt.Fprintf(w, "caseroom_goroutines %d\n", runtime.NumGoroutine())
	fmt.Fprintln(w, "# HELP caseroom_heap_bytes Bytes of allocated heap objects.")
	fmt.Fprintln(w, "# TYPE caseroom_heap_bytes gauge")
	fmt.Fprintf(w, "caseroom_heap_bytes %d\n", ms.HeapAlloc)
	fmt.Fprintln(w, "# HELP caseroom_stack_bytes Bytes of goroutine stacks (one reader per idle socket).")
	fmt.Fprintln(w, "# TYPE caseroom_stack_bytes gauge")
	fmt.Fprintf(w, "caseroom_stack_bytes %d\n", ms.StackInuse)
	start := []rtmetrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	rtmetrics.Read(start)
	if start[0].Value.Kind() == rtmetrics.KindUint64 {
		fmt.Fprintln(w, "# HELP caseroom_goroutine_start_stack_bytes The stack a new goroutine starts with (the runtime's average of stacks in use).")
		fmt.Fprintln(w, "# TYPE caseroom_goroutine_start_stack_bytes gauge")
		fmt.Fprintf(w, "caseroom_goroutine_start_stack_bytes %d\n", start[0].Value.Uint64())
	}
	for _, g := range m.gauges {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", g.name, g.help, g.name, g.kind, g.name, g.read())
	}
}
