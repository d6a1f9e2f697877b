package chatws_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"caseroom/acl"
	"caseroom/acl/token"
	"caseroom/chat"
	"caseroom/chat/chatws"
)

// waitLimit bounds every wait of these tests; it only limits a failing test.
const waitLimit = 30 * time.Second

// seenTypes records every server frame type the tests receive, so that
// TestMain can fail when the server sent one ServerFrames does not list.
var (
	seenMu    sync.Mutex
	seenTypes = map[string]bool{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	seenMu.Lock()
	for typ := range seenTypes {
		if !slices.Contains(chatws.ServerFrames, typ) {
			fmt.Fprintf(os.Stderr, "FAIL: the server sent a %q frame, which chatws.ServerFrames (and so docs/protocol.md) does not list\n", typ)
			code = 1
		}
	}
	seenMu.Unlock()
	os.Exit(code)
}

// wsFrame is a server frame decoded loosely for checks, with its bytes.
type wsFrame struct {
	Type    string           `json:"type"`
	Room    chat.RoomID      `json:"room"`
	Seq     chat.Seq         `json:"seq"`
	User    acl.UserID       `json:"user"`
	Code    string           `json:"code"`
	Frame   string           `json:"frame"`
	Rooms   []chat.RoomHead  `json:"rooms"`
	Message *json.RawMessage `json:"message"`
	Online  []acl.UserID     `json:"online"`
	Offline []acl.UserID     `json:"offline"`
	raw     []byte
}

type client struct {
	t       *testing.T
	c       *websocket.Conn
	pending []wsFrame
	batches int // messages that held more than one frame
}

func wsURL(e *env) string { return "ws" + strings.TrimPrefix(e.url, "http") + "/api/v1/ws" }

// dial opens a socket without saying anything.
func dial(t *testing.T, e *env, h http.Header) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL(e), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(chatws.MaxServerFrame)
	t.Cleanup(func() { c.CloseNow() })
	return &client{t: t, c: c}
}

// connect opens a socket as user, sends hello and reads the ready frame.
func connect(t *testing.T, e *env, user string, since map[chat.RoomID]chat.Seq) *client {
	t.Helper()
	tk, _ := e.login(user)
	c := dial(t, e, nil)
	c.send(chatws.Hello{Type: "hello", Token: tk, Since: since})
	if f := c.next(); f.Type != "ready" {
		t.Fatalf("first frame %s, want ready", f.raw)
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, or the error that ended the socket.
func (c *client) read(ctx context.Context) (wsFrame, error) {
	for len(c.pending) == 0 {
		typ, b, err := c.c.Read(ctx)
		if err != nil {
			return wsFrame{}, err
		}
		if typ != websocket.MessageText {
			c.t.Fatalf("binary message from the server")
		}
		var raws []json.RawMessage
		if bytes.HasPrefix(b, []byte("[")) {
			if err := json.Unmarshal(b, &raws); err != nil {
				c.t.Fatalf("batch %s: %v", b, err)
			}
			c.batches++
		} else {
			raws = []json.RawMessage{b}
		}
		for _, r := range raws {
			var f wsFrame
			if err := json.Unmarshal(r, &f); err != nil {
				c.t.Fatalf("frame %s: %v", r, err)
			}
			f.raw = r
			// Every frame the server really sends must decode strictly into the
			// type protocol_test.go checks the documentation with.
			if typ, err := decodeServerFrame(r); err != nil {
				c.t.Errorf("server frame %s (%s) does not decode strictly: %v", r, typ, err)
			}
			seenMu.Lock()
			seenTypes[f.Type] = true
			seenMu.Unlock()
			c.pending = append(c.pending, f)
		}
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

func (c *client) next() wsFrame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	f, err := c.read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// until reads frames until ok holds for one, and returns it.
func (c *client) until(what string, ok func(wsFrame) bool) wsFrame {
	c.t.Helper()
	for {
		f := c.next()
		if ok(f) {
			return f
		}
		_ = what
	}
}

func isType(typ string) func(wsFrame) bool { return func(f wsFrame) bool { return f.Type == typ } }

// closed reads until the socket ends and returns its close status (-1 when
// it ended without a close frame).
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		_, err := c.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.t.Fatal("socket still open")
			}
			return websocket.CloseStatus(err)
		}
	}
}

func TestHelloTimeout(t *testing.T) {
	e := mustEnv(t, chatws.Options{HelloTimeout: 200 * time.Millisecond}, chat.HubOptions{})
	c := dial(t, e, nil)
	if got := c.closed(); got != chatws.CloseHelloTimeout {
		t.Fatalf("close status %d, want %d (hello timeout)", got, chatws.CloseHelloTimeout)
	}
}

func TestTokenRefused(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	_, who := e.login(police)
	other, err := token.NewIssuer(bytes.Repeat([]byte{7}, 32), token.IssuerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.Issue(who, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := e.issuer.Issue(who, e.clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		hello any
		want  websocket.StatusCode
	}{
		{"forged", chatws.Hello{Type: "hello", Token: forged}, chatws.CloseUnauthorized},
		{"expired", chatws.Hello{Type: "hello", Token: expired}, chatws.CloseTokenExpired},
		{"garbage", chatws.Hello{Type: "hello", Token: "not.a.jwt"}, chatws.CloseUnauthorized},
		{"missing", chatws.Hello{Type: "hello"}, chatws.CloseUnauthorized},
		{"not a hello", chatws.Ping{Type: "ping"}, chatws.CloseBadHello},
		{"not JSON", []byte("hello?"), chatws.CloseBadHello},
		{"unknown field", []byte(`{"type":"hello","token":"x","extra":1}`), chatws.CloseBadHello},
	} {
		c := dial(t, e, nil)
		c.send(tc.hello)
		if got := c.closed(); got != tc.want {
			t.Errorf("%s token: close status %d, want %d", tc.name, got, tc.want)
		}
	}
	// A bad bearer header is refused before the upgrade.
	_, resp, err := websocket.Dial(context.Background(), wsURL(e), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + forged}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial with a forged bearer token: %v, %v; want 401", err, resp)
	}
}

func TestBearerHeader(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	tk, who := e.login(police)
	c := dial(t, e, http.Header{"Authorization": {"Bearer " + tk}})
	c.send(chatws.Hello{Type: "hello"})
	if f := c.next(); f.Type != "ready" || f.User != who.User {
		t.Fatalf("got %s, want ready for %s", f.raw, who.User)
	}
	// The token may not come twice.
	c = dial(t, e, http.Header{"Authorization": {"Bearer " + tk}})
	c.send(chatws.Hello{Type: "hello", Token: tk})
	if got := c.closed(); got != chatws.CloseBadHello {
		t.Fatalf("close %d, want %d", got, chatws.CloseBadHello)
	}
}

func TestOriginAllowList(t *testing.T) {
	e := mustEnv(t, chatws.Options{OriginPatterns: []string{"app.example.org"}}, chat.HubOptions{})
	for origin, ok := range map[string]bool{"https://evil.example.com": false, "https://app.example.org": true} {
		c, resp, err := websocket.Dial(context.Background(), wsURL(e), &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		if ok {
			if err != nil {
				t.Fatalf("origin %s refused: %v", origin, err)
			}
			c.CloseNow()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("origin %s: %v %v, want 403", origin, err, resp)
		}
	}
}

// TestBadFramesChangeNothing: each bad frame gets an error frame and the
// socket goes on.
func TestBadFramesChangeNothing(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	room := e.mustRoom(police, prosecutor)
	c := connect(t, e, police, nil)
	c.until("caught up", isType("caught_up"))
	for _, tc := range []struct {
		frame any
		code  string
	}{
		{[]byte("{not json"), chatws.CodeBadFrame},
		{[]byte(`[1,2]`), chatws.CodeBadFrame},
		{[]byte(`{"room":"x"}`), chatws.CodeBadFrame},
		{[]byte(`{"type":"shout","room":"x"}`), chatws.CodeUnknownFrame},
		{[]byte(`{"type":"read","room":"` + string(room) + `","seq":"1"}`), chatws.CodeBadFrame},
		{[]byte(`{"type":"read","room":"` + string(room) + `","seq":1,"user":"x"}`), chatws.CodeBadFrame},
		{[]byte(`{"type":"read","room":"` + string(room) + `","seq":-1}`), chatws.CodeBadFrame},
		{[]byte(`{"type":"typing","room":""}`), chatws.CodeBadFrame},
		{[]byte(`{"type":"ping"} {"type":"ping"}`), chatws.CodeBadFrame},
		{chatws.Hello{Type: "hello", Token: "again"}, chatws.CodeUnexpectedHello},
		{chatws.Read{Type: "read", Room: "no-such-room", Seq: 1}, chatws.CodeNotFound},
		{chatws.Typing{Type: "typing", Room: "no-such-room"}, chatws.CodeNotFound},
	} {
		c.send(tc.frame)
		f := c.until("an error frame", func(f wsFrame) bool { return f.Type == "error" })
		if f.Code != tc.code {
			t.Errorf("frame %v: error %s, want code %s", tc.frame, f.raw, tc.code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if f := c.until("error", isType("error")); f.Code != chatws.CodeBadFrame {
		t.Errorf("binary frame: %s", f.raw)
	}
	c.send(chatws.Ping{Type: "ping"})
	c.until("pong", isType("pong"))
	if r, err := e.chat.ReadMarkers(context.Background(), room); err != nil || len(r) != 0 {
		t.Errorf("read markers after bad frames: %v %v, want none", r, err)
	}
	// An oversized frame closes the socket with 1009.
	c.send(append(append([]byte(`{"type":"typing","room":"`), bytes.Repeat([]byte("x"), chatws.MaxClientFrame)...), `"}`...))
	if got := c.closed(); got != websocket.StatusMessageTooBig {
		t.Fatalf("oversized frame: close %d, want %d", got, websocket.StatusMessageTooBig)
	}
}

// TestLargestHelloFits: a hello at the protocol's limits is read.
func TestLargestHelloFits(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	since := map[chat.RoomID]chat.Seq{}
	for i := range chatws.MaxSinceRooms {
		since[chat.RoomID(fmt.Sprintf("%064d", i))] = 1<<63 - 1
	}
	tk, _ := e.login(police)
	h := chatws.Hello{Type: "hello", Token: tk + strings.Repeat(" ", 0), Since: since}
	b, _ := json.MarshalIndent(h, "", "  ")
	if len(b) > chatws.MaxClientFrame {
		t.Fatalf("the largest hello is %d bytes, above MaxClientFrame %d", len(b), chatws.MaxClientFrame)
	}
	c := dial(t, e, nil)
	c.send(b)
	if f := c.next(); f.Type != "ready" {
		t.Fatalf("got %s", f.raw)
	}
	// Every one of those rooms is unknown to the user: each is reported removed.
	n := 0
	for n < chatws.MaxSinceRooms {
		if c.next().Type == "room_removed" {
			n++
		}
	}
}

func TestRateLimitAnswersEveryFrame(t *testing.T) {
	e := mustEnv(t, chatws.Options{FrameRate: 1, FrameBurst: 5}, chat.HubOptions{})
	c := connect(t, e, police, nil)
	const n = 30
	for range n {
		c.send(chatws.Ping{Type: "ping"})
	}
	pongs, limited := 0, 0
	for pongs+limited < n {
		switch f := c.next(); {
		case f.Type == "pong":
			pongs++
		case f.Type == "error" && f.Code == chatws.CodeRateLimited:
			limited++
		}
	}
	if pongs < 5 || limited == 0 {
		t.Fatalf("%d pongs and %d rate_limited errors for %d pings", pongs, limited, n)
	}
}

func TestResumeBacklogThenLive(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	room := e.mustRoom(police, prosecutor)
	for i := range 30 {
		e.mustPost(police, room, fmt.Sprint("消息 ", i))
	}
	c := connect(t, e, prosecutor, map[chat.RoomID]chat.Seq{room: 10})
	var got []chat.Seq
	for {
		f := c.next()
		if f.Type == "message" {
			got = append(got, f.Seq)
		}
		if f.Type == "caught_up" {
			if f.Seq != 31 {
				t.Fatalf("caught_up at %d, want 31", f.Seq)
			}
			break
		}
	}
	if want := seqs(11, 31); !slices.Equal(got, want) {
		t.Fatalf("backlog %v, want %v", got, want)
	}
	m := e.mustPost(police, room, "live")
	if f := c.until("live", isType("message")); f.Seq != m.Seq {
		t.Fatalf("live seq %d, want %d", f.Seq, m.Seq)
	}
}

func seqs(from, to chat.Seq) []chat.Seq {
	var out []chat.Seq
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestTypingAndReadReachMembers(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	room := e.mustRoom(police, prosecutor)
	m := e.mustPost(police, room, "请查收")
	a := connect(t, e, police, map[chat.RoomID]chat.Seq{room: m.Seq})
	b := connect(t, e, prosecutor, map[chat.RoomID]chat.Seq{room: m.Seq})
	a.until("caught up", isType("caught_up"))
	b.until("caught up", isType("caught_up"))
	_, pros := e.login(prosecutor)
	b.send(chatws.Typing{Type: "typing", Room: room})
	if f := a.until("typing", isType("typing")); f.User != pros.User || f.Room != room {
		t.Fatalf("typing frame %s", f.raw)
	}
	b.send(chatws.Read{Type: "read", Room: room, Seq: m.Seq})
	if f := a.until("read", isType("read")); f.User != pros.User || f.Seq != m.Seq {
		t.Fatalf("read frame %s", f.raw)
	}
}

func TestRevokeClosesSocket(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	c := connect(t, e, police, nil)
	_, who := e.login(police)
	e.broker.Publish(context.Background(), chat.Event{Type: chat.EvRevoke, User: who.User})
	if got := c.closed(); got != chatws.CloseRevoked {
		t.Fatalf("close %d, want %d", got, chatws.CloseRevoked)
	}
}

// TestSlowConsumerIsCutOff: a client that stops reading is dropped while the
// other member of the room receives every entry.
func TestSlowConsumerIsCutOff(t *testing.T) {
	e := mustEnv(t, chatws.Options{WriteTimeout: time.Second}, chat.HubOptions{SendQueue: 64})
	room := e.mustRoom(police, prosecutor, judge)
	fast := connect(t, e, prosecutor, nil)
	slow := connect(t, e, judge, nil)
	fast.until("caught up", isType("caught_up"))
	slow.until("caught up", isType("caught_up"))
	body := strings.Repeat("案", 5000) // 15 KB: the socket buffers fill soon
	const n = 600
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			if _, _, err := e.svc.Post(e.as(police), room, chat.Post{Body: fmt.Sprint(i, body)}); err != nil {
				t.Errorf("post: %v", err)
				return
			}
		}
	}()
	var last chat.Seq = 1
	for last < n+1 {
		f := fast.next()
		if f.Type == "message" {
			if f.Seq != last+1 {
				t.Fatalf("fast client: seq %d after %d", f.Seq, last)
			}
			last = f.Seq
		}
	}
	<-done
	// The slow one was cut off: its socket ends before it has everything.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	got := 0
	for {
		f, err := slow.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal("slow client still connected")
			}
			if s := websocket.CloseStatus(err); s != chatws.CloseSlowConsumer && s != -1 {
				t.Fatalf("slow client closed with %d, want %d or a dropped connection", s, chatws.CloseSlowConsumer)
			}
			break
		}
		if f.Type == "message" {
			got++
		}
	}
	if got >= n {
		t.Fatalf("slow client received all %d messages", got)
	}
}

// TestCoalescing: entries queued while the writer is busy arrive as arrays.
func TestCoalescing(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	room := e.mustRoom(police, prosecutor)
	for range 200 {
		e.mustPost(police, room, "批量")
	}
	c := connect(t, e, prosecutor, nil)
	c.until("caught up", isType("caught_up"))
	if c.batches == 0 {
		t.Fatal("a 200-entry backlog came one frame per message")
	}
}

// TestHeartbeatDropsSilentPeer: a peer that stops answering pings is dropped
// (seen by another member as going offline), while one that reads stays.
func TestHeartbeatDropsSilentPeer(t *testing.T) {
	e := mustEnv(t, chatws.Options{PingInterval: 100 * time.Millisecond, WriteTimeout: time.Second},
		chat.HubOptions{PresenceInterval: 20 * time.Millisecond})
	room := e.mustRoom(police, prosecutor)
	_, bob := e.login(prosecutor)
	alice := connect(t, e, police, nil)
	alice.until("caught up", isType("caught_up"))
	connect(t, e, prosecutor, nil) // reads nothing more, so answers no ping
	alice.until("bob online", func(f wsFrame) bool { return f.Type == "presence" && slices.Contains(f.Online, bob.User) })
	f := alice.until("bob offline", func(f wsFrame) bool { return f.Type == "presence" && slices.Contains(f.Offline, bob.User) })
	if f.Room != room {
		t.Fatalf("presence for room %s, want %s", f.Room, room)
	}
	alice.send(chatws.Ping{Type: "ping"})
	alice.until("pong", isType("pong"))
}

// TestHelloSentWithTheUpgrade: a client that sends its hello in the same
// write as the upgrade request, before the 101 arrives, is served; the bytes
// the HTTP server read past the request are not lost when the socket gets its
// own, smaller buffers.
func TestHelloSentWithTheUpgrade(t *testing.T) {
	e := mustEnv(t, chatws.Options{}, chat.HubOptions{})
	e.mustRoom(police, prosecutor)
	tk, who := e.login(police)
	hello, _ := json.Marshal(chatws.Hello{Type: "hello"})

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	var out bytes.Buffer
	fmt.Fprintf(&out, "GET /api/v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		strings.TrimPrefix(e.url, "http://"), tk)
	// One masked text frame (a client must mask), payload under 126 bytes.
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out.Write([]byte{0x81, 0x80 | byte(len(hello))})
	out.Write(mask[:])
	for i, b := range hello {
		out.WriteByte(b ^ mask[i%4])
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	// The first server frame: unmasked text, its length in 7, 16 or 64 bits.
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("no frame after the upgrade: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		io.ReadFull(br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	if h[0] != 0x81 || n > chatws.MaxServerFrame {
		t.Fatalf("first frame header %x, length %d: not a text frame", h, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	// Frames queued together come as one JSON array.
	var fs []wsFrame
	if payload[0] != '[' {
		payload = append(append([]byte{'['}, payload...), ']')
	}
	if err := json.Unmarshal(payload, &fs); err != nil || len(fs) == 0 || fs[0].Type != "ready" || fs[0].User != who.User {
		t.Fatalf("first frame %s, want ready for %s", payload, who.User)
	}
}
