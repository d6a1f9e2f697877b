// Package chatws is caseroom's WebSocket transport: one socket per client
// carries the server's events for all of the user's rooms — the backlog after
// each seq the client names, then live entries — and a few light frames in
// (typing, read markers, pings). Posting goes over HTTP (chathttp). The
// protocol, every frame and every close code, is docs/protocol.md.
//
// An idle connection holds one goroutine, its reader. The writer runs only
// while the hub's chat.Session has something to send: the session's wake
// starts it, it drains the session and ends when nothing is left, so frames
// queued while it was writing go out coalesced as one WebSocket message
// holding a JSON array. Heartbeats are WebSocket pings from the server every
// PingInterval, run by one timer per connection; a peer that does not answer
// within WriteTimeout is dropped.
package chatws

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"caseroom/acl"
	"caseroom/chat"
)

// Close codes (docs/protocol.md, "Close codes"). The standard ones used are
// 1001 (going away: the server is stopping), 1008 (policy violation: a binary
// message), 1009 (message too big: a frame above MaxClientFrame) and 1011
// (internal error).
const (
	CloseBadHello     websocket.StatusCode = 4000 // the first frame was not a valid hello
	CloseUnauthorized websocket.StatusCode = 4001 // no token, or a token that does not verify
	CloseTokenExpired websocket.StatusCode = 4002 // the token has expired: refresh it and reconnect
	CloseRevoked      websocket.StatusCode = 4003 // the session was revoked (logout, disabled, password changed)
	CloseHelloTimeout websocket.StatusCode = 4004 // no hello within HelloTimeout
	CloseSlowConsumer websocket.StatusCode = 4008 // the client fell behind its send queue: reconnect and resume
)

// Service is what the socket asks of chat.Service for client frames; the
// subject is in the context.
type Service interface {
	MarkRead(ctx context.Context, room chat.RoomID, seq chat.Seq) (chat.Seq, error)
	Typing(ctx context.Context, room chat.RoomID) error
}

// Options tune the handler. Zero fields take the defaults stated.
type Options struct {
	// OriginPatterns lists the origins allowed besides the request's own host
	// (websocket.AcceptOptions.OriginPatterns); none by default.
	OriginPatterns []string
	// HelloTimeout is how long a new socket has to send its hello; default 5s.
	HelloTimeout time.Duration
	// PingInterval is the time between the server's pings; default 25s.
	PingInterval time.Duration
	// WriteTimeout bounds each write and the wait for each pong; default 10s.
	WriteTimeout time.Duration
	// FrameRate is how many client frames per second a user may send, over all
	// of their sockets on this node, with FrameBurst above it; default 10 and 20.
	// A frame beyond gets an error frame (rate_limited) and is not processed.
	FrameRate  float64
	FrameBurst int
	// MaxBatch caps the bytes of one coalesced WebSocket message; default
	// 64 KiB. A single frame larger than it goes alone.
	MaxBatch int
}

func (o *Options) defaults() {
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 5 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.FrameRate <= 0 {
		o.FrameRate = 10
	}
	if o.FrameBurst <= 0 {
		o.FrameBurst = 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64 << 10
	}
}

type handler struct {
	hub    *chat.Hub
	svc    Service
	verify func(ctx context.Context, token string) (acl.Subject, error)
	opts   Options
	log    *slog.Logger

	limitsMu sync.Mutex
	limits   map[acl.UserID]*bucket // guarded by limitsMu; one per user with sockets here

	setup *setupPool
}

// NewHandler returns the handler of GET /api/v1/ws. verify turns an access
// token into its subject; an error wrapping acl.ErrTokenExpired closes with
// CloseTokenExpired, any other with CloseUnauthorized.
func NewHandler(hub *chat.Hub, svc Service, verify func(ctx context.Context, token string) (acl.Subject, error), opts Options, log *slog.Logger) http.Handler {
	opts.defaults()
	h := &handler{hub: hub, svc: svc, verify: verify, opts: opts, log: log, limits: map[acl.UserID]*bucket{}}
	h.setup = newSetupPool(h.afterBurst)
	return h
}

// afterBurst collects and hands the heap's free pages back to the system once
// a burst of connections is over (setupPool says why). The collection costs
// the pause of one forced cycle, once per burst.
func (h *handler) afterBurst(setups int) {
	start := time.Now()
	debug.FreeOSMemory()
	h.log.Info("chatws: burst of connections over, free memory returned", "setups", setups, "took", time.Since(start))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A client that can set headers authenticates on the upgrade; a bad token
	// is refused before the upgrade, with a plain 401.
	var who *acl.Subject
	if auth := r.Header.Get("Authorization"); auth != "" {
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		var s acl.Subject
		var err error
		h.setup.run(func() { s, err = h.verify(r.Context(), tok) })
		if !ok || err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"code":"unauthenticated","message":"the access token is missing, invalid or expired"}}`))
			return
		}
		who = &s
	}
	sb := &smallBuffers{ResponseWriter: w}
	c, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		OriginPatterns:  h.opts.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has written the HTTP error
	}
	handedOff := false
	defer func() {
		if !handedOff {
			c.CloseNow()
		}
	}()
	c.SetReadLimit(MaxClientFrame)
	// The socket outlives the request, so its context keeps the request's
	// values (the request id for logs) but not its cancellation; nor has it
	// one of its own: a cancellable context held by every idle socket costs
	// its Done channel and the registrations reads made on it. Whatever ends
	// the socket closes its connection, which ends any read or write.
	ctx := context.WithoutCancel(r.Context())

	hello, code, reason := h.hello(ctx, c, who != nil)
	switch {
	case code != 0:
		c.Close(code, reason)
		return
	case hello == nil: // the peer left or timed out before its hello
		return
	}
	// The token check and the join run on a setup worker (setupPool says why).
	var sess *chat.Session
	var verr error
	h.setup.run(func() {
		if who == nil {
			s, err := h.verify(ctx, hello.Token)
			if err != nil {
				verr = err
				return
			}
			who = &s
		}
		sess, err = h.hub.Join(ctx, *who, hello.Since)
	})
	switch {
	case errors.Is(verr, acl.ErrTokenExpired):
		c.Close(CloseTokenExpired, "token expired")
		return
	case verr != nil:
		c.Close(CloseUnauthorized, "unauthorized")
		return
	}
	if err != nil {
		if errors.Is(err, chat.ErrHubClosed) {
			c.Close(websocket.StatusGoingAway, "server stopping")
		} else {
			h.log.ErrorContext(ctx, "chatws: join failed", "user", who.User, "err", err)
			c.Close(websocket.StatusInternalError, "internal error")
		}
		return
	}
	// The connection is hijacked: this handler returns, and with it the
	// request and its headers; the socket goes on in one small goroutine, its
	// reader, and a writer that runs only while there is something to send.
	handedOff = true
	k := h.start(ctx, c, sb.out, sess, *who)
	go k.read()
}

// A socket is an established connection: its session, its writer and its
// heartbeat. Its one goroutine is the reader.
type socket struct {
	h    *handler
	ctx  context.Context // carries the subject, for client frames
	c    *websocket.Conn
	sess *chat.Session
	user acl.UserID
	lim  *bucket
	hb   *time.Timer
	w    *writer
}

// start sets up an established socket, on the handler's goroutine, so that
// the reader's goroutine starts with nothing but its loop.
func (h *handler) start(ctx context.Context, c *websocket.Conn, out *connWriter, sess *chat.Session, who acl.Subject) *socket {
	k := &socket{h: h, ctx: acl.WithSubject(ctx, who), c: c, sess: sess, user: who.User, lim: h.limiter(who.User)}
	k.w = &writer{h: h, ctx: ctx, c: c, out: out, sess: sess}
	// Heartbeat: one timer per connection, whose goroutine lives only for a ping.
	k.hb = time.AfterFunc(time.Hour, func() {
		pctx, pcancel := context.WithTimeout(ctx, h.opts.WriteTimeout)
		defer pcancel()
		if err := c.Ping(pctx); err != nil {
			k.w.gone.Store(true) // no pong in time: the peer is gone
			c.CloseNow()
			return
		}
		if !k.w.gone.Load() {
			k.hb.Reset(h.opts.PingInterval)
		}
	})
	k.hb.Reset(h.opts.PingInterval) // after k.hb is set, which the callback reads
	k.w.dog = time.AfterFunc(time.Hour, func() { c.CloseNow() })
	k.w.dog.Stop()
	sess.OnWake(k.w.wake)
	return k
}

// read is the socket's goroutine: it handles client frames until the socket
// closes (from either side, or because the writer ended it), then takes the
// session out of the hub. Where it waits it is kept shallow — the setup ran in
// start, each frame is handled in a call of its own, reads take no context —
// because the runtime starts every new goroutine with the average stack in
// use, and with thousands of idle readers that average is theirs.
func (k *socket) read() {
	for {
		typ, b, err := k.c.Read(context.Background())
		if err != nil {
			break // closed by either side; an oversized frame closes with 1009
		}
		k.handle(typ, b)
	}
	k.w.gone.Store(true)
	k.hb.Stop()
	k.w.dog.Stop()
	k.sess.Close()
	k.c.CloseNow()
	k.h.release(k.user)
}

// hello reads and checks the first frame within HelloTimeout. A non-zero code
// says how to close instead.
func (h *handler) hello(ctx context.Context, c *websocket.Conn, headerAuth bool) (*Hello, websocket.StatusCode, string) {
	timedOut := make(chan struct{})
	t := time.AfterFunc(h.opts.HelloTimeout, func() {
		close(timedOut)
		c.Close(CloseHelloTimeout, "hello timeout")
	})
	typ, b, err := c.Read(ctx)
	if !t.Stop() {
		<-timedOut
		return nil, 0, "" // Close is under way
	}
	if err != nil {
		return nil, 0, "" // the peer left, or sent an oversized frame (closed 1009 already)
	}
	if typ != websocket.MessageText {
		return nil, CloseBadHello, "the first frame must be a text hello"
	}
	f, err := DecodeClientFrame(b)
	if err != nil {
		return nil, CloseBadHello, "the first frame must be a valid hello"
	}
	hello, ok := f.(*Hello)
	switch {
	case !ok:
		return nil, CloseBadHello, "the first frame must be a hello"
	case headerAuth && hello.Token != "":
		return nil, CloseBadHello, "token given twice"
	case !headerAuth && hello.Token == "":
		return nil, CloseUnauthorized, "unauthorized"
	}
	return hello, 0, ""
}

// handle takes one client frame. A frame that cannot be taken gets an error
// frame and changes nothing.
func (k *socket) handle(typ websocket.MessageType, b []byte) {
	h, ctx, sess := k.h, k.ctx, k.sess
	if !k.lim.take(time.Now()) {
		sess.Send(encode(ErrorFrame{Type: "error", Code: CodeRateLimited, Message: "too many frames; this one was not processed"}))
		return
	}
	if typ != websocket.MessageText {
		sess.Send(encode(ErrorFrame{Type: "error", Code: CodeBadFrame, Message: "frames are JSON text messages"}))
		return
	}
	f, err := DecodeClientFrame(b)
	if err != nil {
		sess.Send(errorFrame(h.log, ctx, "", err))
		return
	}
	switch f := f.(type) {
	case *Ping:
		sess.Send(pong)
	case *Hello:
		sess.Send(encode(ErrorFrame{Type: "error", Code: CodeUnexpectedHello, Message: "hello is only the first frame", Frame: FrameHello}))
	case *Typing:
		if err := h.svc.Typing(ctx, f.Room); err != nil {
			sess.Send(errorFrame(h.log, ctx, FrameTyping, err))
		}
	case *Read:
		if _, err := h.svc.MarkRead(ctx, f.Room, f.Seq); err != nil {
			sess.Send(errorFrame(h.log, ctx, FrameRead, err))
		}
	}
}

// errorFrame maps err to an error frame; only text written for users reaches
// the client.
func errorFrame(log *slog.Logger, ctx context.Context, frame string, err error) []byte {
	e := ErrorFrame{Type: "error", Frame: frame}
	var fe *FrameError
	var de *acl.DeniedError
	var ie *chat.InvalidError
	switch {
	case errors.As(err, &fe):
		e.Code, e.Message = fe.Code, fe.Reason
		if e.Frame == "" {
			e.Frame = fe.Frame
		}
	case errors.As(err, &de):
		e.Code, e.Message, e.Rule = CodeDenied, de.Reason, de.Rule
	case errors.As(err, &ie):
		e.Code, e.Message = CodeInvalid, ie.Field+": "+ie.Reason
	case errors.Is(err, chat.ErrInvalid), errors.Is(err, acl.ErrInvalid):
		e.Code, e.Message = CodeInvalid, "invalid input"
	case errors.Is(err, chat.ErrNotFound), errors.Is(err, acl.ErrNotFound):
		e.Code, e.Message = CodeNotFound, "no such room"
	case errors.Is(err, chat.ErrRateLimit):
		e.Code, e.Message = CodeRateLimited, "rate limit exceeded"
	default:
		log.ErrorContext(ctx, "chatws: client frame failed", "frame", frame, "err", err)
		e.Code, e.Message = CodeInternal, "internal error"
	}
	return encode(e)
}

// A writer writes one socket's frames. It has no goroutine while the session
// has nothing to send: wake starts one, which drains the session, coalescing
// queued frames, and ends when nothing is left. What one batch of the drain
// writes goes out in as few system calls as the buffer allows (out). Each write is
// bounded by one timer per socket (dog), reset for each write, that closes
// the socket when a write hangs — not a context with a deadline (an
// allocation and a timer) per write.
type writer struct {
	h    *handler
	ctx  context.Context
	c    *websocket.Conn
	out  *connWriter // under c's bufio.Writer
	sess *chat.Session
	dog  *time.Timer
	gone atomic.Bool // the reader ended or a ping went unanswered: the peer is gone

	mu      sync.Mutex
	running bool // a drain goroutine is on
	again   bool // woken while it ran: look once more before it ends
	ended   bool // the session ended and the socket was closed: never start again
}

// wake is the session's OnWake: it starts the drain unless one is on.
func (w *writer) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.ended:
	case w.running:
		w.again = true
	default:
		w.running = true
		go w.drain()
	}
}

// drain writes what the session has until it has nothing, or until the
// session ends or a write fails, which closes the socket (and so ends the
// reader, which cleans up).
func (w *writer) drain() {
	for {
		w.mu.Lock()
		w.again = false
		w.mu.Unlock()
		err := w.flush()
		w.mu.Lock()
		switch {
		case err != nil:
			w.running, w.ended = false, true
			w.mu.Unlock()
			w.close(err)
			return
		case !w.again:
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// flush writes everything the session has now. The WebSocket messages made
// of what one TryNext returned collect in out's buffer and go out together;
// out holds no buffer while TryNext runs, which may wait for the store (a
// fill), so nothing written — a ping or pong either — waits for it.
func (w *writer) flush() error {
	for {
		frames, err := w.sess.TryNext(w.ctx)
		if err != nil || len(frames) == 0 {
			return err
		}
		w.out.hold()
		err = w.writeFrames(frames)
		if e := w.send(true); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
	}
}

// writeFrames writes frames as messages, coalescing as many as fit in
// MaxBatch into each.
func (w *writer) writeFrames(frames [][]byte) error {
	for len(frames) > 0 {
		n := batch(frames, w.h.opts.MaxBatch)
		var err error
		if n == 1 {
			err = w.write(frames[0])
		} else {
			err = writeBatch(w, frames[:n])
		}
		if err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

// send writes what out holds, bounded by the watchdog; with release, out
// lets its buffer go.
func (w *writer) send(release bool) error {
	w.dog.Reset(w.h.opts.WriteTimeout)
	err := w.out.send(release)
	w.dog.Stop()
	return err
}

// close ends the socket after the session or a write ended with err, telling
// the client why when it is something the client can act on.
func (w *writer) close(err error) {
	c := w.c
	switch {
	case errors.Is(err, chat.ErrSlowConsumer):
		c.Close(CloseSlowConsumer, "slow consumer")
	case errors.Is(err, chat.ErrRevoked):
		c.Close(CloseRevoked, "session revoked")
	case errors.Is(err, chat.ErrHubClosed):
		c.Close(websocket.StatusGoingAway, "server stopping")
	case w.gone.Load(), errors.Is(err, chat.ErrSessionEnded):
		c.CloseNow() // the peer went away or a write failed: nothing to tell it
	default:
		c.Close(websocket.StatusInternalError, "internal error")
	}
}

func (w *writer) write(msg []byte) error {
	w.dog.Reset(w.h.opts.WriteTimeout)
	// No context either: the watchdog bounds the write, and whatever ends the
	// socket closes the connection, which ends a write under way. A context
	// with a Done channel would cost a registration per write.
	err := w.c.Write(context.Background(), websocket.MessageText, msg)
	w.dog.Stop()
	if err == nil && w.out.held() >= maxHeld {
		err = w.send(false)
	}
	return err
}

// maxHeld is how many bytes a drain collects before it writes them out.
const maxHeld = 64 << 10

// A connWriter is what coder/websocket's bufio.Writer writes to, the socket's
// connection. While a drain writes a batch it holds a buffer from a pool
// shared by all sockets, and the frames written meanwhile — the batch's, and
// any control frame written then (a ping, a pong, a close) — collect in it
// until send; otherwise writes go straight to the connection. So an idle
// socket holds no write buffer (coder's own is tiny: socketWriteBuffer), and a
// batch of several messages takes one system call, not one per message.
type connWriter struct {
	conn net.Conn
	mu   sync.Mutex
	buf  *bytes.Buffer // non-nil while held
}

func (o *connWriter) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf != nil {
		return o.buf.Write(p)
	}
	return o.conn.Write(p)
}

// hold starts collecting writes.
func (o *connWriter) hold() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf == nil {
		o.buf = batchBufs.Get().(*bytes.Buffer)
		o.buf.Reset()
	}
}

// held returns how many bytes wait to be sent.
func (o *connWriter) held() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.buf == nil {
		return 0
	}
	return o.buf.Len()
}

// send writes what was collected; with release, later writes go straight to
// the connection again and the buffer goes back to the pool.
func (o *connWriter) send(release bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf
	if b == nil {
		return nil
	}
	var err error
	if b.Len() > 0 {
		_, err = o.conn.Write(b.Bytes())
		b.Reset()
	}
	if release {
		o.buf = nil
		putBatchBuf(b)
	}
	return err
}

// batchBufs are the buffers coalesced messages are built in and drains
// collect their writes in, shared by all sockets: an idle socket holds none.
var batchBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeBatch writes frames as one message, a JSON array.
func writeBatch(w *writer, frames [][]byte) error {
	buf := batchBufs.Get().(*bytes.Buffer)
	buf.Reset()
	buf.WriteByte('[')
	for i, f := range frames {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(f)
	}
	buf.WriteByte(']')
	err := w.write(buf.Bytes())
	putBatchBuf(buf)
	return err
}

func putBatchBuf(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 { // a burst's big buffer is not kept
		batchBufs.Put(b)
	}
}

// batch returns how many of frames go into the next message: as many as fit
// in max bytes, and at least one.
func batch(frames [][]byte, max int) int {
	size := len(frames[0]) + 2
	n := 1
	for n < len(frames) && size+1+len(frames[n]) <= max {
		size += 1 + len(frames[n])
		n++
	}
	return n
}

// Buffer sizes of an established socket. net/http hands a hijacked
// connection a 4 KiB reader and a 4 KiB writer, held for the socket's life.
// Client frames are small (a larger one, such as a hello with many rooms,
// takes a few more read system calls), and coder/websocket's writer only
// needs room for a control frame with its header: the messages a drain writes
// collect in a pooled buffer (connWriter). So an idle socket holds 768 bytes
// of buffers instead of 8 KiB.
const (
	socketReadBuffer  = 512
	socketWriteBuffer = 256
)

// smallBuffers is the ResponseWriter given to websocket.Accept: its Hijack
// swaps net/http's buffers for smaller ones, keeping any bytes the client sent
// after the upgrade request, and puts a connWriter (out) under the writer.
type smallBuffers struct {
	http.ResponseWriter
	out *connWriter
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// Bytes net/http has read past the request (its background read may hold
	// the first byte of the client's first frame) must sit in the new reader's
	// buffer, where websocket.Accept looks for them.
	n := brw.Reader.Buffered()
	early, _ := brw.Reader.Peek(n)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(socketReadBuffer, n))
	if _, err := br.Peek(n); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.out = &connWriter{conn: conn}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.out, socketWriteBuffer)), nil
}

// A bucket is a token bucket: rate tokens a second up to burst.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	refs   int // sockets using it; guarded by handler.limitsMu
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter returns user's bucket, shared by their sockets on this node.
func (h *handler) limiter(user acl.UserID) *bucket {
	h.limitsMu.Lock()
	defer h.limitsMu.Unlock()
	b := h.limits[user]
	if b == nil {
		burst := float64(h.opts.FrameBurst)
		b = &bucket{rate: h.opts.FrameRate, burst: burst, tokens: burst, last: time.Now()}
		h.limits[user] = b
	}
	b.refs++
	return b
}

func (h *handler) release(user acl.UserID) {
	h.limitsMu.Lock()
	defer h.limitsMu.Unlock()
	if b := h.limits[user]; b != nil {
		if b.refs--; b.refs == 0 {
			delete(h.limits, user)
		}
	}
}
