// Sign-in: the login page, and the dialog that asks for the password again
// when the session has expired, over the page so that nothing typed is lost.
import { api } from './api.js';
import { h } from './dom.js';
import { t, dateTime, setLang, currentLang } from './i18n.js';

// errorText is what a failed sign-in says: the lockout with its end time, a
// wrong password, a disabled account, or a network failure.
export function loginErrorText(err) {
  switch (err.code) {
    case 'account_locked':
      return err.until ? t('login.locked_until', { until: dateTime(err.until) }) : t('login.locked');
    case 'bad_credentials': return t('login.bad_credentials');
    case 'account_disabled': return t('login.disabled');
    case 'network': return t('error.network');
    case 'malformed_json': case 'invalid': return t('login.missing');
    default: return t('error.generic', { message: err.message || err.code });
  }
}

function form(idp, username, onSubmit) {
  const user = h('input', { id: idp + '-username', name: 'username', type: 'text', autocomplete: 'username', required: true,
    value: username || '', readOnly: !!username, attrs: { autocapitalize: 'none', spellcheck: 'false' } });
  const pass = h('input', { id: idp + '-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'form-error', id: idp + '-error', attrs: { role: 'alert' } });
  const btn = h('button', { type: 'submit', class: 'primary', text: t('login.submit') });
  const f = h('form', { class: 'login-form', attrs: { 'aria-describedby': idp + '-error', novalidate: true } },
    h('div', { class: 'field' }, h('label', { attrs: { for: user.id }, text: t('login.username') }), user),
    h('div', { class: 'field' }, h('label', { attrs: { for: pass.id }, text: t('login.password') }), pass),
    err, btn);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    if (!user.value.trim() || !pass.value) {
      err.textContent = t('login.missing');
      (user.value.trim() ? pass : user).focus();
      return;
    }
    btn.disabled = true;
    btn.textContent = t('login.signing_in');
    try {
      await onSubmit(user.value.trim(), pass.value);
    } catch (ex) {
      err.textContent = loginErrorText(ex);
      pass.value = '';
      pass.setAttribute('aria-invalid', 'true');
      pass.focus();
    } finally {
      btn.disabled = false;
      btn.textContent = t('login.submit');
    }
  });
  return { f, user, pass };
}

// loginPage is the sign-in screen; onIn is called with the user once signed in.
export function loginPage(onIn) {
  const { f, user } = form('login', '', async (u, p) => onIn(await api.login(u, p)));
  const other = currentLang() === 'en' ? 'zh-CN' : 'en';
  const page = h('main', { class: 'login-page', id: 'main', tabIndex: -1 },
    h('div', { class: 'login-card' },
      h('div', { class: 'brand', attrs: { 'aria-hidden': 'true' } }, t('app.brand')),
      h('h1', { text: t('app.title') }),
      h('p', { class: 'muted', text: t('login.subtitle') }),
      f,
      h('button', { type: 'button', class: 'link lang-switch', text: t('lang.switch'),
        attrs: { lang: other === 'en' ? 'en' : 'zh-CN' }, on: { click: () => setLang(other) } })));
  setTimeout(() => user.focus(), 0);
  return page;
}

// reloginDialog asks the signed-out user for their password again in a modal
// dialog and resolves with the user once signed in. "Sign out" rejects.
export function reloginDialog(user) {
  return new Promise((resolve, reject) => {
    const { f, pass } = form('relogin', user ? user.username : '', async (u, p) => {
      const me = await api.login(u, p);
      dlg.close();
      dlg.remove();
      resolve(me);
    });
    const out = h('button', { type: 'button', class: 'link', text: t('login.other_user'),
      on: { click: () => { dlg.close(); dlg.remove(); reject(new Error('signed out')); } } });
    const dlg = h('dialog', { class: 'relogin', attrs: { 'aria-labelledby': 'relogin-title', 'aria-describedby': 'relogin-desc' } },
      h('h2', { id: 'relogin-title', text: t('login.expired_title') }),
      h('p', { id: 'relogin-desc', text: t('login.expired_text') }),
      f, out);
    dlg.addEventListener('cancel', (e) => e.preventDefault()); // Escape does not leave a signed-out page
    document.body.appendChild(dlg);
    dlg.showModal();
    pass.focus();
  });
}
