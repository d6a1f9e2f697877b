package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type runFlags struct {
	url, users, label, out, phases    string
	conns, procs, srcIPs, dialConc    int
	posters, window, ingestPosters    int
	ingestUsers                       int
	rates                             string
	warmup, satDur, latDur, ingestDur time.Duration
	settle, stormLimit, deadline      time.Duration
	stormRate                         float64
	stormJitter, stormPause           time.Duration
	pid, dbPID                        int
}

func runMain(args []string) error {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.url, "url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	fs.StringVar(&f.users, "users", "", "file written by caseroomd admin bench-provision (tokens are rotated in it)")
	fs.StringVar(&f.label, "label", "", "label copied into the result")
	fs.StringVar(&f.out, "out", "", "append the JSON result to this file (one line per run)")
	fs.StringVar(&f.phases, "phases", "idle,sat,lat", "phases in order: idle, sat, lat, storm, ingest")
	fs.IntVar(&f.conns, "conns", 5000, "sockets: users 0..conns-1, one socket each (0 for none)")
	fs.IntVar(&f.procs, "procs", 0, "child processes (default: one per 9,500 sockets)")
	fs.IntVar(&f.srcIPs, "srcips", 0, "spread client sockets over 127.0.0.1..N (default 4 above 5,000 sockets)")
	fs.IntVar(&f.dialConc, "dialconc", 128, "concurrent dials per child")
	fs.IntVar(&f.posters, "posters", 128, "posting HTTP connections per child (open loop)")
	fs.IntVar(&f.window, "window", 2, "sat: posts in flight per fan-out room")
	fs.StringVar(&f.rates, "rates", "", "lat: offered posts/s, comma-separated (default: 0.5 and 0.1 of the sat rate)")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "warm-up before each measured window (sat, lat, ingest)")
	fs.DurationVar(&f.satDur, "satdur", 10*time.Second, "sat window")
	fs.DurationVar(&f.latDur, "latdur", 10*time.Second, "lat window")
	fs.DurationVar(&f.settle, "settle", 15*time.Second, "idle: wait after connecting before sampling (RSS is recorded each second)")
	fs.Float64Var(&f.stormRate, "stormrate", 200, "storm: posts/s offered while every socket reconnects")
	fs.DurationVar(&f.stormJitter, "stormjitter", time.Second, "storm: each client reconnects after a random delay below this")
	fs.DurationVar(&f.stormPause, "stormpause", 500*time.Millisecond, "storm: wait after dropping every socket before the first reconnect")
	fs.DurationVar(&f.stormLimit, "stormlimit", 60*time.Second, "storm: give up waiting for resumes after this")
	fs.IntVar(&f.ingestPosters, "ingestposters", 128, "ingest: concurrent posters per child")
	fs.IntVar(&f.ingestUsers, "ingestusers", 2000, "ingest without sockets: users (and their rooms) to post as")
	fs.DurationVar(&f.ingestDur, "ingestdur", 10*time.Second, "ingest window")
	fs.IntVar(&f.pid, "pid", 0, "caseroomd's pid, for RSS and CPU from /proc")
	fs.IntVar(&f.dbPID, "dbpid", 0, "PostgreSQL postmaster's pid, for the database's CPU (optional)")
	fs.DurationVar(&f.deadline, "deadline", 10*time.Minute, "hard limit for the whole run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(f.url); err != nil {
		return err
	}
	if f.users == "" {
		return fmt.Errorf("run: -users FILE is required (caseroomd admin bench-provision FILE)")
	}
	go func() {
		time.Sleep(f.deadline)
		fmt.Fprintln(os.Stderr, "caseroom-bench: deadline reached, exiting")
		os.Exit(3)
	}()
	return run(f)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

type childProc struct {
	cmd       *exec.Cmd
	in        io.WriteCloser
	out       *bufio.Scanner
	postRooms int
}

func (c *childProc) send(s string) { fmt.Fprintln(c.in, s) }

func (c *childProc) recv() map[string]any {
	if !c.out.Scan() {
		return map[string]any{"ev": "eof"}
	}
	var m map[string]any
	json.Unmarshal(c.out.Bytes(), &m)
	return m
}

func num(m map[string]any, k string) float64 {
	v, _ := m[k].(float64)
	return v
}

func run(f runFlags) error {
	uf, err := loadUsers(f.users)
	if err != nil {
		return err
	}
	phases := strings.Split(f.phases, ",")
	connect := f.conns > 0
	nusers := f.conns
	if !connect {
		nusers = f.ingestUsers
	}
	if nusers > len(uf.Users) {
		return fmt.Errorf("run: %d users wanted, %s has %d", nusers, f.users, len(uf.Users))
	}
	if f.procs <= 0 {
		f.procs = max(1, (f.conns+9499)/9500)
	}
	if f.srcIPs <= 0 {
		f.srcIPs = 1
		if f.conns > 5000 {
			f.srcIPs = 4
		}
	}
	idx := make([]int, nusers)
	for i := range idx {
		idx[i] = i
	}
	if err := ensureTokens(context.Background(), f.url, uf, f.users, idx, 8*time.Minute, 32, logf); err != nil {
		return err
	}
	headsPath := f.users + ".heads"
	var hs struct {
		Heads     map[string]int64  `json:"heads"`
		UnitRooms map[string]string `json:"unit_rooms"`
	}
	if b, err := os.ReadFile(headsPath); err == nil {
		json.Unmarshal(b, &hs)
	}
	if hs.Heads == nil {
		hs.Heads, hs.UnitRooms = map[string]int64{}, map[string]string{}
	}

	// Whole blocks per child; rooms never span children.
	blocks := (nusers + uf.BlockSize - 1) / uf.BlockSize
	fanRooms := uf.BlockSize / uf.RoomSize
	dir, err := os.MkdirTemp("", "caseroom-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	posters := f.posters // each child's posting connections count against the server's file limit
	if strings.Contains(f.phases, "ingest") {
		posters = max(posters, f.ingestPosters)
	}
	self, _ := os.Executable()
	rss0 := rssOf(f.pid) // before any socket
	var children []*childProc
	b0 := 0
	for k := 0; k < f.procs && b0 < blocks; k++ {
		nb := blocks / f.procs
		if k < blocks%f.procs {
			nb++
		}
		spec := childSpec{URL: f.url, Index: k, SrcIPs: f.srcIPs, DialConc: f.dialConc, Connect: connect,
			Posters: posters, Heads: hs.Heads, UnitRoom: hs.UnitRooms,
			Jitter: f.stormJitter, Pause: f.stormPause}
		local := map[int]int{}
		for b := b0; b < b0+nb; b++ {
			for u := b * uf.BlockSize; u < min((b+1)*uf.BlockSize, nusers); u++ {
				local[u] = len(spec.Users)
				spec.Users = append(spec.Users, specUser{ID: uf.Users[u].ID, Unit: uf.Users[u].Unit, Access: uf.Users[u].Access})
			}
		}
		posting := 0
		for b := b0; b < b0+nb; b++ {
			for j, id := range uf.Rooms[b] {
				sr := specRoom{ID: id, Post: j < fanRooms}
				for _, u := range uf.Members[b][j] {
					if l, ok := local[u]; ok {
						sr.Members = append(sr.Members, l)
					}
				}
				if len(sr.Members) == 0 {
					continue
				}
				if sr.Post {
					posting++
				}
				spec.Rooms = append(spec.Rooms, sr)
			}
		}
		b0 += nb
		sb, _ := json.Marshal(spec)
		path := filepath.Join(dir, fmt.Sprintf("child%d.json", k))
		if err := os.WriteFile(path, sb, 0o600); err != nil {
			return err
		}
		cmd := exec.Command(self, "child", "-spec", path)
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		outp, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start child: %w", err)
		}
		sc := bufio.NewScanner(outp)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		children = append(children, &childProc{cmd: cmd, in: in, out: sc, postRooms: posting})
	}
	totalPost := 0
	for _, c := range children {
		totalPost += c.postRooms
	}
	defer func() {
		for _, c := range children {
			c.send("quit")
		}
		for _, c := range children {
			c.recv()
			c.cmd.Wait()
		}
	}()

	res := map[string]any{"label": f.label, "url": f.url, "database": uf.Database, "conns": f.conns, "procs": len(children),
		"src_ips": f.srcIPs, "room_size": uf.RoomSize, "fanout_rooms": totalPost, "rooms_per_user": 10, "started": time.Now().UTC()}
	logf("%s: %d users, %d children; server RSS before %.1f MiB", f.label, nusers, len(children), float64(rss0)/(1<<20))
	var connected, failed int
	var connSecs float64
	for _, c := range children {
		m := c.recv()
		connected += int(num(m, "conns"))
		failed += int(num(m, "failed"))
		connSecs = math.Max(connSecs, num(m, "secs"))
	}
	logf("connected %d (failed %d) in %.1fs", connected, failed, connSecs)
	res["connected"], res["connect_failed"], res["connect_secs"] = connected, failed, connSecs

	var satRate float64
	var results []map[string]any
	for _, ph := range phases {
		switch strings.TrimSpace(ph) {
		case "idle":
			// The RSS each second of the settle, so that the figure shows
			// whether the server still holds the connection burst's memory.
			var series []int64
			for range max(int(f.settle/time.Second), 1) {
				time.Sleep(min(f.settle, time.Second))
				series = append(series, rssOf(f.pid))
			}
			rss1 := series[len(series)-1]
			per := float64(rss1-rss0) / float64(max(connected, 1))
			logf("idle: server RSS %.1f MiB (+%.1f MiB) = %.1f KiB per connection after %v; each second: %s",
				float64(rss1)/(1<<20), float64(rss1-rss0)/(1<<20), per/1024, f.settle, mibs(series))
			results = append(results, map[string]any{"phase": "idle", "conns": connected, "rss_before": rss0, "rss_idle": rss1,
				"kib_per_conn": per / 1024, "rss_each_second": series})
		case "sat":
			r := phase(f, children, "sat", fmt.Sprintf("sat %s %d %s", f.satDur, f.window, f.warmup), f.warmup+f.satDur+time.Second)
			satRate = num(r, "posts_per_sec")
			results = append(results, r)
		case "lat":
			var rates []float64
			if f.rates != "" {
				for _, s := range strings.Split(f.rates, ",") {
					if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && v > 0 {
						rates = append(rates, v)
					}
				}
			} else if satRate > 0 {
				rates = []float64{0.5 * satRate, 0.1 * satRate}
			}
			for _, rate := range rates {
				var rs []string
				for _, c := range children {
					rs = append(rs, fmt.Sprintf("lat %f %s %s", rate*float64(c.postRooms)/float64(max(totalPost, 1)), f.latDur, f.warmup))
				}
				r := phaseEach(f, children, "lat", rs, f.warmup+f.latDur+1500*time.Millisecond)
				r["offered_posts_per_sec"] = rate
				r["offered_deliveries_per_sec"] = rate * float64(uf.RoomSize)
				results = append(results, r)
			}
		case "storm":
			var rs []string
			for _, c := range children {
				rs = append(rs, fmt.Sprintf("storm %f %s", f.stormRate*float64(c.postRooms)/float64(max(totalPost, 1)), f.stormLimit))
			}
			r := phaseEach(f, children, "storm", rs, 0)
			results = append(results, r)
		case "ingest":
			r := phase(f, children, "ingest", fmt.Sprintf("ingest %d %s %s", f.ingestPosters, f.ingestDur, f.warmup), f.warmup+f.ingestDur)
			results = append(results, r)
		default:
			return fmt.Errorf("run: unknown phase %q", ph)
		}
	}

	// Verify: exactly once, in order, up to the head, for every member.
	for _, c := range children {
		c.send("verify")
	}
	ok := true
	var checked, missing float64
	for _, c := range children {
		m := c.recv()
		if v, _ := m["ok"].(bool); !v {
			ok = false
		}
		checked += num(m, "member_rooms_checked")
		res["not_connected"] = num(res, "not_connected") + num(m, "not_connected")
		missing += num(m, "member_rooms_missing")
		if h, ok := m["heads"].(map[string]any); ok {
			for r, v := range h {
				hs.Heads[r] = int64(v.(float64))
			}
		}
		if u, ok := m["unit_rooms"].(map[string]any); ok {
			for unit, r := range u {
				hs.UnitRooms[unit] = r.(string)
			}
		}
		for _, k := range []string{"gaps", "dups", "disconnects", "parse_errors", "post_errors", "rate_limited", "post_dups"} {
			res[k] = num(res, k) + num(m, "total_"+k)
		}
		if e, ok := m["total_first_error"]; ok {
			res["first_error"] = e
		}
	}
	if b, err := json.Marshal(hs); err == nil {
		os.WriteFile(headsPath, b, 0o600)
	}
	res["verified"], res["verify_member_rooms"], res["verify_missing"] = ok, checked, missing
	res["phases"] = results
	res["server_rss_end"] = rssOf(f.pid)
	logf("verify: ok=%v member-rooms checked %.0f, missing %.0f, not connected %.0f, gaps %.0f, dups %.0f, disconnects %.0f",
		ok, checked, missing, num(res, "not_connected"), num(res, "gaps"), num(res, "dups"), num(res, "disconnects"))
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	if f.out != "" {
		fh, err := os.OpenFile(f.out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		fh.Write(append(b, '\n'))
		fh.Close()
	}
	var back map[string]any
	json.Unmarshal(b, &back)
	printTable(os.Stdout, []map[string]any{back})
	return nil
}

func phase(f runFlags, children []*childProc, name, cmd string, window time.Duration) map[string]any {
	cmds := make([]string, len(children))
	for i := range cmds {
		cmds[i] = cmd
	}
	return phaseEach(f, children, name, cmds, window)
}

// phaseEach sends each child its command, merges their answers and samples
// the server's (and database's) CPU around the phase.
func phaseEach(f runFlags, children []*childProc, name string, cmds []string, window time.Duration) map[string]any {
	c0, _ := cpuOf(f.pid)
	db0 := treeCPU(f.dbPID)
	m0 := scrapeMetrics(f.url)
	t0 := time.Now()
	for i, c := range children {
		c.send(cmds[i])
	}
	lat, ack := map[int]uint64{}, map[int]uint64{}
	r := map[string]any{"phase": name}
	var secs float64
	for _, c := range children {
		m := c.recv()
		for _, k := range []string{"deliveries", "posted", "client_cpu", "reconnected", "failed", "resumed",
			"disconnects_during", "rooms_checked", "rooms_bad", "acked_checked", "total_gaps", "total_dups",
			"total_disconnects", "total_post_errors", "total_rate_limited", "total_backlog_drops", "total_stalls"} {
			r[k] = num(r, k) + num(m, k)
		}
		for _, k := range []string{"dial_secs", "resume_secs"} {
			if v := num(m, k); v < 0 || num(r, k) < 0 {
				r[k] = -1.0
			} else {
				r[k] = math.Max(num(r, k), v)
			}
		}
		secs = math.Max(secs, num(m, "secs"))
		merge(lat, m["lat_hist"])
		merge(ack, m["ack_hist"])
		if e, ok := m["total_first_error"]; ok {
			r["first_error"] = e
		}
	}
	el := time.Since(t0).Seconds()
	c1, _ := cpuOf(f.pid)
	db1 := treeCPU(f.dbPID)
	m1 := scrapeMetrics(f.url)
	// The server's group commit over the phase: how many appends shared each
	// commit, and how long a commit took.
	if batches := m1["caseroom_commit_batches_total"] - m0["caseroom_commit_batches_total"]; m0 != nil && m1 != nil && batches > 0 {
		r["commit_entries_per_batch"] = (m1["caseroom_commit_entries_total"] - m0["caseroom_commit_entries_total"]) / batches
		r["commit_ms_per_batch"] = (m1["caseroom_commit_seconds_total"] - m0["caseroom_commit_seconds_total"]) / batches * 1e3
	}
	_ = window
	// CPU is sampled around the whole phase (warm-up and drain included).
	srvCPU := (c1 - c0) / el
	r["server_cores"] = srvCPU
	if f.dbPID > 0 {
		r["db_cores"] = cpuDelta(db0, db1) / el
	}
	if secs > 0 {
		r["secs"] = secs
		r["deliveries_per_sec"] = num(r, "deliveries") / secs
		r["posts_per_sec"] = num(r, "posted") / secs
		r["client_cores"] = num(r, "client_cpu") / secs
		if d := num(r, "deliveries_per_sec"); d > 0 {
			r["server_cpu_us_per_delivery"] = srvCPU / d * 1e6
		}
		if p := num(r, "posts_per_sec"); p > 0 {
			r["server_cpu_us_per_post"] = srvCPU / p * 1e6
		}
	}
	if q, n := quantiles(lat, 0.5, 0.99, 0.999, 1); n > 0 {
		r["p50_ms"], r["p99_ms"], r["p999_ms"], r["max_ms"], r["lat_samples"] = q[0], q[1], q[2], q[3], n
	}
	if q, n := quantiles(ack, 0.5, 0.99); n > 0 {
		r["ack_p50_ms"], r["ack_p99_ms"] = q[0], q[1]
	}
	r["server_rss"] = rssOf(f.pid)
	logf("%s: %s", name, summary(r))
	return r
}

func merge(dst map[int]uint64, v any) {
	h, _ := v.(map[string]any)
	for k, n := range h {
		i, _ := strconv.Atoi(k)
		dst[i] += uint64(n.(float64))
	}
}

func summary(r map[string]any) string {
	var b strings.Builder
	for _, k := range []string{"offered_posts_per_sec", "posts_per_sec", "deliveries_per_sec", "p50_ms", "p99_ms", "p999_ms",
		"ack_p50_ms", "ack_p99_ms", "server_cores", "db_cores", "client_cores", "server_cpu_us_per_delivery",
		"commit_entries_per_batch", "commit_ms_per_batch", "resume_secs",
		"reconnected", "resumed", "rooms_bad", "total_gaps", "total_dups", "total_disconnects", "total_post_errors",
		"total_backlog_drops", "total_stalls"} {
		if v, ok := r[k]; ok {
			fmt.Fprintf(&b, "%s=%.4g ", k, v)
		}
	}
	return b.String()
}

// mibs formats RSS samples in MiB, for the log.
func mibs(rss []int64) string {
	var b strings.Builder
	for i, r := range rss {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f", float64(r)/(1<<20))
	}
	return b.String()
}

// scrapeMetrics reads the server's /metrics into name → value (lines without
// labels); nil if it cannot.
func scrapeMetrics(base string) map[string]float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}
