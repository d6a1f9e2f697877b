// Shared bits of UI: error texts (a refused action shows its rule's message),
// toasts, and a confirmation dialog.
import { h } from './dom.js';
import { t, has, dateTime } from './i18n.js';

// errorText is what to tell the user about a failed request. A refusal by
// the ACL names its rule: the catalogue's text for that rule when it has one,
// else the server's own sentence.
export function errorText(err) {
  if (!err) return '';
  if (err.code === 'network') return t('error.network');
  if (err.code === 'forbidden' || err.code === 'refused') {
    const text = err.rule && has('rule.' + err.rule) ? t('rule.' + err.rule) : (err.message || t('error.forbidden'));
    return err.rule ? t('error.rule', { text, rule: err.rule }) : text;
  }
  if (err.code === 'account_locked') return err.until ? t('login.locked_until', { until: dateTime(err.until) }) : t('login.locked');
  if (err.code === 'invalid' && err.field && has('invalid.' + err.field)) return t('invalid.' + err.field);
  if (err.code && has('error.' + err.code)) return t('error.' + err.code, { message: err.message || '' });
  return t('error.generic', { message: err.message || err.code || '' });
}

let region = null;
// toast shows a short message in an alert region for a few seconds.
export function toast(text, kind = 'error') {
  if (!region) {
    region = h('div', { class: 'toasts', id: 'toasts' });
    document.body.appendChild(region);
  }
  const close = h('button', { type: 'button', class: 'ghost small', text: '×', attrs: { 'aria-label': t('common.dismiss') } });
  const el = h('div', { class: 'toast ' + kind, attrs: { role: kind === 'error' ? 'alert' : 'status' } }, h('span', { text }), close);
  close.addEventListener('click', () => el.remove());
  region.appendChild(el);
  setTimeout(() => el.remove(), 8000);
  return el;
}

// confirmDialog asks a yes/no question in a modal dialog; it resolves true
// when confirmed.
export function confirmDialog(question, okText) {
  return new Promise((resolve) => {
    const back = document.activeElement;
    const ok = h('button', { type: 'button', class: 'primary', text: okText || t('common.ok') });
    const cancel = h('button', { type: 'button', class: 'ghost', text: t('common.cancel') });
    const dlg = h('dialog', { class: 'confirm', attrs: { 'aria-labelledby': 'confirm-q' } },
      h('p', { id: 'confirm-q', text: question }), h('div', { class: 'actions' }, cancel, ok));
    let answer = false;
    ok.addEventListener('click', () => { answer = true; dlg.close(); });
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); if (back && back.focus) back.focus(); resolve(answer); });
    document.body.appendChild(dlg);
    dlg.showModal();
    cancel.focus();
  });
}
