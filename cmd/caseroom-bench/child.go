package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// childSpec is what the parent gives a child process: its users with their
// access tokens and the rooms among them. Rooms never span children.
type childSpec struct {
	URL      string            `json:"url"`
	Index    int               `json:"index"`
	SrcIPs   int               `json:"src_ips"`
	DialConc int               `json:"dial_conc"`
	Connect  bool              `json:"connect"`
	Posters  int               `json:"posters"` // HTTP connections for posting
	Users    []specUser        `json:"users"`
	Rooms    []specRoom        `json:"rooms"`
	Jitter   time.Duration     `json:"jitter"`     // storm: each client reconnects after a random delay below it
	Pause    time.Duration     `json:"pause"`      // storm: wait after dropping before the first reconnect
	Heads    map[string]int64  `json:"heads"`      // last known head of each room (since positions)
	UnitRoom map[string]string `json:"unit_rooms"` // unit -> its unit room, when known
}

type specUser struct {
	ID     string `json:"id"`
	Unit   string `json:"unit"`
	Access string `json:"access"`
}

type specRoom struct {
	ID      string `json:"id"`
	Members []int  `json:"members"` // indexes into Users
	Post    bool   `json:"post"`    // a fan-out room: sat, lat and storm post here
}

// A child holds its share of the sockets and posts to its rooms.
type child struct {
	spec  childSpec
	ws    *http.Client // one TCP connection per socket
	hc    *http.Client // keep-alive requests other than posts
	pp    *posters     // keep-alive posting
	conns []*conn
	rooms []*room
	byID  map[string]*room
	post  []*room // fan-out rooms

	phase     atomic.Int32
	winFrom   atomic.Int64 // record latency of posts whose send time is in [winFrom, winTo]
	winTo     atomic.Int64
	latHist   hist // post-to-delivery, per delivery
	ackHist   hist // post-to-ack (HTTP), per post
	cidSeq    atomic.Uint64
	textN     atomic.Uint64
	dropping  atomic.Bool // a storm is closing sockets on purpose
	resumed   atomic.Int64
	resumedAt atomic.Int64 // unix nanos of the latest resume

	// counters
	deliveries  atomic.Int64 // message frames of bench posts
	frames      atomic.Int64 // every server frame
	gaps        atomic.Int64 // a message frame beyond last+1 of its room
	dups        atomic.Int64 // a message frame at or below last of its room
	disconnects atomic.Int64 // sockets that ended without being dropped on purpose
	parseErrs   atomic.Int64
	posted      atomic.Int64 // posts acknowledged (201)
	postDup     atomic.Int64 // answered 200: the client id was stored before
	postErrs    atomic.Int64
	rateLimited atomic.Int64
	backlogDrop atomic.Int64 // open loop: a send that found every poster busy
	stalls      atomic.Int64
	firstErr    atomic.Value
}

const (
	phIdle int32 = iota
	phSat
	phLat
	phStorm
	phIngest
)

type conn struct {
	c  *child
	u  int
	ws *websocket.Conn

	mu      sync.Mutex
	last    map[string]int64 // per room, the seq of the last message frame; kept across reconnects
	pending int              // rooms of this session not caught up yet
	ready   bool
}

type room struct {
	spec  specRoom
	conns []*conn
	n     atomic.Uint64 // posts made: picks the sender

	mu       sync.Mutex
	inflight map[string]*int32 // sat: client id -> deliveries so far
	tokens   chan struct{}
	acked    []int64 // seqs acknowledged, for the ingest check
}

func childMain(args []string) error {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	specPath := fs.String("spec", "", "spec file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := os.ReadFile(*specPath)
	if err != nil {
		return err
	}
	c := &child{byID: map[string]*room{}}
	if err := json.Unmarshal(b, &c.spec); err != nil {
		return err
	}
	if err := checkLoopback(c.spec.URL); err != nil {
		return err
	}
	if err := c.setup(); err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	emit := func(v any) {
		b, _ := json.Marshal(v)
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
	}
	t0 := time.Now()
	connected, failed := 0, 0
	if c.spec.Connect {
		connected, failed = c.connectAll(context.Background(), false)
	}
	emit(map[string]any{"ev": "connected", "conns": connected, "failed": failed, "secs": time.Since(t0).Seconds()})

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "sat":
			d, _ := time.ParseDuration(f[1])
			w, _ := strconv.Atoi(f[2])
			warm, _ := time.ParseDuration(f[3])
			emit(c.runSat(d, w, warm))
		case "lat":
			rate, _ := strconv.ParseFloat(f[1], 64)
			d, _ := time.ParseDuration(f[2])
			warm, _ := time.ParseDuration(f[3])
			emit(c.runLat(rate, d, warm))
		case "storm":
			rate, _ := strconv.ParseFloat(f[1], 64)
			limit, _ := time.ParseDuration(f[2])
			emit(c.runStorm(rate, limit))
		case "ingest":
			p, _ := strconv.Atoi(f[1])
			d, _ := time.ParseDuration(f[2])
			warm, _ := time.ParseDuration(f[3])
			emit(c.runIngest(p, d, warm))
		case "verify":
			emit(c.verify())
		case "quit":
			c.pp.close()
			c.dropping.Store(true)
			for _, cn := range c.conns {
				if cn.ws != nil {
					cn.ws.Close(websocket.StatusNormalClosure, "")
				}
			}
			emit(map[string]any{"ev": "bye"})
			return nil
		}
	}
	return nil
}

const ipBindAddressNoPort = 24 // IP_BIND_ADDRESS_NO_PORT (Linux)

func (c *child) setup() error {
	var ipn atomic.Uint64
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if c.spec.SrcIPs > 1 {
		// connect() picks the port per 4-tuple, so each source address has
		// the whole ephemeral range towards the server.
		dialer.Control = func(network, address string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			return serr
		}
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := *dialer
		if c.spec.SrcIPs > 1 {
			n := ipn.Add(1)
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+int(n)%c.spec.SrcIPs))}
		}
		return d.DialContext(ctx, network, addr)
	}
	c.ws = &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true, MaxIdleConns: -1}}
	posters := max(c.spec.Posters, 8)
	c.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial,
		MaxIdleConns: posters, MaxIdleConnsPerHost: posters, MaxConnsPerHost: posters, IdleConnTimeout: time.Minute}}
	pp, err := newPosters(c.spec.URL, dial)
	if err != nil {
		return err
	}
	c.pp = pp

	c.conns = make([]*conn, len(c.spec.Users))
	for i := range c.conns {
		c.conns[i] = &conn{c: c, u: i, last: map[string]int64{}}
	}
	for _, sr := range c.spec.Rooms {
		r := &room{spec: sr, inflight: map[string]*int32{}}
		for _, m := range sr.Members {
			r.conns = append(r.conns, c.conns[m])
		}
		c.rooms = append(c.rooms, r)
		c.byID[sr.ID] = r
		if sr.Post {
			c.post = append(c.post, r)
		}
	}
	// Since positions: the heads the last run left, for the rooms known.
	for _, r := range c.rooms {
		h, ok := c.spec.Heads[r.spec.ID]
		if !ok || h < 0 {
			continue
		}
		for _, cn := range r.conns {
			cn.last[r.spec.ID] = h
		}
	}
	for _, cn := range c.conns {
		if ur, ok := c.spec.UnitRoom[c.spec.Users[cn.u].Unit]; ok {
			if h, ok := c.spec.Heads[ur]; ok && h >= 0 {
				cn.last[ur] = h
			}
		}
	}
	return nil
}

func (c *child) fail(err error) {
	c.firstErr.CompareAndSwap(nil, err.Error())
}

// connectAll (re)connects every socket, dialConc at a time, each with its
// resume positions, and returns how many connected.
func (c *child) connectAll(ctx context.Context, resume bool) (ok, failed int) {
	// On resume, clients come back spread over the jitter, as real ones do
	// (they back off at random): client k starts at start+at[k], in order.
	start := time.Now()
	order := make([]int, len(c.conns))
	at := make([]time.Duration, len(c.conns))
	for i := range order {
		order[i] = i
		if resume && c.spec.Jitter > 0 {
			at[i] = time.Duration(rand.Int64N(int64(c.spec.Jitter)))
		}
	}
	slices.SortFunc(order, func(a, b int) int { return int(at[a] - at[b]) })
	var next atomic.Int64
	var nok, nfail atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < max(c.spec.DialConc, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(c.conns) {
					return
				}
				i := order[k]
				if d := time.Until(start.Add(at[i])); d > 0 {
					time.Sleep(d)
				}
				if err := c.conns[i].connect(ctx); err != nil {
					c.conns[i].mu.Lock()
					c.conns[i].ws = nil // not connected: verify counts it apart
					c.conns[i].mu.Unlock()
					if nfail.Add(1) <= 3 {
						fmt.Fprintf(os.Stderr, "child %d: connect %s: %v\n", c.spec.Index, c.spec.Users[i].ID, err)
					}
					c.fail(err)
					continue
				}
				nok.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(nok.Load()), int(nfail.Load())
}

func (cn *conn) connect(ctx context.Context) error {
	c := cn.c
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, wsURL(c.spec.URL), &websocket.DialOptions{HTTPClient: c.ws,
		CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return err
	}
	ws.SetReadLimit(1 << 20)
	cn.mu.Lock()
	since := make(map[string]int64, len(cn.last))
	for r, s := range cn.last {
		since[r] = s
	}
	cn.ready, cn.pending = false, 0
	cn.ws = ws
	cn.mu.Unlock()
	hello, _ := json.Marshal(map[string]any{"type": "hello", "token": c.spec.Users[cn.u].Access, "since": since})
	if err := ws.Write(dctx, websocket.MessageText, hello); err != nil {
		ws.CloseNow()
		return err
	}
	go cn.readLoop(ws)
	return nil
}

func (cn *conn) readLoop(ws *websocket.Conn) {
	c := cn.c
	ctx := context.Background()
	buf := make([]byte, 0, 2048)
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			if !c.dropping.Load() {
				c.disconnects.Add(1)
				if c.disconnects.Load() <= 3 {
					fmt.Fprintf(os.Stderr, "child %d: %s: socket ended: %v\n", c.spec.Index, c.spec.Users[cn.u].ID, err)
				}
			}
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				if !c.dropping.Load() {
					c.disconnects.Add(1)
				}
				return
			}
		}
		now := time.Now().UnixNano()
		b := bytes.TrimSpace(buf)
		if len(b) > 0 && b[0] == '[' {
			eachObject(b, func(o []byte) { cn.frame(o, now) })
		} else {
			cn.frame(b, now)
		}
		if cap(buf) > 64<<10 {
			buf = make([]byte, 0, 2048) // do not keep a backlog's buffer
		}
	}
}

// eachObject calls f with each top-level object of a JSON array.
func eachObject(b []byte, f func([]byte)) {
	depth, start, inStr, esc := 0, -1, false, false
	for i := 1; i < len(b); i++ {
		ch := b[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case ch == '\\':
				esc = true
			case ch == '"':
				inStr = false
			}
			continue
		}
		switch ch {
		case '"':
			inStr = true
		case '{':
			if depth == 0 {
				start = i
			}
			depth++
		case '}':
			depth--
			if depth == 0 && start >= 0 {
				f(b[start : i+1])
				start = -1
			}
		}
	}
}

var (
	msgPrefix    = []byte(`{"type":"message","room":"`)
	seqKey       = []byte(`"seq":`)
	cidKey       = []byte(`"client_id":"b`)
	readyPrefix  = []byte(`{"type":"ready"`)
	caughtPrefix = []byte(`{"type":"caught_up","room":"`)
	removed      = []byte(`{"type":"room_removed"`)
)

func intAt(b []byte) (int64, int) {
	var v int64
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	return v, i
}

// frame handles one server frame: message frames are checked against the
// room's last seq (exactly once, in order) and timed; ready and caught_up
// track the session's resume.
func (cn *conn) frame(o []byte, now int64) {
	c := cn.c
	c.frames.Add(1)
	switch {
	case bytes.HasPrefix(o, msgPrefix):
		rest := o[len(msgPrefix):]
		q := bytes.IndexByte(rest, '"')
		if q < 0 || !bytes.HasPrefix(rest[q+1:], []byte(`,"seq":`)) {
			c.parseErrs.Add(1)
			return
		}
		roomID := rest[:q]
		seq, n := intAt(rest[q+1+len(`,"seq":`):])
		if n == 0 {
			c.parseErrs.Add(1)
			return
		}
		cn.mu.Lock()
		last := cn.last[string(roomID)]
		switch {
		case seq == last+1:
			cn.last[string(roomID)] = seq
		case seq <= last:
			c.dups.Add(1)
		default:
			c.gaps.Add(1)
			cn.last[string(roomID)] = seq
		}
		cn.mu.Unlock()
		i := bytes.Index(o, cidKey)
		if i < 0 {
			return // not a bench post (room.create, member.add)
		}
		cid := o[i+len(cidKey)-1:]
		cid = cid[:bytes.IndexByte(cid, '"')]
		ts, n := intAt(cid[1:])
		if n == 0 {
			return
		}
		c.deliveries.Add(1)
		switch c.phase.Load() {
		case phLat, phStorm:
			if ts >= c.winFrom.Load() && ts <= c.winTo.Load() {
				c.latHist.add(float64(now-ts) / 1e3)
			}
		case phSat:
			if ts >= c.winFrom.Load() {
				c.latHist.add(float64(now-ts) / 1e3)
			}
			r := c.byID[string(roomID)]
			if r == nil {
				return
			}
			r.mu.Lock()
			cnt := r.inflight[string(cid)]
			done := false
			if cnt != nil {
				*cnt++
				if int(*cnt) >= len(r.conns) {
					delete(r.inflight, string(cid))
					done = true
				}
			}
			r.mu.Unlock()
			if done {
				select {
				case r.tokens <- struct{}{}:
				default:
				}
			}
		}
	case bytes.HasPrefix(o, caughtPrefix):
		cn.mu.Lock()
		cn.pending--
		done := cn.pending == 0 && cn.ready
		cn.mu.Unlock()
		if done {
			c.resumed.Add(1)
			c.resumedAt.Store(now)
		}
	case bytes.HasPrefix(o, readyPrefix):
		var f struct {
			Rooms []struct {
				Room string `json:"room"`
				Head int64  `json:"head"`
			} `json:"rooms"`
		}
		if err := json.Unmarshal(o, &f); err != nil {
			c.parseErrs.Add(1)
			return
		}
		cn.mu.Lock()
		for _, r := range f.Rooms {
			s, ok := cn.last[r.Room]
			if !ok {
				cn.last[r.Room] = 0
			} else if s > r.Head {
				cn.last[r.Room] = r.Head // the server starts at its head
			}
		}
		cn.pending, cn.ready = len(f.Rooms), true
		cn.mu.Unlock()
	case bytes.HasPrefix(o, removed):
		c.fail(fmt.Errorf("unexpected %s", o))
	}
}

// texts are what bench posts say: realistic case-room chat, in Chinese.
var texts = []string{
	"卷宗已移送，请查收。",
	"收到，我们今天下午核对证据清单后回复。",
	"犯罪嫌疑人王某某已于今日上午九时刑事拘留，羁押于市看守所。",
	"请补充提供现场勘验笔录和两名证人的询问笔录，谢谢。",
	"本案拟于下周二提请批准逮捕，请检察院提前介入引导取证。",
	"延长侦查羁押期限的报告已经提交，请领导审批。",
	"法院已受理，案号待系统生成后同步到群里。",
	"辩护律师申请阅卷，时间定在周四上午，请书记员安排。",
	"鉴定意见书已出具，电子版上传到附件，原件随卷移送。",
	"关于退回补充侦查的两个问题，我们正在逐项落实，预计十日内完成。",
	"被害人家属情绪较为激动，请注意做好释法说理工作。",
	"政法委督办：请各单位于本月二十五日前报送办理进展。",
	"好的，明白。",
	"请注意：本案审查起诉期限将于三日后届满。",
	"已与派出所核实，涉案车辆已扣押并拍照固定。",
	"庭前会议定于下月三号上午九点，在第二审判庭召开。",
}

// postOne posts one message in r as its next sender, with send time ts in
// its client id, and waits for the answer.
func (c *child) postOne(ctx context.Context, r *room, ts int64, track bool) {
	n := r.n.Add(1)
	cn := r.conns[int(n)%len(r.conns)]
	cid := "b" + strconv.FormatInt(ts, 10) + "." + strconv.Itoa(c.spec.Index) + "." + strconv.FormatUint(c.cidSeq.Add(1), 10)
	if track {
		r.mu.Lock()
		r.inflight[cid] = new(int32)
		r.mu.Unlock()
	}
	body := `{"client_id":"` + cid + `","body":"` + texts[c.textN.Add(1)%uint64(len(texts))] + `"}`
	status, b, err := c.pp.post(ctx, "/api/v1/rooms/"+r.spec.ID+"/messages", c.spec.Users[cn.u].Access, body)
	if err != nil {
		if ctx.Err() != nil {
			return // the phase ended: neither acknowledged nor an error
		}
		c.postErrs.Add(1)
		c.fail(err)
		return
	}
	switch status {
	case http.StatusCreated:
		c.posted.Add(1)
		c.ackHist.add(float64(time.Now().UnixNano()-ts) / 1e3)
		if i := bytes.Index(b, seqKey); i >= 0 {
			seq, _ := intAt(b[i+len(seqKey):])
			r.mu.Lock()
			r.acked = append(r.acked, seq)
			r.mu.Unlock()
		}
	case http.StatusOK:
		c.postDup.Add(1)
	case http.StatusTooManyRequests:
		c.rateLimited.Add(1)
	default:
		c.postErrs.Add(1)
		c.fail(fmt.Errorf("post: %d %.200s", status, b))
	}
}

func cpuSelf() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func (c *child) counters() map[string]any {
	m := map[string]any{
		"deliveries": c.deliveries.Load(), "frames": c.frames.Load(), "gaps": c.gaps.Load(), "dups": c.dups.Load(),
		"disconnects": c.disconnects.Load(), "parse_errors": c.parseErrs.Load(), "posted": c.posted.Load(),
		"post_dups": c.postDup.Load(), "post_errors": c.postErrs.Load(), "rate_limited": c.rateLimited.Load(),
		"backlog_drops": c.backlogDrop.Load(), "stalls": c.stalls.Load(),
	}
	if e := c.firstErr.Load(); e != nil {
		m["first_error"] = e
	}
	return m
}

// window measures counters over d after warm, while load runs.
func (c *child) window(warm, d time.Duration) map[string]any {
	time.Sleep(warm)
	c.latHist.reset()
	c.ackHist.reset()
	d0, p0, cpu0 := c.deliveries.Load(), c.posted.Load(), cpuSelf()
	t0 := time.Now()
	c.winFrom.Store(t0.UnixNano())
	c.winTo.Store(t0.Add(d).UnixNano())
	time.Sleep(d)
	el := time.Since(t0).Seconds()
	return map[string]any{"secs": el, "deliveries": c.deliveries.Load() - d0, "posted": c.posted.Load() - p0,
		"client_cpu": cpuSelf() - cpu0}
}

// runSat is the closed loop: every fan-out room keeps w posts in flight; a
// post's slot returns when all the room's members received it.
func (c *child) runSat(d time.Duration, w int, warm time.Duration) map[string]any {
	ctx, cancel := context.WithCancel(context.Background())
	for _, r := range c.post {
		r.mu.Lock()
		r.inflight = map[string]*int32{}
		r.tokens = make(chan struct{}, w)
		r.mu.Unlock()
	}
	c.winFrom.Store(time.Now().Add(warm).UnixNano())
	c.phase.Store(phSat)
	var wg sync.WaitGroup
	for _, r := range c.post {
		for k := 0; k < w; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTimer(time.Hour)
				defer t.Stop()
				for ctx.Err() == nil {
					c.postOne(ctx, r, time.Now().UnixNano(), true)
					t.Reset(2 * time.Second)
					select {
					case <-ctx.Done():
						return
					case <-r.tokens:
					case <-t.C:
						c.stalls.Add(1) // a delivery went missing: the verify step will say which
					}
				}
			}()
		}
	}
	res := c.window(warm, d)
	cancel()
	wg.Wait()
	c.phase.Store(phIdle)
	time.Sleep(time.Second) // let the last deliveries land
	return c.result("sat", res)
}

func (c *child) result(ev string, m map[string]any) map[string]any {
	m["ev"] = ev
	m["lat_hist"] = c.latHist.sparse()
	m["ack_hist"] = c.ackHist.sparse()
	for k, v := range c.counters() {
		m["total_"+k] = v
	}
	return m
}

// openLoop posts rate posts/s over the fan-out rooms, round robin, each with
// its intended send time, until stop is closed; a post that finds every
// poster busy is counted as a backlog drop, not sent late.
func (c *child) openLoop(rate float64, stop <-chan struct{}) {
	if rate <= 0 || len(c.post) == 0 {
		<-stop
		return
	}
	type job struct {
		r  *room
		ts int64
	}
	jobs := make(chan job, 4096)
	var wg sync.WaitGroup
	for w := 0; w < max(c.spec.Posters, 8); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				c.postOne(context.Background(), j.r, j.ts, false)
			}
		}()
	}
	start := time.Now()
	interval := float64(time.Second) / rate
	next := rand.IntN(len(c.post))
	var scheduled int64
	tick := time.NewTicker(time.Millisecond)
loop:
	for {
		select {
		case <-stop:
			break loop
		case now := <-tick.C:
			due := int64(float64(now.Sub(start)) / interval)
			for ; scheduled < due; scheduled++ {
				ts := start.Add(time.Duration(float64(scheduled) * interval)).UnixNano()
				select {
				case jobs <- job{c.post[next], ts}:
				default:
					c.backlogDrop.Add(1)
				}
				next = (next + 1) % len(c.post)
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
}

// runLat offers rate posts/s (open loop) and records post-to-delivery
// latency of the posts sent within the window.
func (c *child) runLat(rate float64, d, warm time.Duration) map[string]any {
	c.phase.Store(phLat)
	c.winFrom.Store(time.Now().Add(time.Hour).UnixNano()) // nothing until the window opens
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { c.openLoop(rate, stop); close(done) }()
	res := c.window(warm, d)
	close(stop)
	<-done
	time.Sleep(1500 * time.Millisecond) // deliveries of the window's last posts
	c.phase.Store(phIdle)
	return c.result("lat", res)
}

// runStorm drops every socket at once, reconnects them all with their
// positions while posts go on at rate, and reports when the last session had
// caught up in all of its rooms.
func (c *child) runStorm(rate float64, limit time.Duration) map[string]any {
	c.phase.Store(phStorm)
	now := time.Now()
	c.winFrom.Store(now.UnixNano())
	c.winTo.Store(now.Add(time.Hour).UnixNano())
	c.latHist.reset()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { c.openLoop(rate, stop); close(done) }()
	time.Sleep(time.Second)
	d0, p0, del0 := c.disconnects.Load(), c.posted.Load(), c.deliveries.Load()
	c.dropping.Store(true)
	c.resumed.Store(0)
	t0 := time.Now()
	for _, cn := range c.conns {
		if cn.ws != nil {
			cn.ws.CloseNow()
		}
	}
	time.Sleep(max(c.spec.Pause, 100*time.Millisecond)) // readers see their sockets end; the server closes its ends
	c.dropping.Store(false)
	ok, failed := c.connectAll(context.Background(), true)
	dialed := time.Since(t0).Seconds()
	deadline := time.Now().Add(limit)
	for c.resumed.Load() < int64(ok) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resumed := c.resumed.Load()
	secs := float64(c.resumedAt.Load()-t0.UnixNano()) / 1e9
	if resumed < int64(ok) {
		secs = -1
	}
	time.Sleep(time.Second)
	close(stop)
	<-done
	time.Sleep(1500 * time.Millisecond)
	c.phase.Store(phIdle)
	return c.result("storm", map[string]any{"reconnected": ok, "failed": failed, "resumed": resumed,
		"posted": c.posted.Load() - p0, "deliveries": c.deliveries.Load() - del0,
		"dial_secs": dialed, "resume_secs": secs, "disconnects_during": c.disconnects.Load() - d0})
}

// runIngest is durable ingest: p posters post as fast as they are answered,
// over every room of this child, for d after warm. The warm-up covers the
// server's first post of each (room, member) pair, which reads the room and
// the membership from the store before the access cache has them.
func (c *child) runIngest(p int, d, warm time.Duration) map[string]any {
	before := c.heads(c.rooms)
	for _, r := range c.rooms {
		r.mu.Lock()
		r.acked = r.acked[:0]
		r.mu.Unlock()
	}
	c.phase.Store(phIngest)
	var next atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := c.rooms[int(next.Add(1))%len(c.rooms)]
				c.postOne(context.Background(), r, time.Now().UnixNano(), false)
			}
		}()
	}
	res := c.window(warm, d)
	close(stop)
	wg.Wait()
	c.phase.Store(phIdle)
	// Every acknowledged post has its own seq, and the acknowledged seqs of a
	// room are exactly the entries added to it: contiguous from the head before.
	after := c.heads(c.rooms)
	bad, acked := 0, 0
	for _, r := range c.rooms {
		r.mu.Lock()
		s := slices.Clone(r.acked)
		r.mu.Unlock()
		slices.Sort(s)
		acked += len(s)
		h0, h1 := before[r.spec.ID], after[r.spec.ID]
		ok := int64(len(s)) == h1-h0
		for i, v := range s {
			if v != h0+1+int64(i) {
				ok = false
			}
		}
		if !ok {
			bad++
		}
	}
	res["rooms_checked"], res["rooms_bad"], res["acked_checked"] = len(c.rooms), bad, acked
	return c.result("ingest", res)
}

// heads reads each room's head over HTTP as one of its members.
func (c *child) heads(rs []*room) map[string]int64 {
	out := make(map[string]int64, len(rs))
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(rs) {
					return
				}
				r := rs[i]
				h, err := c.head(r)
				if err != nil {
					c.fail(err)
					h = -1
				}
				mu.Lock()
				out[r.spec.ID] = h
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

func (c *child) head(r *room) (int64, error) {
	req, _ := http.NewRequest("GET", c.spec.URL+"/api/v1/rooms/"+r.spec.ID, nil)
	req.Header.Set("Authorization", "Bearer "+c.spec.Users[r.spec.Members[0]].Access)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Head int64 `json:"head"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET room %s: %d", r.spec.ID, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, err
	}
	return v.Head, nil
}

// verify checks that every connected member of every fan-out room has
// received every entry of it up to its head (and, through gaps and dups,
// each exactly once and in order), and reports the heads for the next run.
func (c *child) verify() map[string]any {
	time.Sleep(500 * time.Millisecond)
	res := map[string]any{"ev": "verify"}
	var check []*room
	if c.spec.Connect {
		check = c.post
	}
	heads := c.heads(check)
	// Deliveries may still be under way (after a storm the server catches
	// up for a while): wait, bounded, until every member is at the head.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		behind := false
		for _, r := range check {
			for _, cn := range r.conns {
				cn.mu.Lock()
				if cn.ws != nil && cn.last[r.spec.ID] < heads[r.spec.ID] {
					behind = true
				}
				cn.mu.Unlock()
			}
		}
		if !behind {
			break
		}
	}
	missing, checked, notConnected := 0, 0, 0
	for _, r := range check {
		h := heads[r.spec.ID]
		for _, cn := range r.conns {
			cn.mu.Lock()
			got, ws := cn.last[r.spec.ID], cn.ws
			cn.mu.Unlock()
			if ws == nil {
				notConnected++
				continue
			}
			checked++
			if got != h {
				missing++
				if missing <= 3 {
					fmt.Fprintf(os.Stderr, "child %d: %s has %s up to %d, head %d\n", c.spec.Index, c.spec.Users[cn.u].ID, r.spec.ID, got, h)
				}
			}
		}
	}
	// Heads for the next run's since: the fan-out rooms' as read, the others'
	// as the members saw them; unit rooms by unit.
	all := map[string]int64{}
	units := map[string]string{}
	for _, cn := range c.conns {
		cn.mu.Lock()
		for r, s := range cn.last {
			all[r] = max(all[r], s)
			if c.byID[r] == nil {
				units[c.spec.Users[cn.u].Unit] = r
			}
		}
		cn.mu.Unlock()
	}
	for r, h := range heads {
		if h >= 0 { // -1: the read failed
			all[r] = h
		}
	}
	if !c.spec.Connect {
		for r, h := range c.heads(c.rooms) {
			all[r] = h
		}
	}
	res["member_rooms_checked"], res["member_rooms_missing"], res["not_connected"] = checked, missing, notConnected
	res["heads"], res["unit_rooms"] = all, units
	for k, v := range c.counters() {
		res["total_"+k] = v
	}
	if missing > 0 || c.gaps.Load() > 0 || c.dups.Load() > 0 {
		res["ok"] = false
	} else {
		res["ok"] = true
	}
	return res
}
