package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// hist is a latency histogram in microseconds with logarithmic buckets of
// 1% width, safe for concurrent adds.
type hist struct{ b [histBuckets]atomic.Uint64 }

const histBuckets = 2400

var logBase = math.Log(1.01)

func bucketOf(us float64) int {
	if us < 1 {
		return 0
	}
	b := int(math.Log(us)/logBase) + 1
	return min(b, histBuckets-1)
}

func bucketUpper(b int) float64 {
	if b == 0 {
		return 1
	}
	return math.Pow(1.01, float64(b))
}

func (h *hist) add(us float64) { h.b[bucketOf(us)].Add(1) }

func (h *hist) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
}

// sparse returns the non-empty buckets, for merging across processes.
func (h *hist) sparse() map[int]uint64 {
	m := map[int]uint64{}
	for i := range h.b {
		if v := h.b[i].Load(); v > 0 {
			m[i] = v
		}
	}
	return m
}

// quantiles returns the upper bounds (ms) of the buckets holding each quantile
// of the merged counts, and the count.
func quantiles(m map[int]uint64, qs ...float64) ([]float64, uint64) {
	keys := make([]int, 0, len(m))
	var total uint64
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Ints(keys)
	out := make([]float64, len(qs))
	for i, q := range qs {
		target := max(uint64(math.Ceil(q*float64(total))), 1)
		var cum uint64
		for _, k := range keys {
			cum += m[k]
			if cum >= target {
				out[i] = bucketUpper(k) / 1e3
				break
			}
		}
	}
	return out, total
}

// rssOf returns a process's resident set size in bytes, from /proc.
func rssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return -1
}

// cpuOf returns a process's user+system CPU seconds and its parent, from /proc.
func cpuOf(pid int) (secs float64, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1, 0
	}
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s)
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, ppid // USER_HZ
}

// treeCPU returns the CPU seconds of pid and of each of its children (a
// PostgreSQL postmaster and its backends), by pid.
func treeCPU(pid int) map[int]float64 {
	out := map[int]float64{}
	if pid <= 0 {
		return out
	}
	if c, _ := cpuOf(pid); c >= 0 {
		out[pid] = c
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if c, pp := cpuOf(p); pp == pid && c >= 0 {
			out[p] = c
		}
	}
	return out
}

// cpuDelta is the CPU the processes of after used since before: a process
// that started meanwhile counts whole, one that ended is not counted (pgx
// keeps its connections, so backends rarely end during a phase).
func cpuDelta(before, after map[int]float64) float64 {
	var d float64
	for p, c := range after {
		d += c - before[p]
	}
	return d
}
