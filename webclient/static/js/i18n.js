// Message catalogues and formatting. Every string the client shows comes from
// i18n/zh-CN.js or i18n/en.js through t(); Chinese is the default, English is
// one switch away and remembered in localStorage.
import zh from '../i18n/zh-CN.js';
import en from '../i18n/en.js';

const catalogues = { 'zh-CN': zh, en };
const listeners = new Set();
const KEY = 'caseroom.lang';

let lang = 'zh-CN';
try {
  const saved = localStorage.getItem(KEY);
  if (saved && catalogues[saved]) lang = saved;
} catch { /* storage may be unavailable */ }

export function currentLang() { return lang; }
export function languages() { return Object.keys(catalogues); }

// t returns the text of key in the current language with {name} placeholders
// filled from vars. A missing key falls back to Chinese, then to the key itself.
export function t(key, vars) {
  let s = catalogues[lang][key];
  if (s === undefined) s = zh[key];
  if (s === undefined) {
    console.warn('i18n: missing key', key);
    s = key;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// has reports whether key exists in the catalogue.
export function has(key) { return key in zh; }

// setLang switches the language, relabels the static parts of the page and
// tells every listener, which re-render their dynamic parts.
export function setLang(l) {
  if (!catalogues[l] || l === lang) return;
  lang = l;
  try { localStorage.setItem(KEY, l); } catch { /* ignore */ }
  applyI18n(document);
  for (const fn of listeners) fn(l);
}

export function onLang(fn) { listeners.add(fn); return () => listeners.delete(fn); }

// applyI18n fills elements marked data-i18n (text), data-i18n-label
// (aria-label), data-i18n-placeholder and data-i18n-title under root.
export function applyI18n(root) {
  document.documentElement.lang = lang;
  document.title = t('app.title');
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.setAttribute('title', t(el.dataset.i18nTitle));
}

function fmt(opts) { return new Intl.DateTimeFormat(lang, opts); }

// time formats a moment as the chat shows it: the time of day today, the date
// and time on other days.
export function time(d) {
  const date = d instanceof Date ? d : new Date(d);
  if (isNaN(date)) return '';
  const now = new Date();
  if (date.toDateString() === now.toDateString()) return fmt({ hour: '2-digit', minute: '2-digit' }).format(date);
  if (date.getFullYear() === now.getFullYear()) return fmt({ month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(date);
  return fmt({ year: 'numeric', month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit' }).format(date);
}

// dateTime formats a moment in full (date, hour, minute, second).
export function dateTime(d) {
  const date = d instanceof Date ? d : new Date(d);
  if (isNaN(date)) return '';
  return fmt({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(date);
}

// date formats a day.
export function date(d) {
  const x = d instanceof Date ? d : new Date(d);
  if (isNaN(x)) return '';
  return fmt({ year: 'numeric', month: '2-digit', day: '2-digit' }).format(x);
}

// duration says how long ms is, roughly, in the largest units: "3天4小时".
export function duration(ms) {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const mi = Math.floor(s / 60);
  let out;
  if (d > 0) out = t('dur.dh', { d, h: hr });
  else if (hr > 0) out = t('dur.hm', { h: hr, m: mi });
  else out = t('dur.m', { m: Math.max(mi, 0) });
  return neg ? t('dur.overdue', { d: out }) : out;
}

// size formats a byte count.
export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
