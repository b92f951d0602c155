// Sluice dashboard: plain JS, no external libraries. The admin token, when
// one is configured, is passed once in the URL fragment (#token=...), kept
// in sessionStorage (this tab only) and sent as a bearer token.
'use strict';
(function () {
  const KEY = 'sluice-admin-token';
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const $ = (id) => document.getElementById(id);
  const state = { charts: {}, lastUpdate: null, errors: 0 };
  window.sluiceDashboard = state;

  async function api(path) {
    const headers = {};
    const tok = sessionStorage.getItem(KEY);
    if (tok) headers.Authorization = 'Bearer ' + tok;
    const r = await fetch(path, { headers, cache: 'no-store' });
    if (r.status === 401) { const e = new Error('unauthorized'); e.auth = true; throw e; }
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r.json();
  }

  const COLORS = ['#4fb3ff', '#ffb347', '#ff6b6b', '#7bd88f', '#c792ea', '#f4d35e'];

  // drawChart plots series [{name, values}] against times on a canvas.
  function drawChart(id, times, series, opts) {
    opts = opts || {};
    const c = $(id);
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== w * dpr) { c.width = w * dpr; c.height = h * dpr; }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const padL = 46, padR = 8, padT = 18, padB = 18;
    let ymax = opts.max || 0;
    for (const s of series) for (const v of s.values) if (isFinite(v) && v > ymax) ymax = v;
    if (!opts.max) ymax = ymax > 0 ? ymax * 1.1 : 1;
    g.strokeStyle = '#263040'; g.fillStyle = '#8a98a6'; g.font = '11px sans-serif'; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = padT + (h - padT - padB) * i / 4;
      g.beginPath(); g.moveTo(padL, y); g.lineTo(w - padR, y); g.stroke();
      g.fillText(fmt(ymax * (1 - i / 4)), 2, y + 4);
    }
    const n = times.length;
    if (n > 0) {
      g.fillText(new Date(times[0]).toLocaleTimeString(), padL, h - 4);
      const last = new Date(times[n - 1]).toLocaleTimeString();
      g.fillText(last, w - padR - g.measureText(last).width, h - 4);
    }
    const x = (i) => padL + (n <= 1 ? (w - padL - padR) : (w - padL - padR) * i / (n - 1));
    const y = (v) => padT + (h - padT - padB) * (1 - Math.min(v, ymax) / ymax);
    let lx = padL;
    series.forEach((s, k) => {
      const col = COLORS[k % COLORS.length];
      g.strokeStyle = col; g.lineWidth = 1.6; g.setLineDash(s.dash || []); g.beginPath();
      let started = false;
      s.values.forEach((v, i) => {
        if (!isFinite(v)) { started = false; return; }
        if (!started) { g.moveTo(x(i), y(v)); started = true; } else g.lineTo(x(i), y(v));
      });
      if (n === 1 && isFinite(s.values[0])) { g.fillStyle = col; g.fillRect(x(0) - 2, y(s.values[0]) - 2, 4, 4); }
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = col; g.fillText(s.name, lx, 12); lx += g.measureText(s.name).width + 14;
    });
    c.dataset.points = String(n);
    state.charts[id] = n;
  }

  function fmt(v) {
    if (!isFinite(v)) return '–';
    if (v >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  const pct = (v) => (v * 100).toFixed(1) + '%';
  function bytes(v) { return v >= 1 << 30 ? (v / (1 << 30)).toFixed(2) + ' GiB' : (v / (1 << 20)).toFixed(1) + ' MiB'; }
  function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }

  function renderTimeline(tl) {
    const s = tl.samples || [];
    const t = s.map((p) => p.time);
    drawChart('ch-tps', t, [{ name: 'queries/s', values: s.map((p) => p.qps) }, { name: 'transactions/s', values: s.map((p) => p.tps), dash: [5, 4] }, { name: 'errors/s', values: s.map((p) => p.errors_per_s) }]);
    drawChart('ch-lat', t, [{ name: 'p50', values: s.map((p) => p.p50_ms) }, { name: 'p95', values: s.map((p) => p.p95_ms) }, { name: 'p99', values: s.map((p) => p.p99_ms) }]);
    drawChart('ch-pool', t, [{ name: 'servers active', values: s.map((p) => p.servers_active) }, { name: 'idle', values: s.map((p) => p.servers_idle) }, { name: 'idle in tx', values: s.map((p) => p.servers_idle_in_tx) }, { name: 'clients waiting', values: s.map((p) => p.clients_waiting) }, { name: 'pool size', values: s.map((p) => p.pool_size) }]);
    drawChart('ch-cache', t, [{ name: 'hit ratio', values: s.map((p) => p.cache_lookups > 0 ? p.cache_hit_ratio * 100 : NaN) }], { max: 100 });
    const last = s[s.length - 1];
    if (last) {
      $('c-qps').textContent = fmt(last.qps);
      $('c-tps').textContent = fmt(last.tps);
      $('c-p95').textContent = fmt(last.p95_ms) + ' ms';
      $('c-hit').textContent = last.cache_lookups > 0 ? pct(last.cache_hit_ratio) : '–';
      $('c-clients').textContent = last.clients + ' / ' + last.clients_waiting;
      $('c-servers').textContent = last.servers_active + ' / ' + last.pool_size;
    }
  }

  function renderSystem(h) {
    const s = (h.samples || []).filter((p) => p.interval_s > 0);
    const t = s.map((p) => p.time);
    drawChart('ch-cpu', t, [{ name: 'total', values: s.map((p) => p.cpu.total * 100) }, { name: 'sluice', values: s.map((p) => p.cpu.proxy * 100) }, { name: 'postgres', values: s.map((p) => p.postgres.cpu * 100) }, { name: 'iowait', values: s.map((p) => p.cpu.iowait * 100) }], { max: 100 });
    drawChart('ch-mem', t, [{ name: 'used', values: s.map((p) => p.memory.total ? (1 - p.memory.available_ratio) * 100 : NaN) }, { name: 'swap used', values: s.map((p) => p.memory.swap_total ? p.memory.swap_used / p.memory.swap_total * 100 : 0) }], { max: 100 });
    const last = s[s.length - 1];
    if (last) {
      $('c-cpu').textContent = pct(last.cpu.total);
      $('c-rss').textContent = bytes(last.process.rss);
    }
  }

  function renderFindings(b) {
    const ol = $('findings');
    ol.replaceChildren();
    const fs = b.findings || [];
    $('findings-count').textContent = '(' + fs.length + ')';
    if (fs.length === 0) { ol.append(el('li', 'empty', b.enabled ? 'No findings: nothing looks wrong right now.' : 'Monitoring is disabled (monitor.enabled: false).')); return; }
    for (const f of fs) {
      const li = el('li');
      const head = el('div');
      head.append(el('span', 'sev ' + f.severity, f.severity), el('strong', '', f.title));
      li.append(head, el('div', 'ev', f.evidence.summary + ' — ' + f.evidence.window), el('div', 'rec', '→ ' + f.recommendation));
      li.dataset.id = f.id;
      ol.append(li);
    }
  }

  function renderQueries(q) {
    const tb = $('queries').tBodies[0];
    tb.replaceChildren();
    if (!q.queries.length) { const tr = el('tr'); const td = el('td', 'empty', 'No queries recorded yet.'); td.colSpan = 12; tr.append(td); tb.append(tr); return; }
    for (const r of q.queries) {
      const tr = el('tr');
      tr.append(el('td', 'q', r.query), el('td', '', r.database), el('td', '', String(r.calls)), el('td', '', fmt(r.total_time_ms)),
        el('td', '', fmt(r.mean_time_ms)), el('td', '', fmt(r.p50_ms)), el('td', '', fmt(r.p95_ms)), el('td', '', fmt(r.p99_ms)),
        el('td', '', String(r.rows)), el('td', '', String(r.errors)), el('td', '', r.cache_lookups ? pct(r.cache_hit_ratio) : '–'),
        el('td', '', (r.rules || []).join(', ')));
      tb.append(tr);
    }
  }

  function renderPools(st) {
    const tb = $('pools').tBodies[0];
    tb.replaceChildren();
    for (const p of st.pools || []) {
      const tr = el('tr');
      tr.append(el('td', '', p.database), el('td', '', p.user), el('td', '', p.mode), el('td', '', String(p.size)),
        el('td', '', String(p.clients_active)), el('td', '', String(p.clients_waiting)), el('td', '', String(p.servers_active)),
        el('td', '', String(p.servers_idle)), el('td', '', String(p.servers_idle_in_tx)), el('td', '', fmt(p.max_wait_ns / 1e6) + ' ms'));
      tb.append(tr);
    }
  }

  // History is fetched once, then only the samples newer than the last.
  const hist = { tl: [], sys: [] };
  async function fetchHistory(path, key) {
    const have = hist[key];
    const since = have.length ? '?since=' + encodeURIComponent(have[have.length - 1].time) : '';
    const r = await api(path + since);
    hist[key] = have.concat(r.samples || []).slice(-Math.max(1, r.capacity || 1));
    return { interval_s: r.interval_s, samples: hist[key] };
  }

  let interval = 5000;
  async function refresh() {
    try {
      const [tl, sys, b, q] = await Promise.all([
        fetchHistory('/api/v1/timeline', 'tl'), fetchHistory('/api/v1/system/history', 'sys'), api('/api/v1/bottlenecks'),
        api('/api/v1/queries?limit=20&sort=' + encodeURIComponent($('sort').value)),
      ]);
      renderTimeline(tl); renderSystem(sys); renderFindings(b); renderQueries(q);
      try { renderPools(await api('/api/v1/stats')); } catch (e) { if (e.auth) throw e; }
      interval = Math.max(1000, Math.min(5000, (tl.interval_s || 5) * 1000));
      state.lastUpdate = new Date();
      $('status').textContent = 'updated ' + state.lastUpdate.toLocaleTimeString();
      $('status').classList.remove('err');
      $('tokenform').classList.add('hidden');
    } catch (e) {
      state.errors++;
      $('status').textContent = e.auth ? 'admin token required' : 'error: ' + e.message;
      $('status').classList.add('err');
      if (e.auth) $('tokenform').classList.remove('hidden');
    }
    setTimeout(refresh, interval);
  }

  $('tokenform').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $('token').value);
    $('token').value = '';
  });
  $('sort').addEventListener('change', () => { api('/api/v1/queries?limit=20&sort=' + encodeURIComponent($('sort').value)).then(renderQueries, () => {}); });
  refresh();
})();
