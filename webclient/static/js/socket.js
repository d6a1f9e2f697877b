// The live connection: one WebSocket for all of the user's rooms
// (docs/protocol.md). The first frame is hello with the access token and, for
// every room the client knows, the last seq it has seen, so the server sends
// exactly what was missed and then live traffic. A lost connection is retried
// with exponential backoff and jitter; each retry resumes from the seqs seen.
//
// Events (EventTarget): "state" (detail: {state, retryIn}) where state is
// "connecting", "open" (ready frame received) or "down"; "frame" (detail: the
// parsed server frame).
import { api } from './api.js';

const MIN_DELAY = 500;
const MAX_DELAY = 15000;
const PING_EVERY = 25000;
const PONG_WAIT = 10000;

export class Live extends EventTarget {
  // since() returns {room: seq} for the hello frame.
  constructor(since) {
    super();
    this.since = since;
    this.ws = null;
    this.state = 'down';
    this.attempt = 0;
    this.retryTimer = 0;
    this.pingTimer = 0;
    this.stopped = true;
    this.lastFrame = 0;
    this.online = () => { if (this.state === 'down' && !this.stopped) this.connectNow(); };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.online);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.online);
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = ws.onmessage = ws.onerror = null;
      try { ws.close(1000); } catch { /* ignore */ }
    }
    this.setState('down', 0);
  }

  setState(state, retryIn) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryIn } }));
  }

  // connectNow skips the wait of a scheduled retry (the "retry now" button).
  connectNow() {
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.setState('connecting', 0);
    try {
      if (api.expiresSoon()) await api.refresh();
    } catch (err) {
      if (!err.network) return; // the session is over; the app asks for a sign-in
      this.retry();
      return;
    }
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'hello', token: api.token, since: this.since() }));
    };
    ws.onmessage = (ev) => {
      this.lastFrame = Date.now();
      let data;
      try { data = JSON.parse(ev.data); } catch { return; }
      // The server coalesces queued frames into one array.
      for (const f of Array.isArray(data) ? data : [data]) this.frame(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.pingTimer);
      // docs/protocol.md: 4002 means refresh the token; 4001 and 4003 mean
      // sign in again (the API client asks); anything else: back off, resume.
      if (ev.code === 4002) {
        api.refresh().then(() => this.retry(), (err) => { if (err.network) this.retry(); });
        return;
      }
      if (ev.code === 4001 || ev.code === 4003) {
        this.setState('down', 0);
        api.expire();
        return;
      }
      this.retry();
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  frame(f) {
    if (f.type === 'ready') {
      this.attempt = 0;
      this.setState('open', 0);
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.heartbeat(), PING_EVERY);
    }
    if (f.type === 'pong') return;
    this.dispatchEvent(new CustomEvent('frame', { detail: f }));
  }

  // heartbeat asks for a pong; a connection that stays silent after it is
  // taken for dead (a half-open TCP connection never closes by itself).
  heartbeat() {
    const sent = Date.now();
    if (!this.send({ type: 'ping' })) return;
    const ws = this.ws;
    setTimeout(() => {
      if (this.ws === ws && ws && this.lastFrame < sent) {
        try { ws.close(4100, 'no pong'); } catch { /* ignore */ }
        if (this.ws === ws) { this.ws = null; clearInterval(this.pingTimer); this.retry(); }
      }
    }, PONG_WAIT);
  }

  retry() {
    if (this.stopped) return;
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt);
    const delay = Math.round(base / 2 + Math.random() * base / 2);
    this.attempt++;
    this.setState('down', delay);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // send writes a client frame if the socket is open; light frames (typing,
  // read, ping) are simply dropped otherwise.
  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.state === 'open') {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }
}
