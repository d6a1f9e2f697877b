// The room: its messages live from the socket, with sender, unit and time,
// replies, mentions, edits ("已编辑"), retractions, read receipts ("N 人未读"),
// typing, attachments, and the composer, whose posts go through the outbox.
import { api } from './api.js';
import { h, replace, clear, announce } from './dom.js';
import { t, time, dateTime, size, onLang } from './i18n.js';
import * as S from './state.js';
import * as cases from './cases.js';
import { errorText, toast, confirmDialog } from './ui.js';

const TYPING_EVERY = 3000;

export class RoomView {
  constructor() {
    this.id = null;
    this.live = null;
    this.els = new Map(); // key → rendered element
    this.gen = 0; // bumped to re-render everything (names, language)
    this.active = null; // key of the message that holds the log's tab stop
    this.drafts = new Map(); // room → {text, reply, mentions}
    this.reply = null; // message replied to
    this.editing = null; // message being edited
    this.mentions = new Map(); // name → user id, of mentions picked in the composer
    this.lastTyping = 0;
    this.unsubs = [];
    this.build();
    S.on('names', () => { this.gen++; this.sync(); this.renderTyping(); });
    S.on('outbox', () => this.sync());
    S.on('rooms', () => this.renderHeader());
    cases.onChange(() => { this.gen++; this.sync(); this.renderHeader(); });
    onLang(() => { this.gen++; this.relabel(); this.sync(); this.renderHeader(); this.renderTyping(); this.renderBars(); });
  }

  build() {
    this.title = h('h2', { class: 'room-title', id: 'room-title' });
    this.sub = h('p', { class: 'room-sub muted' });
    this.back = h('a', { href: '#/', class: 'back ghost' });
    this.panelBtn = h('button', { type: 'button', class: 'ghost', id: 'panel-toggle',
      attrs: { 'aria-controls': 'case-panel', 'aria-expanded': 'false' },
      on: { click: () => cases.togglePanel(this.panelBtn) } });
    this.header = h('header', { class: 'room-header' }, this.back, h('div', { class: 'room-heading' }, this.title, this.sub), this.panelBtn);
    this.older = h('button', { type: 'button', class: 'ghost small older', on: { click: () => this.loadOlder() } });
    this.log = h('div', { class: 'log', id: 'message-log', attrs: { role: 'log', 'aria-labelledby': 'room-title' },
      on: { keydown: (e) => this.logKey(e), focusin: (e) => this.logFocus(e) } });
    this.logWrap = h('div', { class: 'log-wrap' }, this.older, this.log);
    this.typing = h('p', { class: 'typing muted', attrs: { 'aria-live': 'polite' } });

    // Composer.
    this.bars = h('div', { class: 'composer-bars' });
    this.uploads = h('ul', { class: 'uploads', attrs: { 'aria-live': 'polite' } });
    this.input = h('textarea', { id: 'composer-input', rows: 2, class: 'composer-input',
      attrs: { 'aria-controls': 'mention-list', 'aria-autocomplete': 'list', 'aria-describedby': 'composer-hint' },
      on: { keydown: (e) => this.inputKey(e), input: () => this.onInput() } });
    this.hint = h('p', { id: 'composer-hint', class: 'sr-only' });
    this.mentionList = h('ul', { id: 'mention-list', class: 'mention-list', hidden: true, attrs: { role: 'listbox' } });
    this.file = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'sr-only', tabIndex: -1,
      attrs: { 'aria-hidden': 'true' }, on: { change: () => this.uploadFiles() } });
    this.attach = h('button', { type: 'button', class: 'ghost', id: 'attach', on: { click: () => this.file.click() } });
    this.sendBtn = h('button', { type: 'submit', class: 'primary', id: 'send' });
    this.composerLabel = h('label', { attrs: { for: 'composer-input' }, class: 'sr-only' });
    this.readonly = h('p', { class: 'readonly muted', hidden: true });
    this.form = h('form', { class: 'composer', on: { submit: (e) => { e.preventDefault(); this.submit(); } } },
      this.bars, this.uploads, this.mentionList,
      h('div', { class: 'composer-row' }, this.attach, this.file, this.composerLabel, this.input, this.sendBtn), this.hint);
    this.empty = h('div', { class: 'empty-room muted' });
    this.body = h('div', { class: 'room-body' }, this.header, this.logWrap, this.typing, this.readonly, this.form);
    this.el = h('section', { class: 'room', attrs: { 'aria-labelledby': 'room-title' } }, this.empty, this.body);
    this.body.hidden = true;
    this.relabel();
  }

  relabel() {
    this.back.textContent = '‹ ' + t('room.back');
    this.older.textContent = t('room.older');
    this.composerLabel.textContent = t('composer.label');
    this.input.placeholder = t('composer.placeholder');
    this.hint.textContent = t('composer.hint');
    this.attach.textContent = t('composer.attach_short');
    this.attach.title = t('composer.attach');
    this.sendBtn.textContent = t('composer.send');
    this.mentionList.setAttribute('aria-label', t('composer.mention_list'));
    this.empty.textContent = t('room.none_open');
    this.log.setAttribute('aria-label', t('room.log'));
  }

  // open shows room id (or the empty state for null), keeping each room's draft.
  open(id) {
    if (id === this.id) return;
    if (this.id) this.drafts.set(this.id, { text: this.input.value, reply: this.reply, mentions: this.mentions });
    for (const u of this.unsubs) u();
    this.unsubs = [];
    this.id = id;
    this.els.clear();
    clear(this.log);
    this.active = null;
    this.editing = null;
    this.closeMentions();
    clear(this.uploads);
    const has = !!id && S.state.rooms.has(id);
    this.body.hidden = !id;
    this.empty.hidden = !!id;
    if (!id) return;
    const draft = this.drafts.get(id) || { text: '', reply: null, mentions: new Map() };
    this.input.value = draft.text;
    this.reply = draft.reply;
    this.mentions = draft.mentions;
    this.renderBars();
    this.unsubs.push(S.on('room:' + id, () => this.sync()));
    this.unsubs.push(S.on('receipts:' + id, () => { this.gen++; this.sync(); }));
    this.unsubs.push(S.on('typing:' + id, () => this.renderTyping()));
    this.renderHeader();
    this.renderTyping();
    if (!has) {
      // Not (yet) in the list: the list may still be loading, or it is a room
      // of the jurisdiction that a supervisor reads without being a member.
      S.loadRooms().then(async () => {
        if (this.id !== id) return;
        if (S.state.rooms.has(id) || await S.ensureRoom(id)) { this.id = null; this.open(id); } else { this.empty.textContent = t('error.not_found'); this.body.hidden = true; this.empty.hidden = false; }
      }).catch(() => {});
      return;
    }
    const d = S.roomData(id);
    this.first = true;
    if (!d.loaded) this.loadOlder().then(() => this.loadOwnReceipts());
    else { this.sync(); this.loadOwnReceipts(); }
    // Members arrive after the room opens; an "@" typed meanwhile gets its list
    // when they do.
    if (!d.members) S.loadMembers(id).then(() => { if (this.id === id) this.updateMentions(); }).catch(() => {});
    if (S.state.visible) S.markRead(id);
    if (window.matchMedia('(min-width: 761px)').matches || document.activeElement === document.body) {
      setTimeout(() => this.input.focus(), 0);
    }
  }

  renderHeader() {
    const r = this.id && S.state.rooms.get(this.id);
    if (!r) { this.title.textContent = ''; this.sub.textContent = ''; this.panelBtn.hidden = true; return; }
    this.title.textContent = r.name;
    const d = S.state.data.get(this.id);
    const n = d && d.members ? d.members.length : 0;
    this.sub.textContent = [t('room.kind.' + r.kind), n ? t('room.members', { n }) : '', r.archived ? t('room.archived') : ''].filter(Boolean).join(' · ');
    const isCase = cases.isCaseRoom(this.id);
    this.panelBtn.hidden = !isCase;
    this.panelBtn.textContent = t('case.panel');
    const ro = r.archived || r.my_role === 'observer' || !r.my_role;
    this.readonly.hidden = !ro;
    this.readonly.textContent = r.archived ? t('room.readonly_archived') : t('room.readonly_observer');
    this.form.hidden = ro;
  }

  renderTyping() {
    const d = this.id && S.state.data.get(this.id);
    const who = d ? [...d.typing.keys()].map((u) => S.userName(u)) : [];
    this.typing.textContent = who.length ? t('room.typing', { names: who.join('、') }) : '';
  }

  async loadOlder() {
    if (!this.id) return;
    const id = this.id;
    const before = this.log.scrollHeight - this.log.scrollTop;
    this.older.disabled = true;
    try {
      await S.loadOlder(id);
    } catch (err) {
      toast(errorText(err));
    } finally {
      this.older.disabled = false;
    }
    if (this.id !== id) return;
    if (!this.first) this.log.scrollTop = this.log.scrollHeight - before;
  }

  loadOwnReceipts() {
    const d = this.id && S.state.data.get(this.id);
    if (!d || !S.state.me) return;
    const own = [...d.msgs.values()].filter((m) => m.sender === S.state.me.id && S.isContent(m.kind) && !m.retracted && !d.receipts.has(m.seq))
      .map((m) => m.seq).sort((a, b) => b - a).slice(0, 20);
    if (own.length) S.loadReceipts(this.id, own).catch(() => {});
  }

  // sync brings the log's elements in line with the room's entries and the
  // outbox, re-rendering only what changed, keeping the scroll position (or
  // the bottom, if the reader was there) and the focus.
  sync() {
    if (!this.id) return;
    const d = S.state.data.get(this.id);
    if (!d) return;
    this.older.hidden = d.complete;
    const atBottom = this.first || this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    const focusedKey = this.log.contains(document.activeElement) ? this.keyOf(document.activeElement) : null;
    const focusedIsArticle = focusedKey && document.activeElement.dataset && document.activeElement.dataset.key === focusedKey;
    const entries = [...d.msgs.values()].filter((m) => m.kind !== 'edit' && m.kind !== 'retract').sort((a, b) => a.seq - b.seq);
    const keys = [];
    let prev = null;
    for (const m of entries) {
      const key = 'm' + m.seq;
      keys.push(key);
      prev = this.place(key, `${m._v}/${this.gen}/${m.retracted || 0}/${m.edited || 0}`, () => this.renderEntry(m, d), prev);
    }
    for (const o of S.state.outbox.filter((x) => x.room === this.id)) {
      const key = 'o' + o.client_id;
      keys.push(key);
      prev = this.place(key, `${o.state}/${this.gen}`, () => this.renderPending(o), prev);
    }
    const want = new Set(keys);
    for (const [k, el] of this.els) if (!want.has(k)) { el.remove(); this.els.delete(k); }
    // One tab stop in the log: the active message, or the newest.
    if (!this.active || !this.els.has(this.active)) this.active = keys[keys.length - 1] || null;
    for (const [k, el] of this.els) if (el.classList.contains('entry')) el.tabIndex = k === this.active ? 0 : -1;
    if (focusedKey && this.els.has(focusedKey) && !this.log.contains(document.activeElement)) {
      const el = this.els.get(focusedKey);
      (focusedIsArticle ? el : (el.querySelector('button') || el)).focus({ preventScroll: true });
    }
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
    if (this.first && d.loaded) this.first = false;
  }

  place(key, version, render, prev) {
    let el = this.els.get(key);
    if (!el || el._version !== version) {
      const fresh = render();
      fresh._version = version;
      fresh.dataset.key = key;
      if (el) el.replaceWith(fresh);
      el = fresh;
      this.els.set(key, el);
    }
    const want = prev ? prev.nextSibling : this.log.firstChild;
    if (want !== el) this.log.insertBefore(el, want);
    return el;
  }

  keyOf(node) {
    const el = node && node.closest ? node.closest('[data-key]') : null;
    return el ? el.dataset.key : null;
  }

  // Rendering of one entry.

  renderEntry(m, d) {
    if (!S.isContent(m.kind)) return this.systemLine(m);
    const mine = S.state.me && m.sender === S.state.me.id;
    if (m.retracted) {
      return h('div', { class: 'sysline retracted', attrs: { 'data-seq': m.seq } },
        mine ? t('msg.retracted_self') : t('msg.retracted_by', { name: S.userName(m.sender) }));
    }
    const headId = `msg-${m.seq}-head`;
    const head = h('header', { class: 'msg-head', id: headId },
      h('span', { class: 'sender', text: S.userName(m.sender) }),
      h('span', { class: 'unit', text: S.unitName(m.sender_unit) }),
      h('time', { attrs: { datetime: m.created_at, title: dateTime(m.created_at) }, text: time(m.created_at) }));
    const parts = [head];
    if (m.reply_to) parts.push(this.quote(m.reply_to, d));
    if (m.kind === 'text' || m.kind === 'system') parts.push(this.textBody(m));
    else if (m.kind === 'file') parts.push(this.fileBody(m));
    else parts.push(cases.card(m, this.id));
    const foot = h('footer', { class: 'msg-foot' });
    if (m.edited) foot.appendChild(h('span', { class: 'edited', text: t('msg.edited') }));
    if (mine) {
      const rc = d.receipts.get(m.seq);
      if (rc && rc.size > 0) {
        const unread = [...rc.values()].filter((x) => !x).length;
        foot.appendChild(h('button', { type: 'button', class: ['receipt', unread === 0 && 'all-read'], tabIndex: -1,
          text: unread ? t('msg.unread_n', { n: unread }) : t('msg.all_read'),
          attrs: { 'aria-haspopup': 'dialog' },
          on: { click: () => this.showReceipts(m, rc) } }));
      }
    }
    foot.appendChild(this.actions(m, mine));
    parts.push(foot);
    const mentionsMe = !mine && (m.mentions || []).some((u) => u === S.state.me.id || u === 'all');
    return h('article', { class: ['entry', 'msg', mine && 'mine', m.kind === 'system' && 'notice', mentionsMe && 'mentions-me', m.kind.startsWith('case.') && 'act'],
      tabIndex: -1, attrs: { 'aria-labelledby': headId, 'data-seq': m.seq } }, parts);
  }

  textBody(m) {
    // Mentions are shown as highlighted text: split on each mentioned "@name".
    const names = (m.mentions || []).map((u) => '@' + (u === 'all' ? t('mention.all') : S.userName(u))).filter((x) => x.length > 1);
    const body = h('div', { class: 'msg-body' });
    const text = m.body || '';
    if (names.length === 0) { body.textContent = text; return body; }
    let rest = text;
    while (rest) {
      let best = -1, bestName = '';
      for (const n of names) {
        const i = rest.indexOf(n);
        if (i >= 0 && (best < 0 || i < best)) { best = i; bestName = n; }
      }
      if (best < 0) { body.appendChild(document.createTextNode(rest)); break; }
      if (best > 0) body.appendChild(document.createTextNode(rest.slice(0, best)));
      body.appendChild(h('span', { class: 'mention', text: bestName }));
      rest = rest.slice(best + bestName.length);
    }
    return body;
  }

  fileBody(m) {
    const f = m.payload || {};
    return h('div', { class: 'file-card' },
      h('span', { class: 'file-icon', attrs: { 'aria-hidden': 'true' }, text: fileExt(f.name) }),
      h('span', { class: 'file-meta' }, h('span', { class: 'file-name', text: f.name || '' }), h('span', { class: 'muted', text: size(f.size || 0) })),
      h('button', { type: 'button', class: 'ghost small', tabIndex: -1, text: t('file.download'),
        attrs: { 'aria-label': t('file.download_name', { name: f.name || '' }) },
        on: { click: () => api.download(this.id, f.sha256, f.name || 'file').catch((e) => toast(errorText(e))) } }));
  }

  quote(seq, d) {
    const q = d.msgs.get(seq);
    let text;
    if (!q) text = t('msg.reply_unloaded');
    else if (q.retracted) text = t('msg.retracted_short');
    else if (q.kind === 'file') text = t('msg.file_preview', { name: q.payload && q.payload.name || '' });
    else if (q.kind.startsWith('case.')) text = cases.kindTitle(q.kind);
    else text = q.body || '';
    return h('button', { type: 'button', class: 'quote', tabIndex: -1,
      attrs: { 'aria-label': t('msg.reply_to_label', { name: q ? S.userName(q.sender) : '', text: excerpt(text) }) },
      on: { click: () => this.jumpTo(seq) } },
    h('span', { class: 'quote-who', text: q ? S.userName(q.sender) + '：' : '' }), excerpt(text));
  }

  jumpTo(seq) {
    const el = this.els.get('m' + seq);
    if (!el) return;
    this.active = 'm' + seq;
    this.sync();
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
  }

  actions(m, mine) {
    const r = S.state.rooms.get(this.id) || {};
    const canWrite = !r.archived && r.my_role && r.my_role !== 'observer';
    const moderator = r.my_role === 'owner' || r.my_role === 'moderator';
    const btns = [];
    if (canWrite) btns.push(this.act('msg.reply', () => this.startReply(m)));
    if (canWrite && mine && m.kind === 'text') btns.push(this.act('msg.edit', () => this.startEdit(m)));
    if (canWrite && (mine || moderator) && (m.kind === 'text' || m.kind === 'file')) btns.push(this.act('msg.retract', () => this.retract(m)));
    return h('span', { class: 'msg-actions' }, btns);
  }

  act(key, fn) {
    return h('button', { type: 'button', class: 'ghost small', tabIndex: -1, text: t(key), on: { click: fn } });
  }

  systemLine(m) {
    const p = m.payload || {};
    const who = S.userName(m.sender);
    const names = (list) => (list || []).map((x) => S.userName(x.user)).join('、');
    let text;
    switch (m.kind) {
      case 'room.create': text = t('sys.create', { name: who, room: p.name || '' }); break;
      case 'member.add': text = t('sys.add', { name: who, users: names(p.members) }); break;
      case 'member.remove': text = (p.members || []).some((x) => x.user === m.sender) ? t('sys.leave', { users: names(p.members) }) : t('sys.remove', { name: who, users: names(p.members) }); break;
      case 'member.role': text = t('sys.role', { name: who, users: names(p.members) }); break;
      case 'unit.add': text = t('sys.unit_add', { units: (p.units || []).map((u) => S.unitName(u)).join('、') }); break;
      case 'room.rename': text = t('sys.rename', { name: who, room: p.name || '' }); break;
      case 'room.archive': text = p.archived ? t('sys.archive', { name: who }) : t('sys.unarchive', { name: who }); break;
      case 'room.look': text = t('sys.look', { name: S.userName(p.user || m.sender), unit: S.unitName(p.unit || m.sender_unit), role: t('role.' + (p.role || 'supervisor')) }); break;
      default: text = t('sys.other', { kind: m.kind });
    }
    return h('div', { class: 'sysline', attrs: { 'data-seq': m.seq } }, h('span', { text }), ' ', h('time', { attrs: { datetime: m.created_at }, text: time(m.created_at) }));
  }

  renderPending(o) {
    let status;
    const parts = [];
    if (o.state === 'failed') {
      status = h('span', { class: 'failed', attrs: { role: 'alert' }, text: t('outbox.failed', { error: errorText(o.error || {}) }) });
      parts.push(this.act('outbox.retry', () => S.retryItem(o)), this.act('outbox.drop', () => S.dropItem(o)));
    } else if (o.state === 'sending') status = h('span', { class: 'muted', text: t('outbox.sending') });
    else status = h('span', { class: 'muted', text: t('outbox.queued') });
    const body = o.kind === 'file' ? t('msg.file_preview', { name: o.payload && o.payload.name || '' }) : o.body;
    return h('article', { class: ['entry', 'msg', 'mine', 'pending', o.state], tabIndex: -1, attrs: { 'aria-label': t('outbox.label', { text: excerpt(body) }) } },
      h('header', { class: 'msg-head' }, h('span', { class: 'sender', text: S.state.me.name })),
      h('div', { class: 'msg-body', text: body }),
      h('footer', { class: 'msg-foot' }, status, h('span', { class: 'msg-actions' }, parts)));
  }

  showReceipts(m, rc) {
    const read = [], unread = [];
    for (const [u, r] of rc) (r ? read : unread).push(u);
    const list = (us) => h('ul', { class: 'plain' }, us.map((u) => h('li', null, S.userName(u), ' ', h('span', { class: 'muted', text: S.unitName(S.state.users.get(u) && S.state.users.get(u).unit) }))));
    const close = h('button', { type: 'button', class: 'primary', text: t('common.close'), on: { click: () => { dlg.close(); } } });
    const dlg = h('dialog', { class: 'receipts', attrs: { 'aria-labelledby': 'rc-title' } },
      h('h2', { id: 'rc-title', text: t('receipts.title') }),
      h('div', { class: 'cols' },
        h('section', null, h('h3', { text: t('receipts.unread', { n: unread.length }) }), list(unread)),
        h('section', null, h('h3', { text: t('receipts.read', { n: read.length }) }), list(read))),
      close);
    dlg.addEventListener('close', () => { dlg.remove(); const el = this.els.get('m' + m.seq); if (el) el.focus(); });
    document.body.appendChild(dlg);
    dlg.showModal();
    close.focus();
  }

  // Keyboard in the log: arrows move between messages, Home/End to the ends;
  // Tab from a message reaches its buttons.
  logKey(e) {
    const art = e.target.closest && e.target.closest('.entry');
    if (!art || e.target !== art) return;
    const items = [...this.log.querySelectorAll('.entry')];
    let i = items.indexOf(art);
    if (e.key === 'ArrowUp') i--;
    else if (e.key === 'ArrowDown') i++;
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = items.length - 1;
    else if (e.key === 'r' && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const m = this.msgOf(art);
      if (m && !m.retracted) { e.preventDefault(); this.startReply(m); }
      return;
    } else return;
    e.preventDefault();
    if (i < 0 && !this.older.hidden) { this.loadOlder(); return; }
    const next = items[Math.max(0, Math.min(items.length - 1, i))];
    if (next) next.focus();
  }

  logFocus(e) {
    const art = e.target.closest && e.target.closest('.entry');
    if (!art) return;
    const key = art.dataset.key;
    if (this.active !== key) {
      const old = this.els.get(this.active);
      if (old) { old.tabIndex = -1; for (const b of old.querySelectorAll('button')) b.tabIndex = -1; }
      this.active = key;
      art.tabIndex = 0;
    }
    for (const b of art.querySelectorAll('button')) b.tabIndex = 0;
  }

  msgOf(el) {
    const seq = Number(el.dataset.seq);
    const d = S.state.data.get(this.id);
    return d && seq ? d.msgs.get(seq) : null;
  }

  // Composer.

  renderBars() {
    clear(this.bars);
    if (this.reply) {
      const m = this.reply;
      this.bars.appendChild(h('div', { class: 'bar' },
        h('span', { text: t('composer.replying', { name: S.userName(m.sender), text: excerpt(m.body || (m.payload && m.payload.name) || cases.kindTitle(m.kind)) }) }),
        h('button', { type: 'button', class: 'ghost small', text: t('common.cancel'), attrs: { 'aria-label': t('composer.cancel_reply') }, on: { click: () => { this.reply = null; this.renderBars(); this.input.focus(); } } })));
    }
    if (this.editing) {
      this.bars.appendChild(h('div', { class: 'bar editing' },
        h('span', { text: t('composer.editing') }),
        h('button', { type: 'button', class: 'ghost small', text: t('common.cancel'), attrs: { 'aria-label': t('composer.cancel_edit') }, on: { click: () => this.cancelEdit() } })));
    }
    this.sendBtn.textContent = this.editing ? t('composer.save') : t('composer.send');
  }

  startReply(m) {
    this.editing = null;
    this.reply = m;
    this.renderBars();
    this.input.focus();
  }

  startEdit(m) {
    this.reply = null;
    this.editing = m;
    this.savedText = this.input.value;
    this.input.value = m.body || '';
    this.renderBars();
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  cancelEdit() {
    this.editing = null;
    this.input.value = this.savedText || '';
    this.renderBars();
    this.input.focus();
  }

  async retract(m) {
    if (!(await confirmDialog(t('msg.retract_confirm'), t('msg.retract')))) return;
    try {
      await api.del(`/rooms/${encodeURIComponent(this.id)}/messages/${m.seq}`);
      announce(t('msg.retracted_self'));
    } catch (err) {
      toast(errorText(err));
    }
  }

  async submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (this.editing) {
      const m = this.editing;
      if (text === m.body) { this.cancelEdit(); return; }
      this.sendBtn.disabled = true;
      try {
        await api.patch(`/rooms/${encodeURIComponent(this.id)}/messages/${m.seq}`, { body: text });
        this.editing = null;
        this.input.value = this.savedText || '';
        this.renderBars();
      } catch (err) {
        toast(errorText(err));
      } finally {
        this.sendBtn.disabled = false;
      }
      return;
    }
    const mentions = [];
    for (const [name, id] of this.mentions) if (text.includes('@' + name) && !mentions.includes(id)) mentions.push(id);
    S.send(this.id, { kind: 'text', body: text, reply_to: this.reply ? this.reply.seq : 0, mentions });
    this.input.value = '';
    this.reply = null;
    this.mentions = new Map();
    this.drafts.delete(this.id);
    this.renderBars();
    this.first = true; // scroll to the new message
    this.input.focus();
  }

  inputKey(e) {
    if (!this.mentionList.hidden) {
      const opts = [...this.mentionList.children];
      let i = opts.findIndex((o) => o.getAttribute('aria-selected') === 'true');
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        i = (i + (e.key === 'ArrowDown' ? 1 : -1) + opts.length) % opts.length;
        this.highlight(i);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        if (i >= 0) { e.preventDefault(); this.pickMention(opts[i]); return; }
      }
      if (e.key === 'Escape') { e.preventDefault(); this.closeMentions(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'Escape') {
      if (this.editing) this.cancelEdit();
      else if (this.reply) { this.reply = null; this.renderBars(); }
    } else if (e.key === 'ArrowUp' && !this.input.value) {
      // Edit the last message of one's own, as in most chat tools.
      const d = S.state.data.get(this.id);
      const own = d ? [...d.msgs.values()].filter((m) => m.sender === S.state.me.id && m.kind === 'text' && !m.retracted).sort((a, b) => b.seq - a.seq)[0] : null;
      if (own) { e.preventDefault(); this.startEdit(own); }
    }
  }

  onInput() {
    const now = Date.now();
    if (this.live && this.input.value && now - this.lastTyping > TYPING_EVERY) {
      this.lastTyping = now;
      this.live.send({ type: 'typing', room: this.id });
    }
    this.drafts.set(this.id, { text: this.input.value, reply: this.reply, mentions: this.mentions });
    this.updateMentions();
  }

  // Mentions: "@" followed by a few characters offers the room's members.
  updateMentions() {
    const pos = this.input.selectionStart;
    const before = this.input.value.slice(0, pos);
    const m = /(^|\s)@([^\s@]{0,20})$/.exec(before);
    const d = S.state.data.get(this.id);
    if (!m || !d || !d.members) { this.closeMentions(); return; }
    const q = m[2].toLowerCase();
    const r = S.state.rooms.get(this.id);
    const opts = [];
    if (r && r.my_role === 'owner' && t('mention.all').toLowerCase().includes(q)) opts.push({ id: 'all', name: t('mention.all'), unit: '' });
    for (const mem of d.members) {
      if (mem.user === S.state.me.id) continue;
      const name = S.userName(mem.user);
      if (name.toLowerCase().includes(q) || mem.user.toLowerCase().includes(q)) opts.push({ id: mem.user, name, unit: S.unitName(mem.unit) });
      if (opts.length >= 8) break;
    }
    if (opts.length === 0) { this.closeMentions(); return; }
    this.mentionStart = pos - m[2].length - 1;
    replace(this.mentionList, opts.map((o, i) => h('li', { id: 'mention-opt-' + i, class: 'mention-opt', attrs: { role: 'option', 'aria-selected': 'false', 'data-user': o.id, 'data-name': o.name },
      on: { mousedown: (e) => { e.preventDefault(); this.pickMention(e.currentTarget); } } },
    h('span', { text: o.name }), ' ', h('span', { class: 'muted', text: o.unit }))));
    this.mentionList.hidden = false;
    this.highlight(0);
  }

  highlight(i) {
    const opts = [...this.mentionList.children];
    opts.forEach((o, j) => o.setAttribute('aria-selected', String(i === j)));
    if (opts[i]) this.input.setAttribute('aria-activedescendant', opts[i].id);
  }

  pickMention(opt) {
    const name = opt.dataset.name;
    const v = this.input.value;
    const end = this.input.selectionStart;
    const ins = '@' + name + ' ';
    this.input.value = v.slice(0, this.mentionStart) + ins + v.slice(end);
    const caret = this.mentionStart + ins.length;
    this.input.setSelectionRange(caret, caret);
    this.mentions.set(name, opt.dataset.user);
    this.closeMentions();
    this.input.focus();
  }

  closeMentions() {
    this.mentionList.hidden = true;
    clear(this.mentionList);
    this.input.removeAttribute('aria-activedescendant');
  }

  // Attachments: each file is uploaded with a progress bar, then posted as a
  // file message through the outbox.
  uploadFiles() {
    const room = this.id;
    for (const file of this.file.files) {
      const bar = h('progress', { max: 100, value: 0, attrs: { 'aria-label': t('upload.progress', { name: file.name }) } });
      const status = h('span', { class: 'muted', text: '0%' });
      const up = api.upload(room, file, (loaded, total) => {
        const pct = Math.round(loaded * 100 / total);
        bar.value = pct;
        status.textContent = pct + '%';
      });
      const cancel = h('button', { type: 'button', class: 'ghost small', text: t('common.cancel'), attrs: { 'aria-label': t('upload.cancel', { name: file.name }) }, on: { click: () => up.abort() } });
      const li = h('li', { class: 'upload' }, h('span', { class: 'file-name', text: file.name }), bar, status, cancel);
      this.uploads.appendChild(li);
      up.promise.then((ref) => {
        li.remove();
        S.send(room, { kind: 'file', payload: { sha256: ref.sha256, name: ref.name, size: ref.size, type: ref.type } });
        announce(t('upload.done', { name: file.name }));
      }).catch((err) => {
        status.textContent = err.code === 'aborted' ? t('upload.cancelled') : t('upload.failed', { error: errorText(err) });
        status.setAttribute('role', 'alert');
        cancel.textContent = t('common.dismiss');
        cancel.onclick = () => li.remove();
      });
    }
    this.file.value = '';
  }
}

// fileExt is the short type label on a file card ("PDF", "DOC"…).
function fileExt(name) {
  const m = /\.([A-Za-z0-9]{1,4})$/.exec(name || '');
  return m ? m[1].toUpperCase() : 'FILE';
}

function excerpt(s) {
  s = (s || '').replace(/\s+/g, ' ').trim();
  return s.length > 40 ? s.slice(0, 40) + '…' : s;
}
