// The dashboard's stylesheet and script, served from /_resident/ (the CSP allows nothing else).

export const DASHBOARD_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --line: #8884; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; }
h1 { margin: 0; font-size: 1.4rem; }
h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
#summary { margin: .2rem 0; }
#live { margin: 0; font-size: .85rem; opacity: .75; }
#live.on::before { content: "● "; color: var(--ok); }
#live.off::before { content: "● "; color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; font-size: .85rem; }
tr.ok td.state { color: var(--ok); font-weight: 600; }
tr.warn td.state { color: var(--warn); font-weight: 600; }
tr.bad td.state { color: var(--bad); font-weight: 600; }
td pre { margin: 0; white-space: pre-wrap; font-size: .85rem; }
td.spark svg { display: block; }
td.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.5; }
.empty { opacity: .7; margin: .2rem 0; }
td.actions { white-space: nowrap; }
button { font: inherit; padding: .1rem .6rem; cursor: pointer; }
#message { position: fixed; bottom: 1rem; right: 1rem; margin: 0; padding: .4rem .8rem; border-radius: 4px; background: #0008; color: #fff; }
#message:empty { display: none; }
`

export const DASHBOARD_JS = `'use strict';
(() => {
  // State-changing admin calls carry this header: a cross-site form or image cannot send it.
  const ADMIN_HEADERS = { 'x-resident-admin': 'dashboard' };
  const live = document.getElementById('live');
  const message = document.getElementById('message');
  const SVG = 'http://www.w3.org/2000/svg';
  const W = 120, H = 24;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function spark(values) {
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('width', String(W));
    svg.setAttribute('height', String(H));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'p50 over the last minute');
    const line = document.createElementNS(SVG, 'polyline');
    const nums = values.map((v) => (typeof v === 'number' && isFinite(v) ? v : 0));
    const max = Math.max(1e-9, ...nums);
    const step = nums.length > 1 ? W / (nums.length - 1) : 0;
    line.setAttribute('points', nums.map((v, i) => (i * step).toFixed(1) + ',' + (H - 1 - (v / max) * (H - 2)).toFixed(1)).join(' '));
    svg.appendChild(line);
    return svg;
  }

  function section(s) {
    const sec = el('section');
    sec.id = 'sec-' + s.id;
    sec.appendChild(el('h2', s.title));
    if (s.rows.length === 0) { sec.appendChild(el('p', s.empty, 'empty')); return sec; }
    const table = el('table');
    const head = el('tr');
    for (const c of s.columns) head.appendChild(el('th', c));
    table.appendChild(el('thead')).appendChild(head);
    const body = table.appendChild(el('tbody'));
    for (const r of s.rows) {
      const tr = el('tr', undefined, r.tone || '');
      tr.dataset.key = r.key;
      r.cells.forEach((c, i) => {
        const last = i === r.cells.length - 1;
        if (last && r.actions) {
          const td = el('td', undefined, 'actions');
          for (const a of r.actions) {
            const b = el('button', a);
            b.type = 'button';
            b.dataset.action = a;
            b.dataset.name = r.key;
            td.appendChild(b);
            td.appendChild(document.createTextNode(' '));
          }
          tr.appendChild(td);
        } else if (typeof c === 'object' && c !== null) {
          tr.appendChild(el('td', undefined, 'spark')).appendChild(spark(c.spark || []));
        } else if (s.pre && last) {
          tr.appendChild(el('td')).appendChild(el('pre', String(c)));
        } else {
          tr.appendChild(el('td', String(c), i === s.stateColumn ? 'state' : ''));
        }
      });
      body.appendChild(tr);
    }
    sec.appendChild(table);
    return sec;
  }

  function render(view) {
    document.getElementById('summary').textContent = view.summary;
    const main = document.getElementById('sections');
    main.replaceChildren(...view.sections.map(section));
  }

  for (const b of document.querySelectorAll('button[data-action]')) b.hidden = false;

  document.addEventListener('click', async (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest('button[data-action]') : null;
    if (!b) return;
    const { action, name } = b.dataset;
    b.disabled = true;
    try {
      const r = await fetch('/_resident/extensions/' + encodeURIComponent(name) + '/' + action, { method: 'POST', headers: ADMIN_HEADERS, credentials: 'same-origin' });
      const body = await r.json().catch(() => ({}));
      message.textContent = r.ok ? name + ': ' + action + ' done' : name + ': ' + action + ' failed: ' + ((body.error && body.error.message) || r.status);
    } catch (e) {
      message.textContent = name + ': ' + action + ' failed: ' + e.message;
    } finally {
      b.disabled = false;
      setTimeout(() => { message.textContent = ''; }, 4000);
    }
  });

  if (typeof EventSource !== 'function') return;
  const events = new EventSource('/_resident/events');
  events.addEventListener('view', (ev) => {
    try { render(JSON.parse(ev.data)); } catch (e) { console.warn('bad dashboard event', e); }
  });
  events.onopen = () => { live.textContent = 'live'; live.className = 'on'; };
  events.onerror = () => { live.textContent = 'disconnected, retrying…'; live.className = 'off'; };
})();
`

/** A favicon of its own, so the browser does not ask the extensions for /favicon.ico. */
export const DASHBOARD_ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1a7f37"/><path d="M4 12V4h5a2.5 2.5 0 0 1 0 5H4m4 0 3 3" stroke="#fff" stroke-width="1.6" fill="none"/></svg>'
