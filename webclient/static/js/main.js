// caseroom's browser client: boot, the page shell (header, connection banner,
// room list, room, case panel), routing by URL fragment (#/r/<room>), and the
// wiring of the socket to the state.
import { api } from './api.js';
import { h, replace, announce } from './dom.js';
import { t, applyI18n, setLang, currentLang, onLang } from './i18n.js';
import { loginPage, reloginDialog } from './login.js';
import * as S from './state.js';
import { Live } from './socket.js';
import { RoomList } from './roomlist.js';
import { RoomView } from './room.js';
import * as cases from './cases.js';

const app = document.getElementById('app');
let live = null;
let shell = null;

function boot() {
  applyI18n(document);
  api.addEventListener('expired', onExpired);
  api.addEventListener('logout', () => { stopApp(); showLogin(); });
  window.addEventListener('hashchange', route);
  document.addEventListener('visibilitychange', () => {
    S.state.visible = document.visibilityState === 'visible';
    if (S.state.visible && S.state.current) S.markRead(S.state.current);
  });
  onLang(() => { if (!shell) showLogin(); });
  if (api.session) {
    api.refresh().then(() => startApp(api.user)).catch((err) => {
      if (err.network) startApp(api.user);
      else showLogin();
    });
  } else showLogin();
}

function showLogin() {
  shell = null;
  replace(app, loginPage((user) => startApp(user)));
  app.removeAttribute('aria-busy');
}

let expiredOpen = false;
async function onExpired(e) {
  if (!shell || expiredOpen) { if (!shell) showLogin(); return; }
  expiredOpen = true;
  const before = e.detail;
  try {
    const me = await reloginDialog(before);
    expiredOpen = false;
    if (before && me.id !== before.id) { stopApp(); startApp(me); return; }
    live.connectNow();
    S.flush();
  } catch {
    expiredOpen = false;
    await api.logout();
  }
}

function stopApp() {
  cases.reset();
  if (live) live.stop();
  live = null;
  shell = null;
  S.reset();
}

// Shell: the signed-in page.
function startApp(user) {
  S.state.me = user;
  S.loadOutbox();
  const banner = h('div', { id: 'banner', class: 'banner', hidden: true, attrs: { role: 'status' } });
  const langBtn = h('button', { type: 'button', class: 'ghost', id: 'lang-switch', text: t('lang.switch'),
    on: { click: () => setLang(currentLang() === 'en' ? 'zh-CN' : 'en') } });
  const me = h('span', { class: 'me' },
    h('span', { class: 'me-name', text: user.name }),
    h('span', { class: 'me-unit', text: user.unit_name || user.unit }));
  const logout = h('button', { type: 'button', class: 'ghost', id: 'logout', text: t('nav.logout'),
    on: { click: () => api.logout() } });
  const header = h('header', { class: 'top' },
    h('h1', { class: 'app-name' }, h('a', { href: '#/', text: t('app.title') })), me, h('span', { class: 'spacer' }), langBtn, logout);
  const list = new RoomList();
  const room = new RoomView();
  const panel = cases.panel();
  const layout = h('main', { class: 'layout', id: 'main', tabIndex: -1 }, list.el, room.el, panel.el);
  replace(app, header, banner, layout);
  app.removeAttribute('aria-busy');
  shell = { banner, list, room, panel, header, langBtn, logout, me };

  onLang(() => {
    if (!shell) return;
    langBtn.textContent = t('lang.switch');
    logout.textContent = t('nav.logout');
    shell.header.querySelector('.app-name a').textContent = t('app.title');
    renderBanner();
  });

  live = new Live(S.since);
  live.addEventListener('state', (e) => { connState = e.detail; renderBanner(); if (e.detail.state === 'open') S.flush(); });
  live.addEventListener('frame', (e) => onFrame(e.detail));
  room.live = live;
  S.loadRooms().then(() => { live.start(); route(); cases.loadTodo().catch(() => {}); }).catch((err) => {
    if (err.network) { live.start(); route(); }
  });
  S.on('outbox', renderBanner);
}

let connState = { state: 'connecting', retryIn: 0 };
let countdown = 0;
function renderBanner() {
  if (!shell) return;
  const b = shell.banner;
  clearInterval(countdown);
  const queued = S.state.outbox.filter((o) => o.state !== 'failed').length;
  if (connState.state === 'open') {
    if (!b.hidden) announce(t('conn.restored'));
    b.hidden = true;
    document.body.classList.remove('offline');
    return;
  }
  if (connState.state === 'connecting' && b.hidden) return; // the first connect: no banner
  document.body.classList.add('offline');
  const until = Date.now() + (connState.retryIn || 0);
  const text = h('span', { class: 'banner-text' });
  const paint = () => {
    const secs = Math.max(0, Math.ceil((until - Date.now()) / 1000));
    let s = connState.state === 'connecting' ? t('conn.connecting') : t('conn.down', { s: secs });
    if (queued) s += ' ' + t('conn.queued', { n: queued });
    text.textContent = s;
  };
  paint();
  if (connState.state === 'down') countdown = setInterval(paint, 1000);
  const retry = h('button', { type: 'button', class: 'ghost', text: t('conn.retry'), on: { click: () => live && live.connectNow() } });
  replace(b, text, connState.state === 'down' ? retry : null);
  b.hidden = false;
}

function onFrame(f) {
  switch (f.type) {
    case 'ready': {
      const known = new Set(S.state.rooms.keys());
      if ((f.rooms || []).some((r) => !known.has(r.room))) S.loadRooms().catch(() => {});
      break;
    }
    case 'message':
      if (!S.state.rooms.has(f.room)) { S.loadRooms().catch(() => {}); }
      S.received(f.message);
      cases.onMessage(f.message);
      if (f.message.kind === 'room.create' || f.message.kind === 'member.add') S.loadRooms().catch(() => {});
      break;
    case 'read': S.readFrame(f); break;
    case 'typing': S.typingFrame(f); break;
    case 'room_removed':
      S.state.rooms.delete(f.room);
      S.state.data.delete(f.room);
      S.emit('rooms');
      if (S.state.current === f.room) location.hash = '#/';
      break;
    default: break;
  }
}

// route opens the room named in the fragment.
function route() {
  if (!shell) return;
  const m = /^#\/r\/(.+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : null;
  document.body.classList.toggle('in-room', !!id);
  S.state.current = id;
  shell.list.select(id);
  shell.room.open(id);
  shell.panel.open(id);
}

boot();
