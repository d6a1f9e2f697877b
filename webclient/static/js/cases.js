// Casework in the client: case cards in the room (acts are messages whose kind
// starts with "case."), the case panel beside the room, the to-do queue, the
// supervisor's cases of the jurisdiction, and the dialogs that open a case,
// perform an act (a transfer with its documents and checklist), accept or
// return a transfer, ask for and decide approvals, and issue a supervision
// notice. Which buttons show is the server's answer, never a guess: the case's
// "available" transitions (what the caller could do now) and the to-do queue
// (approvals the caller may decide). A refused act shows the rule's message.
import { api } from './api.js';
import { h, replace, announce } from './dom.js';
import { t, has, dateTime, date, duration, currentLang, onLang } from './i18n.js';
import * as S from './state.js';
import { errorText, toast } from './ui.js';

const listeners = new Set();
export function onChange(fn) { listeners.add(fn); }
let changeQueued = false;
function changed() {
  if (changeQueued) return;
  changeQueued = true;
  queueMicrotask(() => { changeQueued = false; for (const fn of listeners) fn(); });
}

let enabled = false; // the server has the casework API
const procedures = new Map(); // id → ProcedureView
const summaries = new Map(); // case (= room) id → SummaryView
const full = new Map(); // case id → CaseView
let todo = [];
let jurisdiction = []; // SummaryView of the supervisor's jurisdiction

function isSupervisor() { return !!(S.state.me && (S.state.me.roles || []).includes('supervisor')); }

// loadTodo loads what casework the client needs at start: procedures, the
// user's cases, the to-do queue and, for supervisors, the jurisdiction.
export async function loadTodo() {
  try {
    const ps = await api.get('/procedures');
    for (const p of ps.procedures || []) procedures.set(p.id, p);
    enabled = true;
  } catch (err) {
    if (err.status === 404) { enabled = false; changed(); return; }
    throw err;
  }
  await Promise.all([refreshList(), refreshTodo()]);
  // A case room opened before the API answered (a deep link) gets its case now.
  const cur = S.state.current;
  if (cur && isCaseRoom(cur)) {
    await refreshCase(cur, true);
    if (panelEl && panelShown) { panelEl.hidden = false; document.body.classList.add('panel-open'); }
  }
}

async function refreshList() {
  const out = await api.get('/cases?scope=unit');
  for (const c of out.cases || []) summaries.set(c.id, c);
  if (isSupervisor()) {
    const j = await api.get('/cases?scope=jurisdiction');
    jurisdiction = j.cases || [];
    for (const c of jurisdiction) if (!summaries.has(c.id)) summaries.set(c.id, c);
  }
  changed();
}

async function refreshTodo() {
  const out = await api.get('/todo');
  todo = out.todo || [];
  changed();
}

const refreshTimers = new Map();
// refreshCase reloads case id (debounced): after an act arrives or is done.
export function refreshCase(id, now) {
  clearTimeout(refreshTimers.get(id));
  const run = async () => {
    refreshTimers.delete(id);
    try {
      const c = await api.get('/cases/' + encodeURIComponent(id));
      full.set(id, c);
      const s = summaries.get(id);
      if (s) Object.assign(s, { stage: c.stage, holder: c.holder, numbers: (c.numbers || []).map((n) => n.number), closed: c.closed });
      else summaries.set(id, { id, procedure: c.procedure, title: c.title, stage: c.stage, holder: c.holder, numbers: (c.numbers || []).map((n) => n.number) });
      for (const u of c.participants || []) S.unitName(u);
      changed();
    } catch (err) {
      if (err.status !== 404) toast(errorText(err));
    }
  };
  if (now) return run();
  refreshTimers.set(id, setTimeout(run, 150));
  return null;
}

// onMessage follows acts as they arrive: the case, the lists and the to-do
// queue change with them.
export function onMessage(m) {
  if (!enabled || !m || !(m.kind || '').startsWith('case.')) return;
  if (full.has(m.room) || S.state.current === m.room) refreshCase(m.room);
  clearTimeout(onMessage.timer);
  onMessage.timer = setTimeout(() => { refreshList().catch(() => {}); refreshTodo().catch(() => {}); }, 300);
}

export function caseOf(room) { return summaries.get(room) || null; }
export function isCaseRoom(room) {
  const r = S.state.rooms.get(room);
  return !!(r && r.kind === 'case') || summaries.has(room);
}
export function canOpenCase() {
  if (!enabled) return false;
  for (const p of procedures.values()) if (openingTransitions(p).length) return true;
  return false;
}

function openingTransitions(p) {
  return (p.transitions || []).filter((x) => x.mine && (x.from || []).includes(p.initial));
}

function pname(o) { return currentLang() === 'en' ? (o.name_en || o.name_zh || o.id) : (o.name_zh || o.name_en || o.id); }

// transition finds transition id of procedure pid (case or suspect machine).
function transition(pid, id) {
  const p = procedures.get(pid);
  if (!p) return null;
  return (p.transitions || []).find((x) => x.id === id) || (p.suspect && (p.suspect.transitions || []).find((x) => x.id === id)) || null;
}

function transitionName(pid, id) {
  const x = transition(pid, id);
  return x ? pname(x) : id || '';
}

export function stageName(pid, id) {
  const p = procedures.get(pid);
  const st = p && (p.stages || []).find((s) => s.id === id);
  return st ? pname(st) : id || '';
}

function procedureOf(room) {
  const c = full.get(room) || summaries.get(room);
  return c ? c.procedure : '';
}

export function todoItems() {
  return todo.filter((it) => it.kind !== 'mention').map((it) => ({
    room: it.case,
    kind: ['transfer', 'approval', 'return', 'supervision'].includes(it.kind) ? it.kind : 'other',
    label: [it.numbers && it.numbers[0], it.title, it.transition ? transitionName(summaries.get(it.case)?.procedure, it.transition)
      : it.clock ? t('case.extension_of', { clock: clockName(it.case, it.clock) }) : ''].filter(Boolean).join(' · '),
  }));
}

// jurisdictionCases is the supervisor's list of cases not in their rooms.
export function jurisdictionCases() {
  return jurisdiction.filter((c) => !S.state.rooms.has(c.id));
}

export function kindTitle(kind) {
  return has('act.' + kind) ? t('act.' + kind) : t('act.generic');
}

// dueText is the countdown to a deadline.
export function dueText(due) {
  if (!due) return null;
  const left = new Date(due).getTime() - Date.now();
  const cls = left < 0 ? 'overdue' : left < 3 * 86400000 ? 'soon' : '';
  return { text: left < 0 ? duration(left) : t('case.due_in', { left: duration(left) }), cls };
}

// endText is an expiry as the law counts it: in Beijing time, whatever the
// browser's zone, and a period that ends at midnight ends at 24:00 of its
// last day ("2026-03-05 24:00"), as the deadline bot's reminders say.
const beijing = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
function endText(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const parts = (x) => Object.fromEntries(beijing.formatToParts(x).map((p) => [p.type, p.value]));
  const p = parts(d);
  if (p.hour === '00' && p.minute === '00' && d.getSeconds() === 0) {
    const q = parts(new Date(d.getTime() - 1));
    return `${q.year}-${q.month}-${q.day} 24:00`;
  }
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}

// clockName names clock id of case room: from the case's clocks, else the id.
function clockName(room, id) {
  const c = full.get(room);
  const k = c && (c.clocks || []).find((x) => x.id === id);
  return k ? pname({ name_zh: k.name_zh, name_en: k.name_en, id }) : id;
}

// listLine is the case's line in the room list: number, stage, holder and
// the nearest deadline counting down.
export function listLine(c) {
  const due = dueText(c.next_due);
  return h('span', { class: 'room-line case-line' },
    h('span', { class: 'muted', text: [c.numbers && c.numbers[0], stageName(c.procedure, c.stage), c.holder ? t('case.holder_short', { unit: S.unitName(c.holder) }) : ''].filter(Boolean).join(' · ') }),
    due ? h('span', { class: 'deadline ' + due.cls, text: due.text }) : null);
}

// Cards.

function field(label, value) {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return null;
  return [h('dt', { text: label }), h('dd', null, value)];
}

function docList(docs) {
  if (!docs || !docs.length) return null;
  return h('ul', { class: 'docs' }, docs.map((d) => h('li', null, d.name, d.sha256 ? h('span', { class: 'muted', text: ' ' + t('case.doc_attached') }) : null, d.note ? ' — ' + d.note : '')));
}

function checklist(items, missing) {
  const all = [...(items || []).map((x) => [x, true]), ...(missing || []).map((x) => [x, false])];
  if (!all.length) return null;
  return h('ul', { class: 'checklist' }, all.map(([x, ok]) => h('li', { class: ok ? 'done' : 'missing', text: x + (ok ? '' : ' ' + t('case.missing_mark')) })));
}

// card renders act m of room.
export function card(m, room) {
  const p = m.payload && typeof m.payload === 'object' ? m.payload : {};
  const pid = p.procedure || procedureOf(room);
  const c = full.get(room);
  const rows = [];
  let title = kindTitle(m.kind);
  let status = null;
  const actions = [];
  switch (m.kind) {
    case 'case.open':
      title = t('act.case.open') + '：' + (p.title || '');
      rows.push(field(t('field.procedure'), procedures.get(p.procedure) ? pname(procedures.get(p.procedure)) : p.procedure),
        field(t('field.transition'), transitionName(pid, p.transition)),
        field(t('field.cause'), p.cause),
        field(t('field.parties'), (p.parties || []).map((x) => `${x.name}（${t('party.' + x.role)}）`).join('、')),
        field(t('field.target'), p.target ? S.unitName(p.target) : ''),
        field(t('field.number'), p.number && p.number.number),
        field(t('field.documents'), docList(p.documents)),
        field(t('field.note'), p.note));
      break;
    case 'case.act':
    case 'case.accept':
    case 'case.return': {
      const tr = transition(pid, p.transition);
      title = transitionName(pid, p.transition);
      rows.push(field(t('field.suspect'), p.suspect),
        field(tr && tr.act === 'transfer' ? t('field.transfer_to') : t('field.target'), p.target ? S.unitName(p.target) : ''),
        field(t('field.number'), p.number && p.number.number),
        field(t('field.documents'), docList(p.documents)),
        field(t('field.evidence'), checklist(p.evidence, p.missing)),
        field(t('field.reason'), p.reason),
        field(t('field.note'), p.note));
      if (m.kind === 'case.accept') status = h('p', { class: 'status accepted', text: t('case.accepted') });
      if (m.kind === 'case.return') status = h('p', { class: 'status returned', text: t('case.returned') });
      if (tr && tr.act === 'transfer' && c) {
        if (c.pending && c.pending.seq === m.seq) {
          status = h('p', { class: 'status pending', text: t('case.pending_to', { unit: S.unitName(c.pending.to) }) });
          for (const a of c.available || []) {
            if (a.act === 'accept' || a.act === 'return') {
              actions.push(h('button', { type: 'button', class: a.act === 'accept' ? 'primary' : 'ghost', tabIndex: -1,
                dataset: { act: a.act, transition: a.transition },
                text: a.act === 'accept' ? t('case.accept_btn', { name: pname(a) }) : t('case.return_btn', { name: pname(a) }),
                on: { click: () => actDialog(room, a, m.seq) } }));
            }
          }
        } else {
          const answer = (c.acts || []).find((x) => x.seq > m.seq && (x.kind === 'case.accept' || x.kind === 'case.return'));
          if (answer) status = h('p', { class: 'status ' + (answer.kind === 'case.accept' ? 'accepted' : 'returned'), text: answer.kind === 'case.accept' ? t('case.was_accepted') : t('case.was_returned') });
        }
      }
      break;
    }
    case 'case.approval.request': {
      if (p.extension) {
        title = t('case.extension_request') + '：' + clockName(room, p.extension.clock);
        rows.push(field(t('field.clock'), p.extension.clock), field(t('field.extension'), p.extension.extension + (p.extension.by ? ' · ' + p.extension.by : '')),
          field(t('field.suspect'), p.suspect && c ? partyName(c, p.suspect) : p.suspect));
      } else {
        title = t('act.case.approval.request') + '：' + transitionName(pid, p.transition);
      }
      rows.push(field(t('field.approver'), S.unitName(p.target)), field(t('field.summary'), p.summary));
      const ap = c && (c.approvals || []).find((x) => x.seq === m.seq);
      if (ap && ap.decided) status = h('p', { class: 'status ' + (ap.granted ? 'accepted' : 'returned'), text: ap.granted ? t('case.granted') : t('case.denied') });
      else if (todo.some((it) => it.kind === 'approval' && it.case === room && it.seq === m.seq)) {
        actions.push(h('button', { type: 'button', class: 'primary', tabIndex: -1, dataset: { act: 'approve' }, text: t('case.approve'), on: { click: () => decideDialog(room, m.seq, true) } }),
          h('button', { type: 'button', class: 'ghost', tabIndex: -1, dataset: { act: 'deny' }, text: t('case.deny'), on: { click: () => decideDialog(room, m.seq, false) } }));
      } else status = h('p', { class: 'status pending', text: t('case.awaiting_decision') });
      break;
    }
    case 'case.approval.decision': {
      // Say what was decided, so that two decisions do not read alike.
      const ap = c && (c.approvals || []).find((x) => x.seq === p.request);
      const what = ap ? (ap.clock ? t('case.extension_of', { clock: clockName(room, ap.clock) }) : transitionName(pid, ap.transition)) : '';
      title = (p.granted ? t('case.granted') : t('case.denied')) + (what ? '：' + what : '');
      rows.push(field(t('field.note'), p.note));
      break;
    }
    case 'case.supervise':
      title = t('act.case.supervise');
      rows.push(field(t('field.notice'), p.notice), field(t('field.units'), (p.units || []).map((u) => S.unitName(u)).join('、')),
        field(t('field.due_by'), p.due_by ? date(p.due_by) : ''));
      break;
    case 'case.challenge':
      rows.push(field(t('field.reason'), p.reason), field(t('field.target'), S.unitName(p.target)), field(t('field.documents'), docList(p.documents)));
      break;
    case 'case.handlers':
      rows.push(field(t('field.unit'), S.unitName(p.unit)), field(t('field.handlers'), (p.handlers || []).map((u) => S.userName(u)).join('、')));
      break;
    case 'case.correction':
      rows.push(field(t('field.corrects'), '#' + p.target), field(t('field.reason'), p.reason), field(t('field.occurred'), p.occurred_at ? dateTime(p.occurred_at) : ''));
      break;
    case 'case.system':
      // What the passing of time did, posted by the deadline bot.
      title = t('act.case.system') + '：' + transitionName(pid, p.transition);
      rows.push(field(t('field.clock'), clockName(room, p.clock) + (p.clock ? `（${p.clock}）` : '')),
        field(t('field.expired_at'), p.due ? endText(p.due) : ''),
        field(t('field.unit'), p.unit ? S.unitName(p.unit) : ''));
      break;
    default:
      break;
  }
  return h('section', { class: ['card', 'card-' + m.kind.replace(/\./g, '-')], attrs: { 'aria-label': title } },
    h('h3', { class: 'card-title', text: title }),
    m.occurred_at ? h('p', { class: 'muted small', text: t('act.occurred', { at: dateTime(m.occurred_at) }) }) : null,
    m.body ? h('p', { text: m.body }) : null,
    h('dl', { class: 'card-fields' }, rows.filter(Boolean)),
    status,
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

// The case panel.

let panelEl = null;
let panelShown = window.matchMedia('(min-width: 1200px)').matches;

export function panel() {
  const body = h('div', { class: 'panel-body' });
  const title = h('h2', { id: 'case-panel-title', tabIndex: -1 });
  const close = h('button', { type: 'button', class: 'ghost small panel-close', on: { click: () => togglePanel(null, false) } });
  const el = h('aside', { class: 'case-panel', id: 'case-panel', hidden: true, attrs: { 'aria-labelledby': 'case-panel-title' } },
    h('header', { class: 'panel-head' }, title, close), body);
  panelEl = el;
  let room = null;
  let interventions = null; // null: not loaded or not allowed
  const render = () => {
    title.textContent = t('case.panel');
    close.textContent = t('common.close');
    const c = room && full.get(room);
    if (!c) { replace(body, h('p', { class: 'muted', text: room && isCaseRoom(room) ? t('app.loading') : t('case.none') })); return; }
    const s = summaries.get(room) || {};
    const due = dueText(s.next_due);
    const sections = [];
    sections.push(h('h3', { text: c.title }),
      h('dl', null,
        field(t('field.procedure'), procedures.get(c.procedure) ? pname(procedures.get(c.procedure)) : c.procedure),
        field(t('field.numbers'), (c.numbers || []).map((n) => n.number).join('、')),
        field(t('field.stage'), stageName(c.procedure, c.stage)),
        field(t('field.holder'), S.unitName(c.holder)),
        c.pending ? field(t('field.pending'), t('case.pending_to', { unit: S.unitName(c.pending.to) })) : null,
        c.returned_to ? field(t('field.returned_to'), S.unitName(c.returned_to)) : null,
        field(t('field.cause'), c.cause),
        field(t('field.returns'), c.returns ? String(c.returns) : '')));
    // Clocks (办案期限): every running or paused clock, counting down.
    const clocks = (c.clocks || []).filter((k) => k.state !== 'stopped');
    sections.push(h('h3', { text: t('case.clocks') }),
      clocks.length ? h('ul', { class: 'clocks' }, clocks.map((k) => clockItem(room, c, k)))
        : due ? h('p', { class: 'clock' }, h('span', { text: t('case.next_due', { at: dateTime(s.next_due) }) }), h('span', { class: 'deadline ' + due.cls, text: due.text }))
          : h('p', { class: 'muted', text: t('case.no_clock') }));
    // What the user can do now.
    const avail = (c.available || []).filter((a) => !(c.pending && (a.act === 'accept' || a.act === 'return')));
    const btns = [];
    for (const a of avail) {
      if (a.ready) btns.push(h('button', { type: 'button', class: 'ghost', dataset: { transition: a.transition }, text: pname(a) + (a.suspect ? `（${partyName(c, a.suspect)}）` : ''), on: { click: () => actDialog(room, a, 0) } }));
      else btns.push(h('button', { type: 'button', class: 'ghost', dataset: { approval: a.transition }, text: t('case.ask_approval', { name: pname(a) }), attrs: { title: a.needs || '' }, on: { click: () => approvalDialog(room, a) } }));
    }
    if (c.pending && (c.available || []).some((a) => a.act === 'accept' || a.act === 'return')) {
      btns.unshift(h('button', { type: 'button', class: 'primary', text: t('case.answer_transfer'), on: { click: () => focusCard(c.pending.seq) } }));
    }
    if (isSupervisor()) btns.push(h('button', { type: 'button', class: 'ghost', id: 'supervise-btn', text: t('case.supervise'), on: { click: () => superviseDialog(room) } }));
    const r = S.state.rooms.get(room);
    if (r && (r.my_role === 'owner' || r.my_role === 'moderator' || (S.state.me.roles || []).includes('leader'))) {
      btns.push(h('button', { type: 'button', class: 'ghost', text: t('case.add_members'), on: { click: () => membersDialog(room, c) } }));
    }
    sections.push(h('h3', { text: t('case.actions') }), btns.length ? h('div', { class: 'actions panel-actions' }, btns) : h('p', { class: 'muted', text: t('case.no_actions') }));
    // Evidence.
    sections.push(h('h3', { text: t('case.evidence') }), checklist(c.evidence, c.missing) || h('p', { class: 'muted', text: t('case.no_evidence') }));
    // Parties and participants.
    if ((c.parties || []).length) sections.push(h('h3', { text: t('field.parties') }), h('ul', { class: 'plain' }, c.parties.map((x) => h('li', { text: `${x.name}（${t('party.' + x.role)}）` }))));
    sections.push(h('h3', { text: t('case.participants') }), h('ul', { class: 'plain' }, (c.participants || []).map((u) => h('li', null, S.unitName(u),
      (c.handlers && c.handlers[u] && c.handlers[u].length) ? h('span', { class: 'muted', text: ' · ' + t('case.handlers_list', { names: c.handlers[u].map((x) => S.userName(x)).join('、') }) }) : null))));
    // Timeline.
    sections.push(h('h3', { text: t('case.timeline') }), h('ol', { class: 'timeline' }, (c.acts || []).slice().reverse().map((a) => h('li', null,
      h('strong', { text: transitionName(c.procedure, a.transition) || kindTitle(a.kind) }), ' ',
      a.kind === 'case.system' ? h('span', { class: 'muted', text: t('case.by_system') + ' ' }) : null,
      h('span', { class: 'muted', text: `${S.unitName(a.unit)} · ${dateTime(a.occurred_at)}` }),
      a.to && a.to !== a.from ? h('div', { class: 'muted', text: stageName(c.procedure, a.from) + ' → ' + stageName(c.procedure, a.to) }) : null))));
    // Supervision notices.
    if ((c.supervisions || []).length) {
      sections.push(h('h3', { text: t('act.case.supervise') }), h('ul', { class: 'plain' }, c.supervisions.map((x) => h('li', null, x.notice,
        x.due_by ? h('span', { class: 'muted', text: ' · ' + t('field.due_by') + ' ' + date(x.due_by) }) : null))));
    }
    // The intervention register, for those who may see it.
    if (interventions) {
      sections.push(h('h3', { text: t('case.interventions') }), interventions.length ? h('ul', { class: 'plain interventions' }, interventions.map((x) => h('li', null,
        h('strong', { text: x.intervenor_name }), x.intervenor_unit ? ' · ' + x.intervenor_unit : '', ' · ', dateTime(x.occurred_at),
        h('div', { text: x.summary }), h('div', { class: 'muted', text: [x.channel, x.impact].filter(Boolean).join(' · ') }))))
        : h('p', { class: 'muted', text: t('case.no_interventions') }));
    }
    replace(body, sections);
  };
  onLang(render);
  onChange(render);
  S.on('names', render);
  // The countdowns move every half minute without redrawing the panel, so
  // the keyboard focus stays where it is.
  setInterval(() => { if (el.isConnected && !el.hidden) el.querySelectorAll('.clock-item .deadline').forEach(countdown); }, 30000);
  return {
    el,
    open(id) {
      room = id;
      interventions = null;
      const isCase = !!(id && isCaseRoom(id));
      el.hidden = !isCase || !panelShown;
      document.body.classList.toggle('panel-open', !el.hidden);
      render();
      if (isCase && enabled) {
        refreshCase(id, true).then(() => {
          // The register is for auditors and the leaders of the units that
          // handle the case (DESIGN.md invariant 5); nobody else asks.
          const c = full.get(id);
          const me = S.state.me;
          const roles = me.roles || [];
          const handling = c && (c.holder === me.unit || (c.acts || []).some((a) => a.unit === me.unit));
          if (room !== id || !(roles.includes('auditor') || (roles.includes('leader') && handling))) return;
          api.get('/cases/' + encodeURIComponent(id) + '/interventions').then((out) => {
            if (room === id) { interventions = out.interventions || []; render(); }
          }).catch(() => { /* not for this user: the section stays hidden */ });
        });
      }
    },
  };
}

// countdown sets a clock's countdown element from its data: the time left
// to its due instant, frozen while the clock is paused.
function countdown(el) {
  if (el.dataset.state === 'paused') {
    el.className = 'deadline paused';
    el.textContent = t('case.clock_paused_left', { left: duration(Number(el.dataset.left) * 1000) });
    return;
  }
  const d = dueText(el.dataset.due);
  el.className = 'deadline ' + d.cls;
  el.textContent = d.text;
}

// clockItem is one clock of the panel: its name (and the suspect's), basis,
// expiry, countdown, what kind of period it is, the last day to ask for an
// extension, and, for the unit that must act on it, the extension button.
function clockItem(room, c, k) {
  const name = pname({ name_zh: k.name_zh, name_en: k.name_en, id: k.id }) + (k.suspect ? `（${partyName(c, k.suspect)}）` : '');
  const left = h('span', { class: 'deadline', dataset: { due: k.due, state: k.state, left: String(k.left_seconds) } });
  countdown(left);
  const notes = [];
  if (k.strict) notes.push(t('case.clock_strict'));
  if (k.provisional) notes.push(t('case.clock_provisional'));
  if ((k.granted || []).length) notes.push(t('case.clock_extended', { n: k.granted.length }));
  if ((k.extensions || []).some((x) => x.pending)) notes.push(t('case.clock_extension_pending'));
  if (k.request_by) notes.push(t('case.clock_request_by', { at: endText(k.request_by) }));
  const me = S.state.me || {};
  const mayAsk = !c.closed && k.unit === me.unit && (me.roles || []).some((r) => r === 'officer' || r === 'leader') && (k.extensions || []).some((x) => x.askable);
  return h('li', { class: 'clock-item', dataset: { clock: k.key } },
    h('div', { class: 'clock' }, h('strong', { text: name }), left),
    h('div', { class: 'muted small', text: `${k.id} · ${k.basis}` }),
    h('div', { class: 'muted small', text: t('case.clock_due', { at: endText(k.due) }) }),
    notes.length ? h('div', { class: 'muted small', text: notes.join(' · ') }) : null,
    mayAsk ? h('button', { type: 'button', class: 'ghost small', dataset: { extension: k.key }, text: t('case.ask_extension'),
      on: { click: () => extensionDialog(room, c, k) } }) : null);
}

function approverText(a) {
  if (!a || a.agency === 'self') return t('case.approver_self');
  return t('case.approver_of', { agency: t('agency.' + a.agency), level: t('level.' + a.level) });
}

// extensionDialog asks for an extension of clock k: an approval request to
// the approver the clock's data names.
function extensionDialog(room, c, k) {
  const xs = (k.extensions || []).filter((x) => x.askable);
  const pick = h('select', { required: true }, xs.map((x) => h('option', { value: x.id,
    text: `${x.condition}（${x.min ? x.min + '–' : ''}${x.length}，${approverText(x.approver)}）` })));
  const by = h('input', { type: 'text', maxLength: 8, attrs: { placeholder: '2d' } });
  const byField = labelled(t('field.extension_by'), by, t('case.extension_by_hint'));
  const hint = h('p', { class: 'muted small' });
  const sync = () => {
    const x = xs.find((e) => e.id === pick.value);
    byField.hidden = !(x && x.min);
    hint.textContent = x ? t('case.extension_hint', { at: endText(x.request_by), basis: x.basis }) : '';
  };
  pick.addEventListener('change', sync);
  sync();
  const summary = h('textarea', { rows: 3 });
  const name = pname({ name_zh: k.name_zh, name_en: k.name_en, id: k.id });
  dialog(t('case.extension_title', { name }), [labelled(t('field.extension'), pick), hint, byField, labelled(t('field.summary'), summary)],
    t('case.submit_request'), async () => {
      const body = { clock: k.id, suspect: k.suspect || '', extension: pick.value, summary: summary.value.trim() };
      if (!byField.hidden && by.value.trim()) body.by = by.value.trim();
      const out = await api.post(`/cases/${encodeURIComponent(room)}/extensions`, body);
      if (out && out.case) { full.set(room, out.case); changed(); }
      if (out && out.message) S.received(out.message);
      announce(t('case.requested', { name }));
      refreshTodo().catch(() => {});
    });
}

function partyName(c, id) {
  const p = (c.parties || []).find((x) => x.id === id);
  return p ? p.name : id;
}

function focusCard(seq) {
  const el = document.querySelector(`#message-log [data-seq="${Number(seq)}"]`);
  if (el) { el.scrollIntoView({ block: 'center' }); el.focus(); }
}

export function togglePanel(btn, show) {
  panelShown = show === undefined ? !panelShown : show;
  if (panelEl) {
    const room = S.state.current;
    panelEl.hidden = !panelShown || !(room && isCaseRoom(room));
    document.body.classList.toggle('panel-open', !panelEl.hidden);
    if (!panelEl.hidden) panelEl.querySelector('h2').focus();
  }
  const b = btn || document.getElementById('panel-toggle');
  if (b) b.setAttribute('aria-expanded', String(panelShown));
}

// Dialogs.

// dialog opens a modal form; submit(values) may throw an error to show in
// it. It resolves when the dialog closes.
function dialog(titleText, fields, submitText, submit) {
  const back = document.activeElement;
  const err = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  const ok = h('button', { type: 'submit', class: 'primary', text: submitText });
  const cancel = h('button', { type: 'button', class: 'ghost', text: t('common.cancel') });
  const id = 'dlg-' + Math.random().toString(36).slice(2);
  const form = h('form', { class: 'form-grid', attrs: { novalidate: true } }, fields, err, h('div', { class: 'actions' }, cancel, ok));
  const dlg = h('dialog', { class: 'case-dialog', attrs: { 'aria-labelledby': id } }, h('h2', { id, text: titleText }), form);
  cancel.addEventListener('click', () => dlg.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    ok.disabled = true;
    try {
      await submit();
      dlg.close();
    } catch (ex) {
      err.textContent = ex && ex.code ? errorText(ex) : String(ex && ex.message || ex);
    } finally {
      ok.disabled = false;
    }
  });
  dlg.addEventListener('close', () => { dlg.remove(); if (back && back.isConnected && back.focus) back.focus(); });
  document.body.appendChild(dlg);
  dlg.showModal();
  const first = form.querySelector('input:not([type=hidden]):not([disabled]), select, textarea');
  if (first) first.focus();
  return dlg;
}

let fieldSeq = 0;
function labelled(labelText, control, hint) {
  const id = control.id || ('f' + (++fieldSeq));
  control.id = id;
  return h('div', { class: 'field' }, h('label', { attrs: { for: id }, text: labelText }), control, hint ? h('p', { class: 'muted small', text: hint }) : null);
}

function nowLocal() {
  const d = new Date();
  d.setSeconds(0, 0);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function fromLocal(v) { return v ? new Date(v).toISOString() : undefined; }

class UserError extends Error {}

// documentsField lists a transition's documents with a checkbox each (the
// required ones ticked) and an optional file to attach to each.
function documentsField(room, docs) {
  const rows = (docs || []).map((d) => {
    const box = h('input', { type: 'checkbox', checked: !!d.required });
    const file = h('input', { type: 'file', class: 'doc-file', attrs: { 'aria-label': t('case.attach_doc', { name: d.name_zh }) } });
    return { d, box, file, el: h('div', { class: 'doc-row' }, h('label', null, box, ' ', pname({ name_zh: d.name_zh, name_en: d.name_en }), d.required ? h('span', { class: 'muted', text: ' ' + t('case.required') }) : null), file) };
  });
  const el = rows.length ? h('fieldset', null, h('legend', { text: t('field.documents') }), rows.map((r) => r.el)) : null;
  return {
    el,
    async values() {
      const out = [];
      for (const r of rows) {
        if (!r.box.checked) {
          if (r.d.required) throw new UserError(t('case.doc_required', { name: r.d.name_zh }));
          continue;
        }
        const ref = { name: r.d.name_zh };
        if (r.file.files[0]) {
          const up = api.upload(room, r.file.files[0], () => {});
          const res = await up.promise;
          ref.sha256 = res.sha256;
        }
        out.push(ref);
      }
      return out;
    },
  };
}

async function unitsOfKind(kind, region) {
  const q = new URLSearchParams({ kind });
  const out = await api.get('/units?' + q.toString());
  const us = (out.units || []).filter((u) => !u.disabled);
  // The same region first, then the rest.
  us.sort((a, b) => (a.region === region ? 0 : 1) - (b.region === region ? 0 : 1) || a.id.localeCompare(b.id));
  for (const u of us) S.state.units.set(u.id, { id: u.id, name: u.name, kind: u.kind });
  return us;
}

// actDialog performs available transition a of room's case; answers is the
// transfer an accept or return answers (0 for other acts).
export async function actDialog(room, a, answers) {
  const c = full.get(room);
  const tr = transition(c && c.procedure, a.transition) || { documents: [] };
  const fields = [];
  let target = null;
  if (a.act === 'transfer' && a.receiver) {
    target = h('select', { required: true });
    fields.push(labelled(t('field.transfer_to'), target));
    const region = S.state.me.region;
    unitsOfKind(a.receiver, region).then((us) => replace(target, us.map((u) => h('option', { value: u.id, text: u.name })))).catch((e) => toast(errorText(e)));
  }
  const docs = documentsField(room, tr.documents);
  if (docs.el) fields.push(docs.el);
  let missing = null;
  let missingText = null;
  if (a.act === 'return') {
    // A return names what is missing: items of the checklist, and anything else, a line each.
    if (c && (c.evidence || []).length) {
      missing = c.evidence.map((x) => ({ x, box: h('input', { type: 'checkbox' }) }));
      fields.push(h('fieldset', null, h('legend', { text: t('field.missing') }), missing.map((m) => h('label', null, m.box, ' ', m.x))));
    }
    missingText = h('textarea', { rows: 2, required: true, id: 'missing-items' });
    fields.push(labelled(t('field.missing_lines'), missingText));
  }
  const needReason = a.act === 'return' || tr.reason_required;
  const reason = h('textarea', { rows: 3, required: needReason });
  fields.push(labelled(needReason ? t('field.reason_required') : t('field.reason'), reason));
  const occurred = h('input', { type: 'datetime-local', value: nowLocal(), max: nowLocal() });
  fields.push(labelled(t('field.occurred'), occurred, t('case.occurred_hint')));
  const note = h('input', { type: 'text' });
  fields.push(labelled(t('field.note'), note));
  const name = pname(a);
  dialog(a.act === 'accept' ? t('case.accept_title', { name }) : a.act === 'return' ? t('case.return_title', { name }) : name, fields, t('case.submit_act'), async () => {
    if (needReason && !reason.value.trim()) { reason.focus(); throw new UserError(t('case.reason_needed')); }
    const body = { transition: a.transition, reason: reason.value.trim(), note: note.value.trim(), occurred_at: fromLocal(occurred.value) };
    if (a.suspect) body.suspect = a.suspect;
    if (target) body.target = target.value;
    body.documents = await docs.values();
    if (missingText) {
      body.missing = [...(missing || []).filter((m) => m.box.checked).map((m) => m.x),
        ...missingText.value.split(/\n|；|;/).map((x) => x.trim()).filter(Boolean)];
      if (!body.missing.length) { missingText.focus(); throw new UserError(t('case.missing_needed')); }
    }
    const path = answers ? `/cases/${encodeURIComponent(room)}/transfers/${answers}/${a.act === 'accept' ? 'accept' : 'return'}` : `/cases/${encodeURIComponent(room)}/acts`;
    const out = await api.post(path, body);
    if (out && out.case) { full.set(room, out.case); changed(); }
    if (out && out.message) S.received(out.message);
    announce(t('case.done', { name }));
    refreshList().catch(() => {});
    refreshTodo().catch(() => {});
  });
}

async function approvalDialog(room, a) {
  const summary = h('textarea', { rows: 3 });
  const name = pname(a);
  dialog(t('case.ask_approval', { name }), [h('p', { class: 'muted', text: a.needs || '' }), labelled(t('field.summary'), summary)], t('case.submit_request'), async () => {
    let out;
    for (let i = 0; i < Math.max(1, a.approvals || 1); i++) {
      try {
        out = await api.post(`/cases/${encodeURIComponent(room)}/approvals`, { transition: a.transition, suspect: a.suspect || '', index: i, summary: summary.value.trim() });
      } catch (err) {
        if (i === 0) throw err; // a later approval may need another step first
        break;
      }
    }
    if (out && out.case) { full.set(room, out.case); changed(); }
    if (out && out.message) S.received(out.message);
    announce(t('case.requested', { name }));
  });
}

function decideDialog(room, seq, granted) {
  const note = h('textarea', { rows: 3 });
  dialog(granted ? t('case.approve') : t('case.deny'), [labelled(t('field.note'), note)], granted ? t('case.approve') : t('case.deny'), async () => {
    const out = await api.post(`/cases/${encodeURIComponent(room)}/approvals/${seq}/decision`, { granted, note: note.value.trim() });
    if (out && out.case) { full.set(room, out.case); changed(); }
    if (out && out.message) S.received(out.message);
    refreshTodo().catch(() => {});
  });
}

function superviseDialog(room) {
  const c = full.get(room);
  const notice = h('textarea', { rows: 4, required: true });
  const units = (c.participants || []).filter((u) => u !== c.committee).map((u) => ({ u, box: h('input', { type: 'checkbox', checked: u === c.holder }) }));
  const due = h('input', { type: 'date' });
  dialog(t('case.supervise'), [labelled(t('field.notice'), notice),
    h('fieldset', null, h('legend', { text: t('field.units') }), units.map((x) => h('label', null, x.box, ' ', S.unitName(x.u)))),
    labelled(t('field.due_by'), due)], t('case.submit_supervise'), async () => {
    if (!notice.value.trim()) { notice.focus(); throw new UserError(t('case.notice_needed')); }
    const body = { notice: notice.value.trim(), units: units.filter((x) => x.box.checked).map((x) => x.u) };
    if (due.value) body.due_by = new Date(due.value + 'T23:59:00').toISOString();
    const out = await api.post(`/cases/${encodeURIComponent(room)}/supervision`, body);
    if (out && out.case) { full.set(room, out.case); changed(); }
    if (out && out.message) S.received(out.message);
  });
}

function membersDialog(room, c) {
  const unit = h('select');
  const list = h('div', { class: 'member-picks' });
  const load = async () => {
    const out = await api.get('/users?unit=' + encodeURIComponent(unit.value));
    const d = S.state.data.get(room);
    const have = new Set((d && d.members || []).map((m) => m.user));
    replace(list, (out.users || []).filter((u) => !u.bot && !u.disabled && !have.has(u.id)).map((u) => h('label', null,
      h('input', { type: 'checkbox', value: u.id }), ' ', u.name)));
  };
  replace(unit, (c.participants || []).map((u) => h('option', { value: u, text: S.unitName(u) })));
  unit.addEventListener('change', () => load().catch((e) => toast(errorText(e))));
  load().catch((e) => toast(errorText(e)));
  dialog(t('case.add_members'), [labelled(t('field.unit'), unit), h('fieldset', null, h('legend', { text: t('case.pick_users') }), list)], t('case.add'), async () => {
    const users = [...list.querySelectorAll('input:checked')].map((x) => x.value);
    if (!users.length) throw new UserError(t('case.pick_users'));
    await api.post(`/rooms/${encodeURIComponent(room)}/members`, { users, role: 'member' });
    S.loadMembers(room).catch(() => {});
  });
}

// openCaseDialog opens a case with a first act the user's agency performs.
export function openCaseDialog() {
  const procs = [...procedures.values()].filter((p) => openingTransitions(p).length);
  if (!procs.length) return;
  const proc = h('select', { required: true }, procs.map((p) => h('option', { value: p.id, text: pname(p) })));
  const tr = h('select', { required: true });
  const fillTr = () => replace(tr, openingTransitions(procedures.get(proc.value)).map((x) => h('option', { value: x.id, text: pname(x) })));
  proc.addEventListener('change', fillTr);
  fillTr();
  const title = h('input', { type: 'text', required: true, maxLength: 200 });
  const cause = h('input', { type: 'text', maxLength: 100 });
  const party = h('input', { type: 'text', maxLength: 100 });
  const role = h('select', null, ['suspect', 'defendant', 'plaintiff', 'respondent', 'applicant', 'victim'].map((r) => h('option', { value: r, text: t('party.' + r) })));
  const occurred = h('input', { type: 'datetime-local', value: nowLocal(), max: nowLocal() });
  const note = h('textarea', { rows: 2 });
  dialog(t('case.new'), [labelled(t('field.procedure'), proc), labelled(t('field.transition'), tr), labelled(t('field.title'), title),
    labelled(t('field.cause'), cause), h('div', { class: 'two' }, labelled(t('field.party_name'), party), labelled(t('field.party_role'), role)),
    labelled(t('field.occurred'), occurred, t('case.occurred_hint')), labelled(t('field.note'), note)], t('case.open_submit'), async () => {
    if (!title.value.trim()) { title.focus(); throw new UserError(t('case.title_needed')); }
    const body = { procedure: proc.value, transition: tr.value, title: title.value.trim(), cause: cause.value.trim(), note: note.value.trim(),
      parties: party.value.trim() ? [{ id: 'p1', role: role.value, name: party.value.trim() }] : [], handlers: [S.state.me.id],
      occurred_at: fromLocal(occurred.value) };
    const c = await api.post('/cases', body);
    full.set(c.id, c);
    summaries.set(c.id, { id: c.id, procedure: c.procedure, title: c.title, stage: c.stage, holder: c.holder, numbers: (c.numbers || []).map((n) => n.number) });
    await S.loadRooms();
    changed();
    location.hash = '#/r/' + encodeURIComponent(c.room || c.id);
  });
}

// reset forgets everything (sign-out).
export function reset() {
  procedures.clear();
  summaries.clear();
  full.clear();
  todo = [];
  jurisdiction = [];
  enabled = false;
}
