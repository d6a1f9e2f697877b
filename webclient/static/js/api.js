// The HTTP API client: the session's tokens, refreshing them before the access
// token expires (and once more on a 401 "token_expired"), JSON requests with the
// error envelope {"error":{"code","message","rule"?,"until"?}} turned into
// ApiError, uploads with progress (XMLHttpRequest) and downloads.
//
// The session lives in sessionStorage: a reload of the tab keeps it, another
// tab or a closed browser does not. A refresh that fails (the session expired
// or was revoked) fires "expired"; the app then asks for the password again in
// a dialog over the page, so nothing the user typed is lost.

const STORE = 'caseroom.session';
const BASE = '/api/v1';

// An ApiError is a refused or failed request: status, the server's stable code,
// its message, and rule (the ACL rule that refused), until (a lockout's end) and
// field when the server gave them. A request that never reached the server has
// code "network" and status 0.
export class ApiError extends Error {
  constructor(status, info) {
    super(info.message || info.code);
    this.status = status;
    this.code = info.code;
    this.rule = info.rule;
    this.until = info.until;
    this.field = info.field;
  }
  get network() { return this.status === 0; }
}

class Api extends EventTarget {
  constructor() {
    super();
    this.session = null; // {access, accessExp, refresh, refreshExp, user}
    this.refreshing = null; // the refresh in flight, so two never race (tokens rotate)
    this.timer = 0;
    try {
      const s = JSON.parse(sessionStorage.getItem(STORE) || 'null');
      if (s && s.refresh && new Date(s.refreshExp) > new Date()) this.session = s;
    } catch { /* ignore */ }
  }

  get user() { return this.session ? this.session.user : null; }
  get token() { return this.session ? this.session.access : ''; }

  save(tokens) {
    this.session = {
      access: tokens.access_token,
      accessExp: tokens.access_expires_at,
      refresh: tokens.refresh_token,
      refreshExp: tokens.refresh_expires_at,
      user: tokens.user,
      got: Date.now(),
    };
    try { sessionStorage.setItem(STORE, JSON.stringify(this.session)); } catch { /* ignore */ }
    this.schedule();
    this.dispatchEvent(new Event('tokens'));
  }

  // schedule arranges the next refresh a little before the access token
  // expires: a third of its life before, at most a minute.
  schedule() {
    clearTimeout(this.timer);
    if (!this.session) return;
    const exp = new Date(this.session.accessExp).getTime();
    const life = exp - (this.session.got || Date.now());
    const margin = Math.min(60000, Math.max(5000, life / 3));
    const wait = Math.max(1000, exp - margin - Date.now());
    this.timer = setTimeout(() => { this.refresh().catch(() => {}); }, wait);
  }

  // expiresSoon reports whether the access token has under 5 s to live: timers
  // sleep in background tabs, so requests check too.
  expiresSoon() {
    return !this.session || new Date(this.session.accessExp).getTime() - Date.now() < 5000;
  }

  async login(username, password) {
    const out = await this.raw('POST', '/auth/login', { username, password }, false);
    this.save(out);
    return out.user;
  }

  // refresh rotates the tokens; concurrent callers share one request.
  refresh() {
    if (!this.session) return Promise.reject(new ApiError(401, { code: 'unauthenticated', message: '' }));
    if (this.refreshing) return this.refreshing;
    const token = this.session.refresh;
    this.refreshing = this.raw('POST', '/auth/refresh', { refresh_token: token }, false)
      .then((out) => { this.save(out); return out; })
      .catch((err) => {
        if (!err.network) this.expire();
        throw err;
      })
      .finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  // expire forgets the tokens but keeps the user, so the app can ask the same
  // person to sign in again without leaving the page.
  expire() {
    clearTimeout(this.timer);
    const user = this.user;
    this.session = null;
    try { sessionStorage.removeItem(STORE); } catch { /* ignore */ }
    this.dispatchEvent(new CustomEvent('expired', { detail: user }));
  }

  async logout() {
    const s = this.session;
    clearTimeout(this.timer);
    this.session = null;
    try { sessionStorage.removeItem(STORE); } catch { /* ignore */ }
    if (s) {
      try { await this.raw('POST', '/auth/logout', { refresh_token: s.refresh }, false); } catch { /* the session ends here either way */ }
    }
    this.dispatchEvent(new Event('logout'));
  }

  // raw sends one request and decodes the answer or the error envelope.
  async raw(method, path, body, auth = true) {
    const headers = { Accept: 'application/json' };
    if (auth && this.session) headers.Authorization = 'Bearer ' + this.session.access;
    let payload;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(BASE + path, { method, headers, body: payload, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, { code: 'network', message: String(e && e.message || e) });
    }
    if (res.status === 204) return null;
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const info = data && data.error ? data.error : { code: 'http_' + res.status, message: res.statusText };
      throw new ApiError(res.status, info);
    }
    return data;
  }

  // request is raw with the session: the access token is refreshed first when
  // it is about to expire, and once more when the server says it expired.
  async request(method, path, body) {
    if (!this.session) throw new ApiError(401, { code: 'unauthenticated', message: '' });
    if (this.expiresSoon()) await this.refresh();
    try {
      return await this.raw(method, path, body);
    } catch (err) {
      if (err.status === 401 && (err.code === 'token_expired' || err.code === 'token_invalid') && this.session) {
        await this.refresh();
        return this.raw(method, path, body);
      }
      if (err.status === 401 && err.code === 'unauthenticated') this.expire();
      throw err;
    }
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  del(path) { return this.request('DELETE', path); }

  // upload sends file as the raw body of POST /rooms/{room}/files, calling
  // progress(loaded, total) as it goes. It returns {promise, abort}.
  upload(room, file, progress) {
    const xhr = new XMLHttpRequest();
    const promise = (async () => {
      if (this.expiresSoon()) await this.refresh();
      return new Promise((resolve, reject) => {
        xhr.open('POST', `${BASE}/rooms/${encodeURIComponent(room)}/files?name=${encodeURIComponent(file.name)}`);
        xhr.setRequestHeader('Authorization', 'Bearer ' + this.token);
        xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
        xhr.upload.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded, e.total); };
        xhr.onload = () => {
          let data = null;
          try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
          if (xhr.status >= 200 && xhr.status < 300) resolve(data);
          else reject(new ApiError(xhr.status, data && data.error ? data.error : { code: 'http_' + xhr.status, message: xhr.statusText }));
        };
        xhr.onerror = () => reject(new ApiError(0, { code: 'network', message: 'network error' }));
        xhr.onabort = () => reject(new ApiError(0, { code: 'aborted', message: 'aborted' }));
        xhr.send(file);
      });
    })();
    return { promise, abort: () => xhr.abort() };
  }

  // download fetches an attachment with the session and hands it to the
  // browser as a file named name.
  async download(room, sha, name) {
    if (this.expiresSoon()) await this.refresh();
    const url = `${BASE}/rooms/${encodeURIComponent(room)}/files/${encodeURIComponent(sha)}?name=${encodeURIComponent(name)}`;
    let res;
    try {
      res = await fetch(url, { headers: { Authorization: 'Bearer ' + this.token }, credentials: 'omit' });
    } catch (e) {
      throw new ApiError(0, { code: 'network', message: String(e) });
    }
    if (!res.ok) {
      let info = { code: 'http_' + res.status, message: res.statusText };
      try { const d = await res.json(); if (d.error) info = d.error; } catch { /* ignore */ }
      throw new ApiError(res.status, info);
    }
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = href;
    a.download = name;
    a.hidden = true;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60000);
  }
}

export const api = new Api();
