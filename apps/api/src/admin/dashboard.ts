import { createHash } from 'node:crypto';

/**
 * The admin dashboard served at `GET /admin`: one HTML page with inline CSS and vanilla JS, no
 * build step and nothing fetched from elsewhere. It holds no data: it asks for an admin API key
 * (kept in the tab's sessionStorage), then polls the admin JSON API (`/v1/admin/*`) with it as a
 * Bearer key. Everything from the API is written with `textContent` (prompts are user input), and
 * the page's CSP allows only this script and style (by hash) and requests to its own origin.
 *
 * The script and style are `String.raw` templates: no backtick and no `${` may appear in them.
 */

const STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1d1f23; --muted: #6b7280; --bg: #f7f7f8; --card: #fff; --line: #e3e4e8;
  --ok: #13795b; --warn: #a15c07; --bad: #b42318; --accent: #2f5bd3; }
@media (prefers-color-scheme: dark) { :root { --fg: #e7e8ea; --muted: #9aa0aa; --bg: #15171a; --card: #1d2024; --line: #30343a;
  --ok: #47c594; --warn: #e7a23b; --bad: #f0746a; --accent: #7aa2ff; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1rem; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 1.05rem; margin: 0; }
header .spacer { flex: 1; }
#updated { color: var(--muted); font-size: .85rem; }
main { padding: 1rem 1.25rem; max-width: 1400px; margin: 0 auto; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem 1rem; margin-bottom: 1rem; overflow-x: auto; }
h2 { font-size: .95rem; margin: .25rem 0 .6rem; display: flex; align-items: center; gap: .75rem; }
h2 small { font-weight: normal; color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .02em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; max-width: 28rem; overflow-wrap: anywhere; }
td.empty { color: var(--muted); text-align: center; padding: 1rem; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .78rem; border: 1px solid currentColor; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); } .muted { color: var(--muted); }
button, select, input { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .25rem .6rem; }
button { cursor: pointer; } button:hover:not(:disabled) { border-color: var(--accent); } button:disabled { opacity: .5; cursor: default; }
#login form { max-width: 34rem; margin: 3rem auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem; display: grid; gap: .6rem; }
#login input { width: 100%; padding: .45rem .6rem; }
.hint { color: var(--muted); font-size: .85rem; margin: 0; }
.error { color: var(--bad); margin: 0; min-height: 1.2em; }
#message { margin: 0 0 .75rem; min-height: 1.2em; }
progress { width: 5rem; vertical-align: middle; }
nav.pages { display: flex; gap: .5rem; margin-top: .6rem; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var KEY = 'rehyat.adminKey';
  var REFRESH_MS = 5000;
  var BACKOFF_MS = 30000;
  var base = location.pathname.replace(/\/admin\/?$/, '') + '/v1/admin';
  var view = { status: '', after: null, previous: [], timer: null, seq: 0 };

  function $(id) { return document.getElementById(id); }
  function getKey() { return sessionStorage.getItem(KEY); }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined) return;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'cls') e.className = v;
      else if (k.slice(0, 2) === 'on') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function td(text, cls, title) { return el('td', { text: text, cls: cls, title: title }); }
  function num(n) { return td(n === null || n === undefined ? '–' : String(n), 'num'); }
  function badge(text, cls) { return el('span', { cls: 'badge ' + cls, text: text }); }

  function ago(unixS) {
    if (unixS === null || unixS === undefined) return '–';
    var s = Math.max(0, Math.round(Date.now() / 1000 - unixS));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return new Date(unixS * 1000).toLocaleString();
  }
  function timeCell(unixS) {
    return td(ago(unixS), null, unixS === null || unixS === undefined ? null : new Date(unixS * 1000).toLocaleString());
  }
  function gib(n) { return n === null || n === undefined ? '–' : (n / 1073741824).toFixed(1); }

  function ApiFailure(status, code, message) { this.status = status; this.code = code; this.message = message; }

  function api(method, path) {
    return fetch(base + path, {
      method: method,
      headers: { authorization: 'Bearer ' + getKey(), accept: 'application/json' },
      cache: 'no-store',
    }).then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (res.ok) return body;
        var e = body && body.error ? body.error : {};
        throw new ApiFailure(res.status, e.code || null, e.message || ('HTTP ' + res.status));
      });
    });
  }

  function say(text, cls) { var m = $('message'); m.textContent = text || ''; m.className = cls || ''; }

  // ------------------------------------------------------------------ sign in / out
  function showLogin(error) {
    stop();
    view.seq++; // answers still in flight are dropped
    sessionStorage.removeItem(KEY);
    $('board').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = error || '';
    $('key').value = '';
    $('key').focus();
  }
  function showBoard() {
    $('login').hidden = true;
    $('board').hidden = false;
    $('signout').hidden = false;
    refresh();
  }
  $('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var k = $('key').value.trim();
    if (!k) return;
    sessionStorage.setItem(KEY, k);
    showBoard();
  });
  $('signout').addEventListener('click', function () { showLogin(''); });

  // ------------------------------------------------------------------ refresh loop
  function stop() { if (view.timer) clearTimeout(view.timer); view.timer = null; }
  function schedule(ms) { stop(); view.timer = setTimeout(refresh, ms); }

  function handle(err) {
    if (err instanceof ApiFailure) {
      if (err.status === 401) { showLogin('That key was refused: ' + err.message); return true; }
      if (err.status === 403) { showLogin('That key is not an admin key (create one with --role admin).'); return true; }
      if (err.status === 429) { say('Rate limited: ' + err.message + ' Slowing down.', 'warn'); schedule(BACKOFF_MS); return true; }
      say(err.message + ' (' + (err.code || err.status) + ')', 'bad');
      return false;
    }
    say('The API cannot be reached: ' + (err && err.message ? err.message : String(err)), 'bad');
    return false;
  }

  function videosQuery() {
    var q = ['limit=25'];
    if (view.status) q.push('status=' + encodeURIComponent(view.status));
    if (view.after) q.push('after=' + encodeURIComponent(view.after));
    return '/videos?' + q.join('&');
  }

  /** Reads everything and schedules the next read; an answer overtaken by a newer refresh is dropped. */
  function refresh() {
    stop();
    if (!getKey()) return;
    if (document.hidden) { schedule(REFRESH_MS); return; }
    var seq = ++view.seq;
    Promise.all([api('GET', '/queues'), api('GET', '/workers'), api('GET', videosQuery())])
      .then(function (r) {
        if (seq !== view.seq) return;
        renderQueues(r[0]);
        renderWorkers(r[1]);
        renderVideos(r[2]);
        $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
        if ($('message').className === 'bad') say('');
        schedule(REFRESH_MS);
      })
      .catch(function (err) {
        if (seq !== view.seq) return;
        if (!handle(err)) schedule(REFRESH_MS);
      });
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden && getKey()) refresh(); });

  function act(button, method, path, done) {
    button.disabled = true;
    api(method, path)
      .then(function (body) { say(done(body), 'ok'); })
      .catch(function (err) { handle(err); })
      .then(function () { button.disabled = false; refresh(); });
  }

  // ------------------------------------------------------------------ queues
  function renderQueues(list) {
    var rows = list.data.map(function (q) {
      var c = q.counts;
      var button = el('button', { text: q.is_paused ? 'Resume' : 'Pause' });
      button.addEventListener('click', function () {
        if (!q.is_paused && !confirm('Pause ' + q.name + '? Workers finish the jobs they hold and take no new ones.')) return;
        act(button, 'POST', '/queues/' + encodeURIComponent(q.name) + (q.is_paused ? '/resume' : '/pause'), function (r) {
          return r.name + (r.is_paused ? ' paused.' : ' resumed.');
        });
      });
      return el('tr', null, [
        el('td', null, [el('code', { text: q.name })]),
        el('td', null, [q.is_paused ? badge('paused', 'warn') : badge('running', 'ok')]),
        num(c.waiting), num(c.prioritized), num(c.active), num(c.delayed), num(c.paused), num(c.completed),
        el('td', { cls: 'num' + (c.failed > 0 ? ' bad' : '') , text: String(c.failed) }),
        el('td', null, [button]),
      ]);
    });
    $('queues').replaceChildren.apply($('queues'), rows);
  }

  // ------------------------------------------------------------------ workers
  function renderWorkers(list) {
    $('workers-note').textContent = 'stale after ' + list.stale_after_s + ' s without a heartbeat';
    if (list.data.length === 0) {
      $('workers').replaceChildren(el('tr', null, [el('td', { colspan: 8, cls: 'empty', text: 'No worker has a live heartbeat.' })]));
      return;
    }
    var rows = list.data.map(function (w) {
      var v = w.current_video;
      var job = w.current_video_id === null
        ? td('idle', 'muted')
        : el('td', null, [
            el('code', { text: w.current_video_id }),
            v ? ' ' + v.model + ' · ' + v.status + ' · ' + v.progress + '%' : '',
          ]);
      var mem = w.device_memory_total_bytes === null ? '–' : gib(w.device_memory_used_bytes) + ' / ' + gib(w.device_memory_total_bytes) + ' GiB';
      return el('tr', null, [
        el('td', null, [el('code', { text: w.id })]),
        td(w.host + ' (pid ' + w.pid + ')'),
        td(w.device),
        td(mem, 'num'),
        job,
        num(w.chunks_per_second === null ? null : w.chunks_per_second.toFixed(2)),
        td(w.seconds_since_seen.toFixed(1) + ' s ago', null, new Date(w.last_seen_at * 1000).toLocaleString()),
        el('td', null, [w.stale ? badge('stale', 'bad') : badge('live', 'ok'), ' ', el('span', { cls: 'muted', text: 'up ' + ago(w.started_at).replace(' ago', '') })]),
      ]);
    });
    $('workers').replaceChildren.apply($('workers'), rows);
  }

  // ------------------------------------------------------------------ videos
  var STATUS_CLS = { queued: 'muted', in_progress: 'warn', completed: 'ok', failed: 'bad', cancelled: 'muted' };
  function renderVideos(list) {
    if (list.data.length === 0) {
      $('videos').replaceChildren(el('tr', null, [el('td', { colspan: 10, cls: 'empty', text: 'No videos.' })]));
    } else {
      $('videos').replaceChildren.apply($('videos'), list.data.map(function (v) {
        var err = v.error || v.last_error;
        var errCell = err
          ? el('td', { cls: 'wrap' }, [el('code', { cls: v.error ? 'bad' : 'warn', text: err.code }), ' ' + err.message])
          : td('–', 'muted');
        var actions = el('td');
        if (v.status === 'failed') {
          var retry = el('button', { text: 'Retry' });
          retry.addEventListener('click', function () {
            act(retry, 'POST', '/jobs/' + encodeURIComponent(v.id) + '/retry', function (r) { return r.id + ' queued again.'; });
          });
          actions.appendChild(retry);
        }
        var progress = el('progress', { max: 100, value: v.progress, title: v.progress + '%' });
        return el('tr', null, [
          el('td', null, [el('code', { text: v.id })]),
          td(v.owner.name, null, v.owner.id + ' ' + v.owner.prefix),
          el('td', null, [badge(v.status.replace('_', ' '), STATUS_CLS[v.status] || 'muted')]),
          el('td', null, [progress, ' ' + v.chunks_done + '/' + v.chunks_total]),
          td(v.model + ' · ' + v.seconds + ' s · ' + v.size, null, v.prompt),
          timeCell(v.created_at),
          timeCell(v.started_at),
          timeCell(v.completed_at),
          errCell,
          actions,
        ]);
      }));
    }
    $('newer').disabled = view.previous.length === 0;
    $('older').disabled = !list.has_more;
    $('older').dataset.next = list.last_id || '';
  }
  $('status').addEventListener('change', function () {
    view.status = $('status').value; view.after = null; view.previous = []; refresh();
  });
  $('older').addEventListener('click', function () {
    var next = $('older').dataset.next;
    if (!next) return;
    view.previous.push(view.after); view.after = next; refresh();
  });
  $('newer').addEventListener('click', function () {
    if (view.previous.length === 0) return;
    view.after = view.previous.pop(); refresh();
  });

  if (getKey()) showBoard(); else showLogin('');
})();
`;

const BODY = String.raw`
<header>
  <h1>rehyat admin</h1>
  <span class="spacer"></span>
  <span id="updated"></span>
  <button id="signout" type="button" hidden>Sign out</button>
</header>
<main>
  <section id="login" hidden>
    <form id="login-form">
      <label for="key"><strong>Admin API key</strong></label>
      <input id="key" type="password" autocomplete="off" spellcheck="false" placeholder="rh_..." required>
      <button type="submit">Open the dashboard</button>
      <p class="hint">Create one with <code>npm run keys -w @rehyat/api -- create --name ops --role admin</code>.
        The key stays in this tab (sessionStorage) and is sent only to this server's <code>/v1/admin</code> API.</p>
      <p id="login-error" class="error" role="alert"></p>
    </form>
  </section>
  <div id="board" hidden>
    <p id="message" role="status"></p>
    <section>
      <h2>Queues</h2>
      <table>
        <thead><tr><th>Queue</th><th>State</th><th class="num">Waiting</th><th class="num">Prioritized</th><th class="num">Active</th>
          <th class="num">Delayed</th><th class="num">Paused</th><th class="num">Completed</th><th class="num">Failed</th><th></th></tr></thead>
        <tbody id="queues"></tbody>
      </table>
    </section>
    <section>
      <h2>Workers <small id="workers-note"></small></h2>
      <table>
        <thead><tr><th>Worker</th><th>Host</th><th>Device</th><th class="num">Memory</th><th>Current video</th>
          <th class="num">Chunks/s</th><th>Last seen</th><th>Health</th></tr></thead>
        <tbody id="workers"></tbody>
      </table>
    </section>
    <section>
      <h2>Videos
        <label><small>status</small>
          <select id="status">
            <option value="">all</option><option value="queued">queued</option><option value="in_progress">in progress</option>
            <option value="completed">completed</option><option value="failed">failed</option><option value="cancelled">cancelled</option>
          </select>
        </label>
      </h2>
      <table>
        <thead><tr><th>Video</th><th>Owner</th><th>Status</th><th>Progress</th><th>Model</th><th>Created</th><th>Started</th>
          <th>Finished</th><th>Error</th><th></th></tr></thead>
        <tbody id="videos"></tbody>
      </table>
      <nav class="pages"><button id="newer" type="button" disabled>&larr; Newer</button><button id="older" type="button" disabled>Older &rarr;</button></nav>
    </section>
  </div>
</main>
`;

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page. */
export const DASHBOARD_HTML = [
  '<!doctype html>',
  '<html lang="en">',
  '<head>',
  '<meta charset="utf-8">',
  '<meta name="viewport" content="width=device-width, initial-scale=1">',
  '<meta name="referrer" content="no-referrer">',
  '<title>rehyat admin</title>',
  '<link rel="icon" href="data:,">',
  `<style>${STYLE}</style>`,
  '</head>',
  `<body>${BODY}<script>${SCRIPT}</script></body>`,
  '</html>',
].join('\n');

/**
 * Content-Security-Policy of the page: its own script and style (by hash), API requests to its
 * own origin, nothing else (no framing, no forms posting anywhere, no other origin).
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
