// The room list: the user's cases and other rooms with unread counts and the
// last message, a search box, filters and the to-do queue.
import { h, replace } from './dom.js';
import { t, time, onLang } from './i18n.js';
import * as S from './state.js';
import * as cases from './cases.js';

const FILTERS = ['all', 'case', 'unread', 'mention'];

export class RoomList {
  constructor() {
    this.filter = 'all';
    this.query = '';
    this.selected = null;
    this.search = h('input', { type: 'search', id: 'room-search', autocomplete: 'off',
      on: { input: () => { this.query = this.search.value.trim().toLowerCase(); this.render(); } } });
    this.searchLabel = h('label', { attrs: { for: 'room-search' }, class: 'sr-only' });
    this.filters = h('div', { class: 'filters', attrs: { role: 'group' } });
    this.todo = h('section', { class: 'todo', attrs: { 'aria-labelledby': 'todo-title' } });
    this.juris = h('section', { class: 'todo juris', attrs: { 'aria-labelledby': 'juris-title' } });
    this.list = h('ul', { class: 'rooms', id: 'room-list' });
    this.title = h('h2', { class: 'sr-only', id: 'rooms-title' });
    this.newBtn = h('button', { type: 'button', class: 'ghost small', id: 'new-case', on: { click: () => cases.openCaseDialog() } });
    this.el = h('nav', { class: 'sidebar', id: 'sidebar', attrs: { 'aria-labelledby': 'rooms-title' } },
      this.title,
      h('div', { class: 'sidebar-tools' }, this.searchLabel, this.search, this.newBtn),
      this.filters, this.todo, this.list, this.juris);
    S.on('rooms', () => this.render());
    S.on('names', () => this.render());
    cases.onChange(() => this.render());
    onLang(() => this.render());
    // Deadlines count down: redraw the list every minute.
    setInterval(() => { if (this.el.isConnected) this.render(); }, 60000);
    this.render();
  }

  select(id) {
    this.selected = id;
    this.render();
  }

  matches(r) {
    const c = cases.caseOf(r.id);
    if (this.filter === 'case' && r.kind !== 'case') return false;
    if (this.filter === 'unread' && !(r.unread > 0)) return false;
    if (this.filter === 'mention' && !r.mentioned) return false;
    if (!this.query) return true;
    const hay = [r.name, r.last && r.last.body, c && (c.numbers || []).join(' '), c && c.title]
      .filter(Boolean).join(' ').toLowerCase();
    return hay.includes(this.query);
  }

  render() {
    // Keep the keyboard focus on the same room across a redraw.
    const focused = this.el.contains(document.activeElement) && document.activeElement.dataset ? document.activeElement.dataset.room : null;
    this.draw();
    if (focused) {
      const again = this.el.querySelector(`a[data-room="${CSS.escape(focused)}"]`);
      if (again) again.focus();
    }
  }

  draw() {
    this.title.textContent = t('rooms.title');
    this.searchLabel.textContent = t('rooms.search_label');
    this.search.placeholder = t('rooms.search');
    this.newBtn.textContent = t('case.new');
    this.newBtn.hidden = !cases.canOpenCase();
    this.filters.setAttribute('aria-label', t('rooms.filter'));
    replace(this.filters, FILTERS.map((f) => h('button', { type: 'button', class: 'chip', text: t('rooms.filter.' + f),
      attrs: { 'aria-pressed': String(this.filter === f) },
      on: { click: () => { this.filter = f; this.render(); } } })));
    this.renderTodo();
    this.renderJurisdiction();
    const rooms = S.sortedRooms().filter((r) => this.matches(r));
    if (rooms.length === 0) {
      replace(this.list, h('li', { class: 'empty muted', text: S.state.rooms.size ? t('rooms.none_match') : t('rooms.none') }));
      return;
    }
    replace(this.list, rooms.map((r) => this.item(r)));
  }

  renderTodo() {
    const items = cases.todoItems();
    const mentions = S.sortedRooms().filter((r) => r.mentioned);
    if (items.length === 0 && mentions.length === 0) { replace(this.todo); this.todo.hidden = true; return; }
    this.todo.hidden = false;
    replace(this.todo,
      h('h2', { id: 'todo-title', class: 'section-title', text: t('todo.title', { n: items.length + mentions.length }) }),
      h('ul', { class: 'todo-list' },
        items.map((it) => h('li', null, h('a', { href: '#/r/' + encodeURIComponent(it.room), class: 'todo-item' },
          h('span', { class: 'badge ' + it.kind, text: t('todo.' + it.kind) }), ' ', it.label))),
        mentions.map((r) => h('li', null, h('a', { href: '#/r/' + encodeURIComponent(r.id), class: 'todo-item' },
          h('span', { class: 'badge mention', text: t('todo.mention') }), ' ', r.name)))));
  }

  // renderJurisdiction lists, for supervisors, the cases of their
  // jurisdiction whose rooms they are not in: opening one records the look.
  renderJurisdiction() {
    const cs = cases.jurisdictionCases().filter((c) => !this.query || [c.title, ...(c.numbers || [])].join(' ').toLowerCase().includes(this.query));
    if (!cs.length) { replace(this.juris); this.juris.hidden = true; return; }
    this.juris.hidden = false;
    replace(this.juris, h('h2', { id: 'juris-title', class: 'section-title', text: t('rooms.jurisdiction', { n: cs.length }) }),
      h('ul', { class: 'todo-list' }, cs.map((c) => h('li', null, h('a', { href: '#/r/' + encodeURIComponent(c.id), class: ['room-item', this.selected === c.id && 'current'], attrs: { 'data-room': c.id, 'aria-current': this.selected === c.id ? 'page' : null } },
        h('span', { class: 'room-line' }, h('span', { class: 'kind-badge case', text: t('room.kind.case') }), h('span', { class: 'room-name', text: c.title })),
        cases.listLine(c))))));
  }

  item(r) {
    const c = cases.caseOf(r.id);
    const last = r.last;
    let preview = '';
    if (last) {
      const who = last.sender ? S.userName(last.sender) : '';
      let body;
      if (last.retracted) body = t('msg.retracted_short');
      else if (last.kind === 'file') body = t('msg.file_preview', { name: last.payload && last.payload.name || '' });
      else if (last.kind.startsWith('case.')) body = cases.kindTitle(last.kind);
      else body = last.body || '';
      preview = who ? `${who}: ${body}` : body;
    }
    const current = this.selected === r.id;
    return h('li', null, h('a', { href: '#/r/' + encodeURIComponent(r.id), class: ['room-item', current && 'current', r.unread && 'has-unread'],
      attrs: { 'aria-current': current ? 'page' : null, 'data-room': r.id } },
      h('span', { class: 'room-line' },
        h('span', { class: 'kind-badge ' + r.kind, text: t('room.kind.' + r.kind) }),
        h('span', { class: 'room-name', text: r.name }),
        h('time', { class: 'room-time', text: r.last_at ? time(r.last_at) : '', attrs: { datetime: r.last_at || null } })),
      c ? cases.listLine(c) : null,
      h('span', { class: 'room-line' },
        h('span', { class: 'room-last', text: preview }),
        r.mentioned ? h('span', { class: 'at-me', text: t('rooms.at_me') }) : null,
        r.unread ? h('span', { class: 'unread' },
          h('span', { attrs: { 'aria-hidden': 'true' }, text: r.unread > 99 ? '99+' : String(r.unread) }),
          h('span', { class: 'sr-only', text: t('rooms.unread', { n: r.unread }) })) : null)));
  }
}
