// Casework in the client: case cards in the room (acts are messages whose kind
// starts with "case."), the case panel beside the room, the to-do queue and
// opening a case. The casework API is read from /api/v1/cases…; until a
// server has it, case rooms show their acts as generic cards.
import { h, replace } from './dom.js';
import { t, has, dateTime, onLang } from './i18n.js';
import * as S from './state.js';

const listeners = new Set();
export function onChange(fn) { listeners.add(fn); }
function changed() { for (const fn of listeners) fn(); }

const byRoom = new Map(); // room → case view
let todo = [];

export function caseOf(room) { return byRoom.get(room) || null; }
export function isCaseRoom(room) {
  const r = S.state.rooms.get(room);
  return !!(r && r.kind === 'case') || byRoom.has(room);
}
export function todoItems() { return todo; }
export function canOpenCase() { return false; }
export function openCaseDialog() {}
export async function loadTodo() {}
export function onMessage() {}

export function kindTitle(kind) {
  return has('act.' + kind) ? t('act.' + kind) : t('act.generic');
}

// listLine is the case's line in the room list.
export function listLine(c) {
  return h('span', { class: 'room-line case-line muted', text: [c.number, c.stage].filter(Boolean).join(' · ') });
}

// card renders an act.
export function card(m) {
  const p = m.payload && typeof m.payload === 'object' ? m.payload : {};
  const rows = Object.entries(p).filter(([, v]) => v !== null && typeof v !== 'object').slice(0, 8)
    .map(([k, v]) => [h('dt', { text: has('field.' + k) ? t('field.' + k) : k }), h('dd', { text: String(v) })]);
  return h('section', { class: 'card', attrs: { 'aria-label': kindTitle(m.kind) } },
    h('h3', { class: 'card-title', text: kindTitle(m.kind) }),
    m.occurred_at ? h('p', { class: 'muted', text: t('act.occurred', { at: dateTime(m.occurred_at) }) }) : null,
    m.body ? h('p', { text: m.body }) : null,
    rows.length ? h('dl', { class: 'card-fields' }, rows) : null);
}

// panel is the case panel beside the room (hidden for other rooms).
export function panel() {
  const body = h('div', { class: 'panel-body' });
  const title = h('h2', { id: 'case-panel-title' });
  const close = h('button', { type: 'button', class: 'ghost small panel-close', on: { click: () => togglePanel(null, false) } });
  const el = h('aside', { class: 'case-panel', id: 'case-panel', hidden: true, attrs: { 'aria-labelledby': 'case-panel-title' } },
    h('header', { class: 'panel-head' }, title, close), body);
  let room = null;
  const render = () => {
    title.textContent = t('case.panel');
    close.textContent = t('common.close');
    const c = room && caseOf(room);
    replace(body, c ? h('p', { text: c.number || '' }) : h('p', { class: 'muted', text: t('case.none') }));
  };
  onLang(render);
  onChange(render);
  panelEl = el;
  return {
    el,
    open(id) {
      room = id;
      el.hidden = !(id && isCaseRoom(id)) || !panelShown;
      document.body.classList.toggle('panel-open', !el.hidden);
      render();
    },
  };
}

let panelEl = null;
let panelShown = window.matchMedia('(min-width: 1200px)').matches;
export function togglePanel(btn, show) {
  panelShown = show === undefined ? !panelShown : show;
  if (panelEl) {
    panelEl.hidden = !panelShown;
    document.body.classList.toggle('panel-open', panelShown);
  }
  const b = btn || document.getElementById('panel-toggle');
  if (b) b.setAttribute('aria-expanded', String(panelShown));
  if (panelShown && panelEl) panelEl.querySelector('h2').focus && panelEl.focus;
}
