/*
 * geoplan audit viewer (/audit, 全过程留痕): who changed what, when, with each change's before/after by field.
 *
 * The page is public and empty. This script asks for a staff (or higher) token, keeps it in sessionStorage only
 * (it ends with the tab), and fetches with `Authorization: Bearer …`:
 *   GET /api/audit/layers   the layers to filter by, with their field titles (only what the role may read)
 *   GET /api/audit?action=&layer=&actor=&id=&since=&until=&limit=&offset=   the entries, newest first, with
 *                           `changes`; times are Beijing time with their offset, and the day filters are Beijing days
 * The filters live in the page's query string (?layer=projects&id=GM-2024-001), so a filtered view is a link.
 * It needs geoplan-session.js (the token form, the API wrapper, DOM helpers).
 *
 * SECURITY: every string from the server reaches the DOM as text (textContent, Option), never as markup: no
 * innerHTML, insertAdjacentHTML or HTML built from strings in this file (a test checks).
 */
(function () {
  'use strict';

  var S = window.GeoplanSession;
  var byId = S.byId, el = S.el, setStatus = S.setStatus;
  var PAGE_SIZE = 50;
  var FILTERS = ['action', 'layer', 'actor', 'id', 'since', 'until'];
  // The server sends action_title too; these cover an older server and name the kinds in the filter.
  var ACTIONS = {
    'write:replace': '整层写入', 'write:append': '新增', 'update': '修改', 'delete': '删除',
    'write:raster': '栅格写入', 'progress:record': '进度填报', 'progress:withdraw': '进度记录撤回',
    'progress:load': '进度记录导入', 'mark:record': '图斑标记', 'snapshot:record': '指标快照',
    'token:create': '创建令牌', 'token:revoke': '撤销令牌',
  };
  var KINDS = { added: '新增', removed: '删除', changed: '修改' };
  var ROLES = { staff: '工作人员（staff）', planner: '规划（planner）', admin: '管理员（admin）' };

  // A calendar day in Beijing time (the time every page shows), whatever this browser's own zone is.
  function dayBound(day, end) {
    return day + (end ? 'T23:59:59' : 'T00:00:00') + '+08:00';
  }

  var beijingText = S.beijingTime;  // 2026-12-07 07:30:00, Beijing time

  function shownValue(value) {
    if (value === null || value === undefined || value === '') return '—';
    if (typeof value === 'boolean') return value ? '是' : '否';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  function start() {
    var form = byId('gp-audit-filters');
    var count = byId('gp-audit-count');
    var body = byId('gp-audit-table').querySelector('tbody');
    var api = null;
    var titles = {};   // layer -> {title_zh, fields: {name: title}}
    var actors = {};
    var page = 0;
    var loads = 0;

    // data-audit (with data-ready, as on the other pages): 'login', 'loading', 'loaded' or 'error'.
    var session = S.tokenPage({
      page: 'audit', forbidden: '本页需要工作人员（staff）或更高角色。',
      verify: function (accepted) { return accepted.json('/api/audit/layers'); },
      open: begin,
      onError: function () { session.state('error'); },
    });
    var failed = session.failed(count);

    // ---------------------------------------------------------------- filters <-> query string
    function readUrl() {
      var params = new URLSearchParams(window.location.search);
      FILTERS.forEach(function (name) { form.elements[name].value = params.get(name) || ''; });
      page = Math.max(0, parseInt(params.get('page') || '0', 10) || 0);
    }
    function writeUrl() {
      var params = new URLSearchParams();
      FILTERS.forEach(function (name) { if (form.elements[name].value) params.set(name, form.elements[name].value); });
      if (page) params.set('page', String(page));
      var query = params.toString();
      window.history.replaceState(null, '', window.location.pathname + (query ? '?' + query : ''));
    }
    function apiQuery() {
      var params = new URLSearchParams();
      ['action', 'layer', 'actor', 'id'].forEach(function (name) {
        var value = form.elements[name].value.trim();
        if (value) params.set(name, value);
      });
      if (form.elements.since.value) params.set('since', dayBound(form.elements.since.value, false));
      if (form.elements.until.value) params.set('until', dayBound(form.elements.until.value, true));
      params.set('limit', String(PAGE_SIZE + 1)); // one more than shown: is there a next page?
      params.set('offset', String(page * PAGE_SIZE));
      return params.toString();
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      page = 0;
      load();
    });
    byId('gp-f-clear').addEventListener('click', function () {
      FILTERS.forEach(function (name) { form.elements[name].value = ''; });
      page = 0;
      load();
    });
    byId('gp-audit-prev').addEventListener('click', function () { page = Math.max(0, page - 1); load(); });
    byId('gp-audit-next').addEventListener('click', function () { page += 1; load(); });

    // Every entry naming this id, in any layer: a project's edits and its progress records together.
    function filterById(id) {
      FILTERS.forEach(function (name) { form.elements[name].value = ''; });
      form.elements.id.value = id;
      page = 0;
      load();
    }

    // ---------------------------------------------------------------- rendering (text only)
    function idButton(id) {
      var node = S.button(id, 'gp-audit-id', function () { filterById(id); });
      node.title = '只看此编号的记录';
      return node;
    }

    function fieldTitle(layer, field) {
      var info = titles[layer];
      return (info && info.fields && info.fields[field]) || field;
    }

    function diffTable(entry, change) {
      var table = el('table', 'gp-audit-diff');
      var head = el('tr');
      ['字段', '修改前', '修改后'].forEach(function (text) { head.appendChild(el('th', null, text)); });
      table.appendChild(el('thead')).appendChild(head);
      var rows = table.appendChild(el('tbody'));
      change.fields.forEach(function (diff) {
        var tr = el('tr');
        tr.setAttribute('data-field', diff.field);
        tr.appendChild(el('th', null, fieldTitle(entry.layer, diff.field)));
        tr.appendChild(el('td', change.kind === 'added' ? null : 'gp-audit-before',
          change.kind === 'added' ? '—' : shownValue(diff.before)));
        tr.appendChild(el('td', change.kind === 'removed' ? null : 'gp-audit-after',
          change.kind === 'removed' ? '—' : shownValue(diff.after)));
        rows.appendChild(tr);
      });
      if (change.geometry_changed) {
        var tr = el('tr');
        tr.setAttribute('data-field', 'geometry');
        tr.appendChild(el('th', null, '几何形状'));
        tr.appendChild(el('td', 'gp-audit-before', '原形状'));
        tr.appendChild(el('td', 'gp-audit-after', '已变更'));
        rows.appendChild(tr);
      }
      return table;
    }

    // Rule files a write used: name and the start of its SHA-256 (the whole digest in the tooltip).
    function ruleFiles(files) {
      var p = el('p', 'gp-audit-rule-files');
      p.appendChild(el('span', null, '规则文件：'));
      files.forEach(function (file, i) {
        if (i) p.appendChild(document.createTextNode('、'));
        var code = el('code', null, file.name + '（' + String(file.sha256 || '').slice(0, 12) + '）');
        code.title = 'SHA-256 ' + file.sha256;
        p.appendChild(code);
      });
      return p;
    }

    // Marks, snapshots and tokens: one sentence of what was done (they carry no feature diff).
    function sideSummary(entry, detail) {
      var box = el('div', 'gp-audit-side');
      if (entry.action === 'mark:record') {
        box.appendChild(el('p', null, '图斑 '));
        box.firstChild.appendChild(el('code', null, detail.patch_id || ''));
        box.firstChild.appendChild(document.createTextNode('（规则 ' + (detail.rule || '—') + '）标记为“'
          + (detail.status_zh || detail.status || '—') + '”'));
        if (detail.note) box.appendChild(el('p', 'gp-hint', '说明：' + detail.note));
      } else if (entry.action === 'snapshot:record') {
        box.appendChild(el('p', null, '记录 ' + (detail.quarter || '—') + ' 指标快照（编号 '
          + (detail.snapshot_id || '—') + '，' + (detail.rows || 0) + ' 行；数据截至 ' + beijingText(detail.as_of)
          + '，北京时间）'));
      } else if (entry.action === 'token:create' || entry.action === 'token:revoke') {
        box.appendChild(el('p', null, (entry.action === 'token:create' ? '创建' : '撤销') + '令牌“'
          + (detail.name || '—') + '”（角色：' + (ROLES[detail.role] || detail.role || '—') + '，编号 '
          + (detail.token_id || '—') + '）'));
      } else {
        return null;
      }
      if (Array.isArray(detail.rule_files) && detail.rule_files.length) box.appendChild(ruleFiles(detail.rule_files));
      return box;
    }

    function changesCell(entry) {
      var cell = el('td', 'gp-audit-changes');
      var detail = entry.detail || {};
      if (entry.changes && entry.changes.length) {
        entry.changes.forEach(function (change) {
          var box = el('details', 'gp-audit-change');
          box.setAttribute('data-id', change.id);
          box.open = entry.changes.length <= 3;
          var summary = el('summary');
          var shownId = change.id;
          if (entry.layer === 'project_progress' && detail.ids && detail.ids.length) shownId = detail.ids[0];
          summary.appendChild(el('span', null, (KINDS[change.kind] || change.kind) + ' '));
          summary.appendChild(el('code', 'gp-audit-summary-id', shownId));
          var changed = change.fields.length + (change.geometry_changed ? 1 : 0);
          summary.appendChild(el('span', 'gp-hint', change.kind === 'changed' ? '（' + changed + ' 项变更）' : ''));
          box.appendChild(summary);
          // The filter button sits beside the summary, not in it: a button inside <summary> is a control inside
          // a control, which keyboards and screen readers cannot reach apart (WCAG 4.1.2, axe nested-interactive).
          box.appendChild(idButton(shownId));
          if (change.kind !== 'changed' || changed) box.appendChild(diffTable(entry, change));
          else box.appendChild(el('p', 'gp-hint', '属性与形状均未变化'));
          cell.appendChild(box);
        });
        return cell;
      }
      var summary = sideSummary(entry, detail);
      if (summary) {
        cell.appendChild(summary);
        return cell;
      }
      var ids = Array.isArray(detail.ids) ? detail.ids : [];
      if (entry.action === 'progress:load') cell.appendChild(el('p', null, '导入 ' + (detail.records || 0) + ' 条进度记录'));
      else if (entry.feature_count > 0) cell.appendChild(el('p', 'gp-hint', '要素较多，修改前后未逐项留存'));
      if (ids.length) {
        var list = el('p', 'gp-audit-ids');
        ids.slice(0, 20).forEach(function (id, i) {
          if (i) list.appendChild(document.createTextNode('、'));
          list.appendChild(idButton(id));
        });
        if (ids.length > 20 || detail.ids_truncated) list.appendChild(el('span', 'gp-hint', ' …'));
        cell.appendChild(list);
      }
      return cell;
    }

    function render(entries) {
      body.textContent = '';
      entries.forEach(function (entry) {
        var tr = el('tr');
        tr.setAttribute('data-entry', String(entry.id));
        tr.setAttribute('data-layer', entry.layer);
        var whenCell = el('td', 'gp-audit-when', beijingText(entry.at));
        whenCell.title = entry.at + '（北京时间）';
        tr.appendChild(whenCell);
        tr.appendChild(el('td', 'gp-audit-actor', entry.actor));
        tr.appendChild(el('td', 'gp-audit-layer', entry.layer_title || entry.layer));
        tr.appendChild(el('td', 'gp-audit-action', entry.action_title || ACTIONS[entry.action] || entry.action));
        tr.appendChild(el('td', 'gp-num', entry.feature_count));
        tr.appendChild(changesCell(entry));
        body.appendChild(tr);
        if (!actors[entry.actor]) {
          actors[entry.actor] = true;
          var option = document.createElement('option');
          option.value = entry.actor;
          byId('gp-actors').appendChild(option);
        }
      });
    }

    async function load() {
      writeUrl();
      setStatus(count, '正在加载…');
      session.state('loading');
      var entries;
      try {
        entries = await api.json('/api/audit?' + apiQuery());
      } catch (error) {
        failed(error);
        return;
      }
      var more = entries.length > PAGE_SIZE;
      entries = entries.slice(0, PAGE_SIZE);
      render(entries);
      var first = page * PAGE_SIZE;
      setStatus(count, entries.length
        ? '第 ' + (first + 1) + '–' + (first + entries.length) + ' 条' + (more ? '（还有更多）' : '')
        : '没有符合条件的记录。');
      byId('gp-audit-page').textContent = '第 ' + (page + 1) + ' 页';
      byId('gp-audit-prev').disabled = page === 0;
      byId('gp-audit-next').disabled = !more;
      loads += 1;
      document.body.setAttribute('data-audit-loads', String(loads));
      session.state('loaded');
    }

    // The token is accepted: `layers` are the layers to filter by.
    async function begin(accepted, layers) {
      api = accepted;
      var select = form.elements.layer;
      layers.forEach(function (layer) {
        titles[layer.name] = layer;
        select.appendChild(new Option(layer.title_zh + '（' + layer.name + '）', layer.name));
      });
      readUrl();
      await load();
    }

    session.resume();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
