// The client's state: rooms, the messages seen in each, names of users and
// units, read receipts, typing, and the outbox. Views subscribe to changes
// (on) and render; this module never touches the DOM.
import { api, ApiError } from './api.js';
import { uid } from './dom.js';

// Kinds that count as messages (shown as bubbles or cards, counted unread).
export function isContent(kind) {
  return kind === 'text' || kind === 'file' || kind === 'system' || (kind || '').startsWith('case.');
}

const listeners = new Map(); // topic → Set<fn>

// on subscribes fn to topic: "rooms", "room:<id>" (messages of a room),
// "typing:<id>", "receipts:<id>", "names", "outbox".
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

let pendingEmit = new Set();
let emitScheduled = false;
// emit tells topic's listeners, once per turn of the event loop however often called.
export function emit(topic) {
  pendingEmit.add(topic);
  if (emitScheduled) return;
  emitScheduled = true;
  queueMicrotask(() => {
    emitScheduled = false;
    const topics = pendingEmit;
    pendingEmit = new Set();
    for (const tp of topics) for (const fn of listeners.get(tp) || []) fn();
  });
}

export const state = {
  me: null,
  rooms: new Map(), // id → summary {id, kind, name, unread, read, head, last, last_at, my_role, archived, mentioned}
  data: new Map(), // id → RoomData
  users: new Map(), // id → {id, name, unit} (or {pending: true})
  units: new Map(), // id → {id, name, kind}
  outbox: [], // {client_id, room, kind, body, payload, reply_to, mentions, state, error}
  current: null, // the open room
  visible: true, // the page is shown (for read markers)
};

// RoomData is what the client holds of one room's log.
class RoomData {
  constructor(id, head) {
    this.id = id;
    this.msgs = new Map(); // seq → message view (+ _v, a version for rendering)
    this.seen = head; // every entry up to seen was received or is before what was loaded
    this.oldest = head + 1; // the lowest seq loaded
    this.complete = head === 0; // the log is loaded from seq 1
    this.loaded = false; // the newest page was fetched
    this.members = null; // [{user, unit, role}]
    this.typing = new Map(); // user → timeout id
    this.receipts = new Map(); // seq → Map(user → read bool)
    this.readUpTo = new Map(); // user → the highest seq a read frame said they read
    this.edits = new Map(); // target seq → edit entry not yet applied
    this.retracts = new Map(); // target seq → seq of a retraction that came before the target was loaded
  }
}

export function roomData(id) {
  let d = state.data.get(id);
  if (!d) {
    const r = state.rooms.get(id);
    d = new RoomData(id, r ? r.head : 0);
    state.data.set(id, d);
  }
  return d;
}

// since is what the socket's hello sends: the last seq seen in every known room.
export function since() {
  const out = {};
  for (const [id, r] of state.rooms) {
    const d = state.data.get(id);
    out[id] = d ? d.seen : r.head;
  }
  return out;
}

// loadRooms reads the room list. Rooms the client already follows keep what
// they have; new ones start at their head (the socket sends what follows).
export async function loadRooms() {
  const out = await api.get('/rooms');
  const seenIds = new Set();
  for (const r of out.rooms || []) {
    seenIds.add(r.id);
    const old = state.rooms.get(r.id);
    const summary = { ...r, mentioned: old ? old.mentioned : false };
    const d = state.data.get(r.id);
    if (d && old) {
      // Keep the live head if the socket is ahead of this answer.
      summary.head = Math.max(r.head, old.head);
      if (old.head > r.head) { summary.last = old.last; summary.last_at = old.last_at; summary.unread = old.unread; }
    }
    state.rooms.set(r.id, summary);
    if (r.last && r.last.sender_unit) unitName(r.last.sender_unit);
    if (r.last && r.last.sender) userName(r.last.sender);
  }
  for (const [id, r] of [...state.rooms]) if (!seenIds.has(id) && !r.watching) { state.rooms.delete(id); state.data.delete(id); }
  emit('rooms');
}

// ensureRoom adds room id to the list when the user may read it without being
// a member (a supervisor or auditor of the jurisdiction): the server records
// the look in the room. It resolves false when the room is not visible.
export async function ensureRoom(id) {
  if (state.rooms.has(id)) return true;
  try {
    const r = await api.get('/rooms/' + encodeURIComponent(id));
    state.rooms.set(id, { ...r, unread: 0, read: r.head, watching: true });
    emit('rooms');
    return true;
  } catch {
    return false;
  }
}

// sortedRooms is the room list, most recent activity first.
export function sortedRooms() {
  return [...state.rooms.values()].filter((r) => !r.watching).sort((a, b) => (b.last_at || b.created_at || '').localeCompare(a.last_at || a.created_at || ''));
}

const PAGE = 50;

// loadOlder fetches the page before the oldest loaded entry of room.
export async function loadOlder(id) {
  const d = roomData(id);
  if (d.complete) return;
  const before = d.loaded ? d.oldest : d.seen + 1;
  const out = await api.get(`/rooms/${encodeURIComponent(id)}/messages?before=${before}&limit=${PAGE}`);
  const ms = out.messages || [];
  for (const m of ms) apply(m, false);
  if (ms.length > 0) d.oldest = Math.min(d.oldest, ms[0].seq);
  if (!d.loaded) {
    d.loaded = true;
    if (ms.length === 0) d.oldest = before;
  }
  if (ms.length < PAGE || d.oldest <= 1) d.complete = true;
  emit('room:' + id);
}

// fillGap reads what the client missed in room after seen (used when a frame
// arrives ahead of what was seen, which the server's resume should prevent).
async function fillGap(id) {
  const d = roomData(id);
  for (;;) {
    const out = await api.get(`/rooms/${encodeURIComponent(id)}/messages?after=${d.seen}&limit=${PAGE}`);
    const ms = out.messages || [];
    for (const m of ms) received(m);
    if (ms.length < PAGE) break;
  }
}

// received takes a log entry from the socket (or the answer to a post).
export function received(m) {
  const d = roomData(m.room);
  if (m.seq <= d.seen && (d.msgs.has(m.seq) || m.seq < d.oldest)) return; // a duplicate
  if (m.seq > d.seen + 1 && d.seen > 0) {
    fillGap(m.room).catch(() => {});
  }
  apply(m, true);
  if (m.seq > d.seen) d.seen = m.seq;
}

// apply puts entry m into its room: content is stored, an edit or retraction
// changes its target, membership and room entries update what they change.
function apply(m, live) {
  const id = m.room;
  const d = roomData(id);
  const r = state.rooms.get(id);
  m._v = 1;
  switch (m.kind) {
    case 'edit': {
      const target = d.msgs.get(m.target);
      if (target) {
        if (!target.edited || target.edited <= m.seq) { target.body = m.body; target.edited = m.seq; target._v++; }
      } else d.edits.set(m.target, m);
      if (r && r.last && r.last.seq === m.target) { r.last = { ...r.last, body: m.body }; emit('rooms'); }
      break;
    }
    case 'retract': {
      const target = d.msgs.get(m.target);
      if (target) { target.retracted = m.seq; target.body = ''; target.payload = undefined; target._v++; } else d.retracts.set(m.target, m.seq);
      if (r && r.last && r.last.seq === m.target) { r.last = { ...r.last, retracted: m.seq, body: '' }; emit('rooms'); }
      break;
    }
    default: {
      const e = d.edits.get(m.seq);
      if (e && !m.retracted) { m.body = e.body; m.edited = e.seq; d.edits.delete(m.seq); }
      if (d.retracts.has(m.seq)) { m.retracted = d.retracts.get(m.seq); m.body = ''; m.payload = undefined; d.retracts.delete(m.seq); }
      d.msgs.set(m.seq, m);
      if (m.sender) userName(m.sender);
      if (m.sender_unit) unitName(m.sender_unit);
    }
  }
  if (live) {
    if (m.kind.startsWith('member.') || m.kind === 'unit.add' || m.kind === 'room.create') {
      d.members = null;
      if (state.current === id) loadMembers(id).catch(() => {});
    }
    if (m.kind === 'room.rename' && r && m.payload && m.payload.name) r.name = m.payload.name;
    if (m.kind === 'room.archive' && r && m.payload) r.archived = !!m.payload.archived;
    if (r) {
      r.head = Math.max(r.head, m.seq);
      if (isContent(m.kind)) {
        r.last = m;
        r.last_at = m.created_at;
        const mine = state.me && m.sender === state.me.id;
        if (!mine) {
          if (state.current === id && state.visible) markRead(id);
          else {
            r.unread = (r.unread || 0) + 1;
            if ((m.mentions || []).some((u) => u === state.me.id || u === 'all')) r.mentioned = true;
          }
        } else {
          r.read = Math.max(r.read || 0, m.seq);
        }
      }
      emit('rooms');
    }
    if (m.client_id) {
      const i = state.outbox.findIndex((o) => o.client_id === m.client_id && o.room === id);
      if (i >= 0) { state.outbox.splice(i, 1); saveOutbox(); emit('outbox'); }
    }
    if (state.me && m.sender === state.me.id && isContent(m.kind)) {
      // Everyone else starts unread; read frames and a fetch correct it.
      setTimeout(() => loadReceipts(id, [m.seq]).catch(() => {}), 400);
    }
    if (m.sender) stopTyping(id, m.sender);
  }
  emit('room:' + id);
}

// Read markers.

let readTimers = new Map();
// markRead moves the user's read marker in room to its head, soon (batched).
export function markRead(id) {
  const r = state.rooms.get(id);
  if (!r) return;
  const hadUnread = r.unread > 0 || r.mentioned;
  r.unread = 0;
  r.mentioned = false;
  if (hadUnread) emit('rooms');
  if (readTimers.has(id)) return;
  readTimers.set(id, setTimeout(async () => {
    readTimers.delete(id);
    const seq = r.head;
    if (seq <= (r.read || 0)) return;
    try {
      await api.post(`/rooms/${encodeURIComponent(id)}/read`, { seq });
      r.read = Math.max(r.read || 0, seq);
    } catch { /* the next read will carry it */ }
  }, 300));
}

// readFrame applies another member's (or this user's other tab's) read marker.
export function readFrame(f) {
  const d = state.data.get(f.room);
  if (state.me && f.user === state.me.id) {
    const r = state.rooms.get(f.room);
    if (r && f.seq >= r.head && r.unread) { r.unread = 0; r.mentioned = false; emit('rooms'); }
    return;
  }
  if (!d) return;
  // Kept for receipts still being fetched: their answer may predate this frame.
  d.readUpTo.set(f.user, Math.max(d.readUpTo.get(f.user) || 0, f.seq));
  let changed = false;
  for (const [seq, rc] of d.receipts) {
    if (seq <= f.seq && rc.has(f.user) && !rc.get(f.user)) { rc.set(f.user, true); changed = true; }
  }
  if (changed) emit('receipts:' + f.room);
}

// loadReceipts reads who has read the user's own messages seqs in room.
export async function loadReceipts(id, seqs) {
  const d = roomData(id);
  await Promise.all(seqs.map(async (seq) => {
    const out = await api.get(`/rooms/${encodeURIComponent(id)}/messages/${seq}/receipts`);
    const rc = new Map();
    for (const x of out.receipts || []) {
      if (state.me && x.user === state.me.id) continue;
      rc.set(x.user, !!x.read || (d.readUpTo.get(x.user) || 0) >= seq);
      userName(x.user);
    }
    d.receipts.set(seq, rc);
  }));
  emit('receipts:' + id);
}

// Typing.

export function typingFrame(f) {
  if (state.me && f.user === state.me.id) return;
  const d = roomData(f.room);
  clearTimeout(d.typing.get(f.user));
  d.typing.set(f.user, setTimeout(() => stopTyping(f.room, f.user), 6000));
  userName(f.user);
  emit('typing:' + f.room);
}

function stopTyping(room, user) {
  const d = state.data.get(room);
  if (!d || !d.typing.has(user)) return;
  clearTimeout(d.typing.get(user));
  d.typing.delete(user);
  emit('typing:' + room);
}

// Members and names.

export async function loadMembers(id) {
  const d = roomData(id);
  const out = await api.get(`/rooms/${encodeURIComponent(id)}/members`);
  d.members = out.members || [];
  const units = new Set(d.members.map((m) => m.unit));
  // The members' names come with their units' user lists; wait for them, so
  // that whoever uses the members (the @ list) finds names, not ids.
  await Promise.all([...units].map((u) => { unitName(u); return usersOfUnit(u).catch(() => {}); }));
  emit('room:' + id);
  return d.members;
}

const unitUsersLoaded = new Map(); // unit → promise
function usersOfUnit(unit) {
  if (unitUsersLoaded.has(unit)) return unitUsersLoaded.get(unit);
  const p = api.get('/users?unit=' + encodeURIComponent(unit)).then((out) => {
    for (const u of out.users || []) state.users.set(u.id, { id: u.id, name: u.name, unit: u.unit });
    emit('names');
  }).catch(() => { unitUsersLoaded.delete(unit); });
  unitUsersLoaded.set(unit, p);
  return p;
}

// userName returns the display name of user id, or the id while it loads
// (views re-render on "names").
export function userName(id) {
  if (!id) return '';
  if (id === 'all') return null;
  const u = state.users.get(id);
  if (u && !u.pending) return u.name || id;
  if (!u) {
    state.users.set(id, { pending: true });
    api.get('/users/' + encodeURIComponent(id)).then((x) => {
      state.users.set(id, { id, name: x.name, unit: x.unit });
      emit('names');
    }).catch(() => { state.users.set(id, { id, name: id }); });
  }
  return id;
}

export function unitName(id) {
  if (!id) return '';
  const u = state.units.get(id);
  if (u && !u.pending) return u.name || id;
  if (!u) {
    state.units.set(id, { pending: true });
    api.get('/units/' + encodeURIComponent(id)).then((x) => {
      state.units.set(id, { id, name: x.name, kind: x.kind });
      emit('names');
    }).catch(() => { state.units.set(id, { id, name: id }); });
  }
  return id;
}

// The outbox: everything the user sends goes through it, so a message typed
// while offline is kept (in localStorage, per user) and sent once the server
// answers again. Each item has a client_id the server deduplicates on, so a
// retry after an answer that was lost stores nothing twice.

function outboxKey() { return 'caseroom.outbox.' + (state.me ? state.me.id : ''); }

export function loadOutbox() {
  try { state.outbox = JSON.parse(localStorage.getItem(outboxKey()) || '[]'); } catch { state.outbox = []; }
  for (const o of state.outbox) if (o.state === 'sending') o.state = 'queued';
  emit('outbox');
}

function saveOutbox() {
  try { localStorage.setItem(outboxKey(), JSON.stringify(state.outbox)); } catch { /* ignore */ }
}

// send queues a post in room and starts sending.
export function send(room, post) {
  const item = { client_id: uid(), room, kind: post.kind || 'text', body: post.body || '', payload: post.payload,
    reply_to: post.reply_to || 0, mentions: post.mentions || [], state: 'queued', at: new Date().toISOString() };
  state.outbox.push(item);
  saveOutbox();
  emit('outbox');
  flush();
  return item;
}

let flushing = false;
let flushTimer = 0;
// flush sends queued items in order; a network failure stops it until the
// connection is back (or the next try, a few seconds on).
export async function flush() {
  if (flushing) return;
  flushing = true;
  clearTimeout(flushTimer);
  try {
    for (;;) {
      const item = state.outbox.find((o) => o.state === 'queued');
      if (!item) break;
      item.state = 'sending';
      emit('outbox');
      const body = { client_id: item.client_id, kind: item.kind, body: item.body, reply_to: item.reply_to, mentions: item.mentions };
      if (item.payload !== undefined) body.payload = item.payload;
      try {
        const m = await api.post(`/rooms/${encodeURIComponent(item.room)}/messages`, body);
        const i = state.outbox.indexOf(item);
        if (i >= 0) state.outbox.splice(i, 1);
        saveOutbox();
        emit('outbox');
        if (m && m.seq) received(m);
      } catch (err) {
        if (err instanceof ApiError && (err.network || err.status >= 500 || err.status === 429 || err.status === 401)) {
          item.state = 'queued';
          emit('outbox');
          flushTimer = setTimeout(flush, err.status === 429 ? 1500 : 5000);
          break;
        }
        item.state = 'failed';
        item.error = err;
        saveOutbox();
        emit('outbox');
      }
    }
  } finally {
    flushing = false;
  }
}

export function retryItem(item) { item.state = 'queued'; delete item.error; saveOutbox(); emit('outbox'); flush(); }
export function dropItem(item) {
  const i = state.outbox.indexOf(item);
  if (i >= 0) state.outbox.splice(i, 1);
  saveOutbox();
  emit('outbox');
}

// reset forgets everything (sign-out).
export function reset() {
  state.me = null;
  state.rooms.clear();
  state.data.clear();
  state.outbox = [];
  state.current = null;
  unitUsersLoaded.clear();
}
