/*
 * geoplan monitoring dashboard (/dashboard, 监测看板).
 *
 * The page is public and empty. This script asks for a staff (or higher) token, keeps it in sessionStorage only
 * (it ends with the tab), and fetches with `Authorization: Bearer …`:
 *   GET  /api/dashboard[?quarter=2026Q2]   every indicator with its target and state, the warnings, the towns,
 *                                          the snapshot history and the charts (drawn on the server)
 *   POST /api/snapshots {quarter}          record a snapshot (then the dashboard is fetched again)
 *   GET  /api/report?format=&quarter=      the quarterly report, saved from a blob
 * The quarter shown lives in the page's query string (?quarter=2020Q2, or NOW for today), so a view is a link;
 * the list offers the plan's quarters with data (the API's `quarters`) and today.
 * It needs geoplan-session.js (the token form, the API wrapper, downloads, DOM helpers).
 *
 * SECURITY: every string from the server reaches the DOM as text (textContent), never as markup: no innerHTML,
 * insertAdjacentHTML or HTML built from strings in this file (a test checks). The charts arrive as a JSON tree of
 * SVG elements; `svgNode` builds it with createElementNS and setAttribute from the same fixed lists of elements
 * and attributes the server allows (geoplan/reporting/svg.py), dropping anything else.
 */
(function () {
  'use strict';

  var S = window.GeoplanSession;
  var byId = S.byId, el = S.el, clear = S.clear, setStatus = S.setStatus;
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var SVG_ELEMENTS = ['svg', 'g', 'rect', 'line', 'polyline', 'polygon', 'path', 'circle', 'text', 'title', 'desc'];
  var SVG_ATTRIBUTES = [
    'viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'd', 'points', 'fill',
    'fill-opacity', 'stroke', 'stroke-width', 'stroke-dasharray', 'stroke-linejoin', 'opacity', 'font-size',
    'font-weight', 'text-anchor', 'dominant-baseline', 'transform', 'class', 'role', 'aria-label',
    'preserveAspectRatio',
  ];
  var DATA_ATTRIBUTE = /^data-[a-z0-9-]{1,40}$/;
  var NOW = 'NOW';  // the quarter list's "today" (the API's quarter=now)
  var STATE_CLASS = { met: 'gp-met', missed: 'gp-missed', partial: 'gp-partial' };
  var SCOPES = {
    district: '全区', town: '镇街', rule: '规则', status: '状态', task_area: '任务领域',
    task_area_status: '任务领域｜状态', town_status: '镇街｜状态',
  };

  function cell(tag, text, className) { return el(tag, className || null, text); }

  // ---------------------------------------------------------------- SVG from the server's JSON tree
  function svgNode(tree) {
    if (!tree || SVG_ELEMENTS.indexOf(tree.tag) < 0) return null;
    var node = document.createElementNS(SVG_NS, tree.tag);
    var attrs = tree.attrs || {};
    Object.keys(attrs).forEach(function (name) {
      if (SVG_ATTRIBUTES.indexOf(name) >= 0 || DATA_ATTRIBUTE.test(name)) node.setAttribute(name, String(attrs[name]));
    });
    if (typeof tree.text === 'string') node.textContent = tree.text;
    (tree.children || []).forEach(function (child) {
      var built = svgNode(child);
      if (built) node.appendChild(built);
    });
    return node;
  }

  function figure(chart, className) {
    var box = el('figure', className);
    box.setAttribute('data-chart', chart.id);
    var caption = el('figcaption', null, chart.title + (chart.unit && className === 'gp-trend' ? '（' + chart.unit + '）' : ''));
    if (chart.note && className !== 'gp-trend') caption.appendChild(el('span', 'gp-hint gp-chart-note', chart.note));
    box.appendChild(caption);
    var drawing = svgNode(chart.svg);
    if (drawing) box.appendChild(drawing);
    return box;
  }

  // ---------------------------------------------------------------- the sections
  function showMeta(data) {
    var when = data.current ? '当前（' + data.as_of_local + '，北京时间）' : data.quarter + ' 季末（' + data.as_of_local + '，北京时间）';
    var basis = data.previous_snapshot
      ? '；“较上次快照”对比第 ' + data.previous_snapshot.id + ' 次快照（' + data.previous_snapshot.quarter + '）'
      : '；尚无更早的快照';
    setStatus(byId('gp-dash-status'), '数据截至 ' + when + '，' + data.indicators.length + ' 项指标' + basis + '。');
    var note = byId('gp-synthetic-note');
    note.hidden = data.synthetic_titles.length === 0;
    note.textContent = '示意数据 / synthetic：' + data.synthetic_titles.join('、') + '为合成的演示数据，指标数值非官方统计。';
  }

  function showCharts(data) {
    var box = byId('gp-charts');
    clear(box);
    data.charts.forEach(function (chart) { box.appendChild(figure(chart, 'gp-chart-figure')); });
  }

  function linkList(links) {
    var span = el('span', 'gp-dash-maplinks');
    links.forEach(function (link) {
      var a = el('a', null, link.title);
      a.href = link.href; // server-made, same-origin paths
      span.appendChild(a);
    });
    return span;
  }

  function rowsTable(indicator) {
    var table = el('table', 'gp-table gp-dash-rows');
    var head = el('tr');
    ['范围', '分项', '数值', '目标', '状态', '较上次快照', '说明'].forEach(function (t) { head.appendChild(cell('th', t)); });
    table.appendChild(el('thead')).appendChild(head);
    var body = table.appendChild(el('tbody'));
    indicator.rows.forEach(function (row) {
      var tr = el('tr');
      tr.setAttribute('data-scope', row.scope);
      tr.setAttribute('data-key', row.scope_key);
      tr.appendChild(cell('td', SCOPES[row.scope] || row.scope));
      tr.appendChild(cell('td', row.scope_key || '全区'));
      tr.appendChild(cell('td', row.value_text, 'gp-num'));
      tr.appendChild(cell('td', row.target_text));
      var met = row.target_met === true ? 'met' : (row.target_met === false ? 'missed' : '');
      tr.appendChild(cell('td', row.met_label, STATE_CLASS[met] || ''));
      tr.appendChild(cell('td', row.change_text, 'gp-num'));
      tr.appendChild(cell('td', row.note));
      body.appendChild(tr);
    });
    return table;
  }

  function showIndicators(data) {
    var body = byId('gp-indicators').querySelector('tbody');
    clear(body);
    data.indicators.forEach(function (indicator) {
      if (indicator.group) return; // a group (公共服务生活圈) has its own table below
      var tr = el('tr', 'gp-ind');
      tr.setAttribute('data-indicator', indicator.id);
      var name = el('td', 'gp-ind-name');
      name.appendChild(el('span', 'gp-ind-title', indicator.title_zh));
      name.appendChild(el('span', 'gp-ind-id', indicator.id));
      name.title = indicator.description;
      var toggle = el('button', 'gp-button gp-small', '分项 ' + indicator.rows.length);
      toggle.type = 'button';
      toggle.setAttribute('aria-expanded', 'false');
      name.appendChild(toggle);
      tr.appendChild(name);
      tr.appendChild(cell('td', indicator.value_text, 'gp-num gp-ind-value'));
      var target = cell('td', indicator.target_text, 'gp-ind-target');
      if (indicator.targets_text.length > 1) target.title = '全部目标：' + indicator.targets_text.join('；');
      tr.appendChild(target);
      tr.appendChild(cell('td', indicator.state_label, 'gp-ind-state ' + (STATE_CLASS[indicator.state] || '')));
      tr.appendChild(cell('td', indicator.change_text, 'gp-num gp-ind-change'));
      tr.appendChild(cell('td', String(indicator.warnings), 'gp-num gp-ind-warnings'));
      var maps = el('td');
      maps.appendChild(linkList(indicator.links));
      tr.appendChild(maps);
      body.appendChild(tr);

      var detail = el('tr', 'gp-ind-detail');
      detail.hidden = true;
      var holder = el('td');
      holder.colSpan = 7;
      holder.appendChild(rowsTable(indicator));
      detail.appendChild(holder);
      body.appendChild(detail);
      toggle.addEventListener('click', function () {
        detail.hidden = !detail.hidden;
        toggle.setAttribute('aria-expanded', String(!detail.hidden));
      });
    });
  }

  // 公共服务生活圈: one row per service (and per circle's completeness), 全区 and each town, the trend over
  // the snapshots as text, and the group's two trend charts (drawn on the server).
  function showLifeCircles(data) {
    var group = data.life_circles;
    var section = byId('gp-life-circles-section');
    section.hidden = group.rows.length === 0;
    var table = byId('gp-life-circles');
    var head = table.querySelector('thead tr');
    var body = table.querySelector('tbody');
    clear(head);
    clear(body);
    head.appendChild(cell('th', '指标'));
    head.appendChild(cell('th', '目标'));
    group.columns.forEach(function (name) { head.appendChild(cell('th', name + '（%）', 'gp-num')); });
    head.appendChild(cell('th', '状态'));
    head.appendChild(cell('th', '较上次快照', 'gp-num'));
    head.appendChild(cell('th', '趋势（全区，历次快照）'));
    group.rows.forEach(function (row) {
      var tr = el('tr');
      tr.setAttribute('data-indicator', row.id);
      var name = cell('td', row.title_zh, 'gp-ind-name');
      name.title = row.description;
      tr.appendChild(name);
      tr.appendChild(cell('td', row.target_text));
      row.cells.forEach(function (c, i) {
        var state = c.met === true ? 'gp-met' : (c.met === false ? 'gp-missed' : '');
        var td = cell('td', c.text, 'gp-num ' + state);
        td.setAttribute('data-key', i === 0 ? '' : group.columns[i]);
        tr.appendChild(td);
      });
      tr.appendChild(cell('td', row.state_label, STATE_CLASS[row.state] || ''));
      tr.appendChild(cell('td', row.change_text, 'gp-num'));
      tr.appendChild(cell('td', row.trend.length ? row.trend.join(' → ') : '尚无快照', 'gp-lc-trend'));
      body.appendChild(tr);
    });
    var notes = byId('gp-life-circles-notes');
    notes.textContent = group.notes.join('');
    var box = byId('gp-life-circles-trends');
    clear(box);
    group.charts.forEach(function (chart) { box.appendChild(figure(chart, 'gp-trend')); });
  }

  function showWarnings(data) {
    var body = byId('gp-warnings').querySelector('tbody');
    clear(body);
    var of = data.warnings.snapshot;
    byId('gp-warnings-of').textContent = of
      ? '（第 ' + of.id + ' 次快照 ' + of.quarter + (data.warnings.previous_snapshot_id
        ? '，对比第 ' + data.warnings.previous_snapshot_id + ' 次' : '') + '：' + data.warnings.items.length + ' 条）'
      : '（尚无快照：记录快照后显示）';
    data.warnings.items.forEach(function (w) {
      var tr = el('tr', w.warning === 'target_missed' ? 'gp-warning-missed' : 'gp-warning-direction');
      tr.setAttribute('data-indicator', w.indicator);
      tr.title = w.message;
      tr.appendChild(cell('td', w.kind));
      tr.appendChild(cell('td', w.title_zh));
      tr.appendChild(cell('td', w.scope_key || '全区'));
      tr.appendChild(cell('td', w.value_text, 'gp-num'));
      tr.appendChild(cell('td', w.previous_text, 'gp-num'));
      tr.appendChild(cell('td', w.target_text));
      body.appendChild(tr);
    });
  }

  function showTowns(data) {
    var table = byId('gp-towns');
    var head = table.querySelector('thead tr');
    var body = table.querySelector('tbody');
    clear(head);
    clear(body);
    head.appendChild(cell('th', '镇街'));
    data.towns.indicators.forEach(function (d) {
      var th = cell('th', d.title_zh + '（' + d.unit + '）', 'gp-num');
      th.setAttribute('data-indicator', d.id);
      head.appendChild(th);
    });
    data.towns.rows.forEach(function (row) {
      var tr = el('tr');
      tr.setAttribute('data-town', row.town);
      tr.appendChild(cell('th', row.town));
      row.cells.forEach(function (c) {
        var state = c.met === true ? 'gp-met' : (c.met === false ? 'gp-missed' : '');
        var td = cell('td', c.text, 'gp-num ' + state);
        td.setAttribute('data-indicator', c.indicator);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function showHistory(data) {
    var box = byId('gp-trends');
    clear(box);
    var shots = data.snapshots;
    byId('gp-trends-note').textContent = shots.length
      ? '（' + shots.length + ' 次快照，最早 ' + shots[0].label + '，最新 ' + shots[shots.length - 1].label + '）'
      : '（尚无快照：点“记录快照”或运行 geoplan snapshot）';
    if (shots.length) {
      data.trends.forEach(function (chart) {
        // the life-circle group's trends are drawn in its own section
        if (chart.id.indexOf('trend-life-circle') !== 0) box.appendChild(figure(chart, 'gp-trend'));
      });
    }
    var table = byId('gp-history');
    var head = table.querySelector('thead tr');
    var body = table.querySelector('tbody');
    clear(head);
    clear(body);
    table.hidden = shots.length === 0;
    head.appendChild(cell('th', '指标'));
    head.appendChild(cell('th', '范围'));
    shots.forEach(function (s) {
      var th = cell('th', s.label, 'gp-num');
      th.setAttribute('data-snapshot', String(s.id));
      th.title = '截至 ' + S.beijingTime(s.as_of) + '，' + s.actor + ' 记录于 ' + S.beijingTime(s.taken_at) + '（北京时间）';
      head.appendChild(th);
    });
    data.history.rows.forEach(function (row) {
      var tr = el('tr');
      tr.setAttribute('data-indicator', row.indicator);
      tr.setAttribute('data-key', row.scope_key);
      tr.appendChild(cell('td', row.title_zh));
      tr.appendChild(cell('td', row.scope_key || '全区'));
      row.texts.forEach(function (text, i) {
        var td = cell('td', text, 'gp-num');
        td.setAttribute('data-snapshot', String(data.history.snapshots[i]));
        if (row.values[i] !== null) td.setAttribute('data-value', String(row.values[i]));
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- the page
  function start() {
    var root = byId('gp-dash');
    var status = byId('gp-dash-status');
    var controls = byId('gp-dash-controls');
    var quarterInput = byId('gp-quarter');
    var api = null;
    var loads = 0;
    var shown = null;   // the quarter of what the page shows ('' for now); null before the first answer
    var notice = byId('gp-dash-error');

    // data-dashboard (with data-ready, as on the other pages): 'login', 'loading', 'snapshot', 'ready' or 'error'.
    // No separate check of the token: the first load is the check, and it is long, so it shows in the page.
    var session = S.tokenPage({
      page: 'dashboard', forbidden: '本页需要工作人员（staff）或更高角色。', status: status,
      open: function (accepted) { api = accepted; return load(); },
      onError: refused,
    });
    var failed = session.failed(status);

    // A quarter the data cannot answer (before the data begins, not begun yet, mistyped): the server's reason in
    // the page (Chinese: geoplan-session.js), and the page keeps what it showed; with nothing shown yet it shows
    // the current figures instead of a blank page.
    function refused(error) {
      session.state('error');
      var asked = quarter();
      notice.textContent = '无法显示' + (asked ? ' ' + asked + ' ' : '') + '的数据：' + error.message;
      notice.hidden = false;
      if (shown === null && asked) {
        quarterInput.value = '';
        window.history.replaceState(null, '', window.location.pathname);
        notice.textContent += ' 下面显示默认时点的数据。';
        load().catch(failed);
      } else if (shown !== null) {
        notice.textContent += ' 下面仍是' + (shown ? ' ' + shown + ' 季末' : '当前') + '的数据。';
      }
    }

    // The quarters offered are the plan's quarters with data (the server's list) and today ('NOW'); the one
    // shown is selected (a linked quarter outside the list, which the server answered all the same, is added).
    function showQuarters(data) {
      var asked = quarter();
      clear(quarterInput);
      var offered = data.quarters.slice();
      if (asked && asked !== NOW && offered.indexOf(asked) < 0) offered.push(asked);
      offered.forEach(function (q) {
        var option = el('option', null, q + ' 季末');
        option.value = q;
        quarterInput.appendChild(option);
      });
      var today = el('option', null, '当前（今天）');
      today.value = NOW;
      quarterInput.appendChild(today);
      quarterInput.value = data.current ? NOW : data.quarter;
      root.setAttribute('data-quarter', data.current ? '' : data.quarter);
    }

    function quarter() { return (quarterInput.value || '').trim().toUpperCase(); }
    function query() { return quarter() ? '?quarter=' + encodeURIComponent(quarter() === NOW ? 'now' : quarter()) : ''; }
    function dated() { return quarter() && quarter() !== NOW ? quarter() : ''; }  // for snapshots and reports

    async function load() {
      var mine = ++loads;
      session.state('loading');
      setStatus(status, '正在计算指标…（首次约需十余秒）');
      var data = await api.json(root.getAttribute('data-api') + query());
      if (mine !== loads) return; // a newer load has started
      showMeta(data);
      showCharts(data);
      showIndicators(data);
      showLifeCircles(data);
      showWarnings(data);
      showTowns(data);
      showHistory(data);
      showQuarters(data);
      shown = data.current ? '' : data.quarter;
      session.state('ready');
    }

    controls.addEventListener('submit', function (event) {
      event.preventDefault();
      var params = new URLSearchParams();
      if (quarter()) params.set('quarter', quarter());
      var text = params.toString();
      window.history.replaceState(null, '', window.location.pathname + (text ? '?' + text : ''));
      notice.hidden = true;
      load().catch(failed);
    });

    var snapshotButton = byId('gp-snapshot');
    snapshotButton.addEventListener('click', function () {
      snapshotButton.disabled = true;
      session.state('snapshot');
      setStatus(status, '正在记录快照…');
      var body = dated() ? JSON.stringify({ quarter: dated() }) : '{}';
      api.json(root.getAttribute('data-snapshots'), {
        method: 'POST', body: body, headers: { 'Content-Type': 'application/json' },
      })
        .then(function (made) {
          document.body.setAttribute('data-last-snapshot', String(made.snapshot.id));
          return load();
        })
        .catch(failed)
        .finally(function () { snapshotButton.disabled = false; });
    });

    session.downloads('data-report', status, function (format) {
      var params = new URLSearchParams({ format: format });
      if (dated()) params.set('quarter', dated());
      return {
        url: root.getAttribute('data-report') + '?' + params.toString(),
        filename: 'geoplan-report-' + (dated() || 'current') + '.' + format,
        busy: '正在生成 ' + format.toUpperCase() + ' 季度报告…',
        done: format.toUpperCase() + ' 季度报告已下载。',
      };
    });

    var params = new URLSearchParams(window.location.search);
    var linked = (params.get('quarter') || '').trim().toUpperCase();
    if (linked) {  // a linked quarter is asked for as it is; the list replaces this option once data comes
      var option = el('option', null, linked);
      option.value = linked;
      quarterInput.appendChild(option);
      quarterInput.value = linked;
    }
    session.resume();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
