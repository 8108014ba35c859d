/*
 * geoplan session: what every token-protected page (planner, coverage, audit, dashboard) shares.
 *
 * Those pages are public and empty: a browser sends no bearer token on a page load. Each page's script calls
 * `GeoplanSession.tokenPage({...})`, which runs the token form the templates include (templates/_session.html):
 * it keeps the token in sessionStorage only (it ends with the tab), under the page's own key, and only once
 * the server has accepted it; it hands the page an API wrapper that sends `Authorization: Bearer …` and turns
 * 401/403 into AuthError; downloads that need the token are fetched and saved from a blob. The page's state is
 * in <body data-PAGE="login|…" data-ready="true"> (the browser tests wait on it).
 *
 * SECURITY: every string from the server reaches the DOM as text (textContent), never as markup: no innerHTML,
 * insertAdjacentHTML or HTML built from strings in this file (a test checks).
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ small DOM helpers (text only)
  function byId(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function setStatus(node, text, isError) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle('gp-error', Boolean(isError));
  }

  function fmt(value, digits) {
    if (typeof value !== 'number' || !isFinite(value)) return '—';
    return value.toLocaleString('zh-CN', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  // A table row: a node as it is, {text, num} as a (right-aligned) cell, anything else as text ('—' if missing).
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (cell) {
      if (cell instanceof Node) { tr.appendChild(cell); return; }
      var td = document.createElement('td');
      if (cell && typeof cell === 'object') {
        td.textContent = cell.text;
        if (cell.num) td.className = 'gp-num';
      } else {
        td.textContent = cell === null || cell === undefined ? '—' : String(cell);
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function button(text, className, onClick) {
    var node = el('button', className || 'gp-button', text);
    node.type = 'button';
    if (onClick) node.addEventListener('click', onClick);
    return node;
  }

  function definitionList(className, pairs) {
    var list = el('dl', className);
    pairs.forEach(function (pair) {
      list.appendChild(el('dt', null, pair[0]));
      list.appendChild(el('dd', null, pair[1] === null || pair[1] === undefined ? '—' : pair[1]));
    });
    return list;
  }

  function syntheticTag(label) {
    var tag = el('span', 'gp-tag gp-tag-synthetic', label);
    tag.title = '合成的演示数据，非官方数据';
    return tag;
  }

  // ------------------------------------------------------------------ token storage and the API
  // sessionStorage can be refused (privacy settings): the page then works for this load only.
  var storage = {
    get: function (key) { try { return window.sessionStorage.getItem(key); } catch (e) { return null; } },
    set: function (key, value) {
      try { window.sessionStorage.setItem(key, value); } catch (e) { /* this load only */ }
    },
    drop: function (key) { try { window.sessionStorage.removeItem(key); } catch (e) { /* nothing stored */ } },
  };

  function AuthError(message) { this.message = message; }

  // The server's reason, as text for a person: its Chinese message ("detail_zh") where it has one; otherwise a
  // Chinese sentence by status, with the server's own words ({"detail": "..."} or FastAPI's [{"msg": ...}] list)
  // after it for whoever has to fix it.
  async function reason(response) {
    var detail = '';
    try {
      var body = await response.json();
      if (typeof body.detail_zh === 'string' && body.detail_zh) return body.detail_zh;
      if (typeof body.detail === 'string') detail = body.detail;
      if (Array.isArray(body.detail)) detail = body.detail.map(function (d) { return d.msg; }).join('; ');
    } catch (e) { /* not JSON */ }
    // A body without detail_zh comes from something in front of the API (a proxy's 413 or 503 page, say).
    if (response.status === 503) return '服务暂不可用（HTTP 503），请稍后重试。';
    if (response.status >= 500) return '服务器内部错误（HTTP ' + response.status + '），请稍后重试或联系管理员。';
    var what = { 404: '未找到请求的内容', 413: '上传的文件或请求内容过大', 429: '请求过于频繁，请稍后重试' }[response.status]
      || '请求未被接受';
    return what + '（HTTP ' + response.status + '）' + (detail ? '：' + detail : '。');
  }

  // Saves a blob as a file: a temporary link, clicked (a download renders nothing on the page).
  function saveBlob(blob, filename) {
    var link = el('a', null);
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  // fetch with the token; 401/403 become AuthError (the token is gone or too weak: `forbidden` names the role
  // the page needs), other failures Error with the server's reason.
  function makeApi(token, forbidden) {
    function headers(extra) { return Object.assign({ Authorization: 'Bearer ' + token }, extra || {}); }
    async function request(url, init) {
      init = init || {};
      var response = await fetch(url, Object.assign({}, init, {
        headers: headers(Object.assign({ Accept: 'application/json' }, init.headers || {})), credentials: 'omit',
      }));
      if (response.status === 401) throw new AuthError('令牌无效或已被撤销，请重新输入。');
      if (response.status === 403) throw new AuthError('此令牌的角色不足：' + forbidden);
      if (!response.ok) throw new Error(await reason(response));
      return response;
    }
    return {
      headers: headers,
      request: request,
      json: function (url, init) { return request(url, init).then(function (r) { return r.json(); }); },
      // A file that needs the token: fetched here, saved from a blob.
      download: function (url, filename) {
        return request(url).then(function (r) { return r.blob(); }).then(function (blob) { saveBlob(blob, filename); });
      },
    };
  }

  // ------------------------------------------------------------------ the token form and the page's session
  // options:
  //   page       'planner', 'coverage', 'audit' or 'dashboard': the storage keys geoplan.PAGE.token / .notice
  //              and the body attribute data-PAGE
  //   forbidden  the end of the 403 message: the role the page needs
  //   verify     api -> Promise: the first request. The form stays (“正在验证令牌…”) until it answers; a
  //              refusal or a failure goes back to the form with the reason. Without it, the page opens at once
  //              and `open` is the check (the dashboard: its first load is long and says so in the page);
  //              a failure other than a refusal then shows in `status`.
  //   open       (api, first) -> Promise: fill the page once the token is accepted (`first`: verify's answer)
  //   also       more elements shown and hidden together with #gp-app
  //   reload     a token refused mid-session reloads the page (no data left behind) and the form says why;
  //              without it the form replaces the page in place (its filters stay in the address)
  //   onError    (error) after a failure was shown (not after a refusal)
  //   status     where `open`'s failure shows when there is no `verify`
  // Returns {api(), state(name), failed(node), resume(), downloads(attribute, status, describe)}.
  function tokenPage(options) {
    var page = options.page;
    var tokenKey = 'geoplan.' + page + '.token';
    var noticeKey = 'geoplan.' + page + '.notice';
    var login = byId('gp-login');
    var input = byId('gp-token');
    var loginError = byId('gp-login-error');
    var panels = [byId('gp-app')].concat(options.also || []);
    var current = null;

    function state(name) {
      document.body.setAttribute('data-' + page, name);
      document.body.setAttribute('data-ready', 'true');
    }

    function showLogin(message) {
      panels.forEach(function (node) { node.hidden = true; });
      login.hidden = false;
      setStatus(loginError, message || '', Boolean(message));
      input.focus();
      state('login');
    }

    function showApp() {
      login.hidden = true;
      panels.forEach(function (node) { node.hidden = false; });
    }

    function accept(token) {
      storage.set(tokenKey, token); // kept only once the server has accepted it
      input.value = '';
      setStatus(loginError, '');
    }

    function signOut(message) {
      storage.drop(tokenKey);
      current = null;
      showLogin(message);
    }

    // An expired or revoked token mid-session: forget it and start over with the form and the reason.
    function expire(message) {
      if (!options.reload) { signOut(message); return; }
      storage.drop(tokenKey);
      storage.set(noticeKey, message);
      window.location.replace(window.location.pathname);
    }

    function failed(node) {
      return function (error) {
        if (error instanceof AuthError) { expire(error.message); return; }
        setStatus(node, '出错了：' + error.message, true);
        console.warn(error);
        if (options.onError) options.onError(error);
      };
    }

    async function start(token) {
      current = makeApi(token, options.forbidden);
      var api = current;
      if (!options.verify) {
        showApp();
        try {
          await options.open(api);
          accept(token);
        } catch (error) { failed(options.status)(error); }
        return;
      }
      setStatus(loginError, '正在验证令牌…');
      var first;
      try {
        first = await options.verify(api);
      } catch (error) {
        signOut(error instanceof AuthError ? error.message : '无法连接服务器：' + error.message);
        return;
      }
      accept(token);
      showApp();
      await options.open(api, first);
    }

    login.addEventListener('submit', function (event) {
      event.preventDefault();
      var token = input.value.trim();
      if (token) start(token);
    });
    byId('gp-logout').addEventListener('click', function () {
      storage.drop(tokenKey);
      window.location.replace(window.location.pathname); // a fresh page: no data is left behind
    });

    // The buttons carrying `attribute` (its value: the format) download a file with the token.
    // describe(format) -> {url, filename, busy, done}: busy and done are shown in `status` before and after.
    function downloads(attribute, status, describe) {
      document.querySelectorAll('button[' + attribute + ']').forEach(function (node) {
        node.addEventListener('click', function () {
          var file = describe(node.getAttribute(attribute));
          setStatus(status, file.busy);
          current.download(file.url, file.filename)
            .then(function () { setStatus(status, file.done || ''); })
            .catch(failed(status));
        });
      });
    }

    // The tab's token if it has one (a reload keeps the session), else the form with any notice left for it.
    function resume() {
      var notice = storage.get(noticeKey);
      storage.drop(noticeKey);
      var saved = storage.get(tokenKey);
      if (saved) start(saved); else showLogin(notice);
    }

    return {
      api: function () { return current; },
      state: state,
      failed: failed,
      expire: expire,
      downloads: downloads,
      resume: resume,
    };
  }

  // An instant from the API (ISO 8601 with its offset) as people read it: Beijing time, whatever this browser's
  // own zone is. '2026-12-07T07:30:00+08:00' -> '2026-12-07 07:30:00'; text that is no time is returned as it is.
  function beijingTime(iso) {
    if (!iso) return '—';
    var moment = new Date(iso);
    if (isNaN(moment)) return String(iso);
    var shifted = new Date(moment.getTime() + 8 * 3600 * 1000).toISOString();  // UTC+8 spelled as UTC
    return shifted.slice(0, 10) + ' ' + shifted.slice(11, 19);
  }

  window.GeoplanSession = {
    AuthError: AuthError,
    beijingTime: beijingTime,
    tokenPage: tokenPage,
    makeApi: makeApi,
    saveBlob: saveBlob,
    byId: byId,
    el: el,
    clear: clear,
    setStatus: setStatus,
    fmt: fmt,
    row: row,
    button: button,
    definitionList: definitionList,
    syntheticTag: syntheticTag,
  };
})();
