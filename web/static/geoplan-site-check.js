/*
 * geoplan site check (选址审查, the planner page's third tab): draw a site on the map or upload a file, check it
 * against the conflict rules (POST /api/compliance) and open the printable report.
 *
 *   GeoplanMap.siteCheck(map, config, page) -> {drawing}
 *   GeoplanMap.drawingTool(map, pane, onChange) -> the polygon tool, also for the scenario tab
 *
 * config is the planner page's config (api urls, verdicts, severities, syntheticLabel, displayCrs); page gives what
 * the planner's session holds: api() (the accepted token's API wrapper, once signed in) and expire(message).
 * Loaded with geoplan-planner.js, which calls it; it needs geoplan-session.js and GeoplanMap.lib.
 *
 * SECURITY: the verdict, hits and notes reach the DOM as text only (textContent, DOM nodes): no innerHTML,
 * insertAdjacentHTML or HTML built from strings in this file (a test checks). The printable report is HTML by
 * design: it goes to /planner/report (geoplan-report-viewer.js), never into this page.
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ polygon drawing
  // Click to add a vertex, double-click or finish() to close, cancel() or Escape to drop. While drawing, the
  // map's features let clicks through (CSS: .gp-drawing) so every click lands on the map, not on a patch.
  function drawingTool(map, pane, onChange) {
    var vertices = [];
    var active = false;
    var shape = null;
    var container = map.getContainer();

    function redraw() {
      if (shape) map.removeLayer(shape);
      shape = null;
      if (!vertices.length) return;
      var style = { pane: pane, color: '#111', weight: 2, dashArray: active ? '4 4' : null, fillOpacity: 0.15,
        className: 'gp-site', interactive: false };
      shape = active ? L.polyline(vertices, style) : L.polygon(vertices, style);
      shape.addTo(map);
    }

    function add(event) {
      var last = vertices[vertices.length - 1];
      // The two clicks of a double-click must not add the same corner twice.
      if (last && map.latLngToContainerPoint(last).distanceTo(event.containerPoint) < 5) return;
      vertices.push(event.latlng);
      redraw();
      onChange('drawing', vertices.length);
    }

    function onKey(event) { if (event.key === 'Escape') cancel(); }

    function stop() {
      active = false;
      map.off('click', add);
      map.off('dblclick', finish);
      document.removeEventListener('keydown', onKey);
      container.classList.remove('gp-drawing');
      map.doubleClickZoom.enable();
    }

    function start() {
      cancel();
      active = true;
      map.doubleClickZoom.disable();
      container.classList.add('gp-drawing');
      map.on('click', add);
      map.on('dblclick', finish);
      document.addEventListener('keydown', onKey);
      onChange('drawing', 0);
    }

    function finish() {
      if (!active) return;
      if (vertices.length < 3) { onChange('too-few', vertices.length); return; }
      stop();
      redraw();
      onChange('done', vertices.length);
    }

    function cancel() {
      stop();
      vertices = [];
      redraw();
      onChange('empty', 0);
    }

    return {
      start: start,
      finish: finish,
      cancel: cancel,
      vertices: function () { return active ? [] : vertices.slice(); },
      bounds: function () { return shape ? shape.getBounds() : null; },
    };
  }

  // ------------------------------------------------------------------ the site check tab
  function siteCheck(map, config, page) {
    var lib = window.GeoplanMap.lib;
    var S = window.GeoplanSession;
    var el = S.el, byId = S.byId, row = S.row, button = S.button, fmtNumber = S.fmt;
    var AuthError = S.AuthError;
    var lastSite = null;     // the last checked site: {body} (drawn) or {file, crs} (uploaded)

    var drawStatus = byId('gp-draw-status');
    var drawing = drawingTool(map, 'gp-site', function (state, n) {
      var finishing = state === 'drawing' || state === 'too-few';
      byId('gp-draw-finish').disabled = !finishing;
      byId('gp-draw-cancel').disabled = state === 'empty';
      byId('gp-check-drawn').disabled = state !== 'done';
      byId('gp-draw').disabled = finishing;
      lib.setStatus(drawStatus, {
        drawing: '单击地图添加顶点（已 ' + n + ' 个），双击或点“完成”闭合；Esc 取消。',
        'too-few': '地块至少需要 3 个顶点（已 ' + n + ' 个）。',
        done: '地块已绘制（' + n + ' 个顶点），可以审查。',
        empty: '',
      }[state], state === 'too-few');
    });
    byId('gp-draw').addEventListener('click', function () { drawing.start(); });
    byId('gp-draw-finish').addEventListener('click', function () { drawing.finish(); });
    byId('gp-draw-cancel').addEventListener('click', function () {
      drawing.cancel();
      byId('gp-site-result').replaceChildren();
    });

    // The drawn outline as a GeoJSON Feature in CGCS2000 lon/lat (the display shift undone).
    function drawnSite() {
      var ring = drawing.vertices().map(function (ll) { return lib.displayToLonLat(config.displayCrs, ll); });
      ring.push(ring[0]);
      return { type: 'Feature', properties: { name: '地图上绘制的地块' },
        geometry: { type: 'Polygon', coordinates: [ring] } };
    }

    // POST the last site to /api/compliance as JSON (format 'json') or as the printable report ('html').
    function checkRequest(site, format) {
      var url = config.api.compliance + '?format=' + format;
      if (site.body) {
        return page.api().request(url, { method: 'POST', headers: { 'Content-Type': 'application/geo+json' },
          body: JSON.stringify(site.body) });
      }
      var form = new FormData();
      form.append('file', site.file, site.file.name);
      if (site.crs) form.append('crs', site.crs);
      return page.api().request(url, { method: 'POST', body: form });
    }

    async function runCheck(site) {
      var result = byId('gp-site-result');
      result.removeAttribute('data-verdict');
      result.replaceChildren(el('p', 'gp-hint', '正在审查…'));
      try {
        var report = await (await checkRequest(site, 'json')).json();
        lastSite = site;
        result.replaceChildren(verdictView(report));
        result.setAttribute('data-verdict', report.verdict);
      } catch (error) {
        if (error instanceof AuthError) { page.expire(error.message); return; }
        result.replaceChildren(el('p', 'gp-error', '审查未完成：' + error.message));
        result.removeAttribute('data-verdict');
      }
    }

    byId('gp-check-drawn').addEventListener('click', function () { runCheck({ body: drawnSite() }); });
    byId('gp-upload').addEventListener('submit', function (event) {
      event.preventDefault();
      var file = byId('gp-site-file').files[0];
      if (file) runCheck({ file: file, crs: byId('gp-site-crs').value.trim() });
    });

    function verdictView(report) {
      var root = el('div', 'gp-verdict-wrap');
      var box = el('div', 'gp-verdict gp-verdict-' + report.verdict);
      box.appendChild(el('span', 'gp-verdict-label', '审查结论：'));
      box.appendChild(el('strong', 'gp-verdict-word', config.verdicts[report.verdict] || report.verdict));
      root.appendChild(box);
      root.appendChild(S.definitionList('gp-facts', [
        ['地块面积', fmtNumber(report.site_area_m2, 1) + ' m²（椭球 ' + fmtNumber(report.site_area_ellipsoid_m2, 1) + ' m²）'],
        ['审查规则', report.checked_rules.map(function (r) { return r.rule; }).join('、')],
      ]));
      if (report.synthetic_data) root.appendChild(el('p', 'gp-synthetic-note', config.syntheticLabel + '：' +
        '所用管控图层为合成的演示数据，结论不得作为审批依据。'));
      if (report.hits.length) {
        var table = el('table', 'gp-table gp-hits');
        var head = row(['规则', '程度', '重叠 m²', '占比', '涉及要素'].map(function (t) {
          var th = el('th', null, t); th.scope = 'col'; return th;
        }));
        table.appendChild(el('thead')).appendChild(head);
        var body = table.appendChild(el('tbody'));
        report.hits.forEach(function (hit) {
          var rule = document.createElement('td');
          rule.appendChild(el('span', 'gp-hit-title', hit.title_zh));
          rule.appendChild(el('code', null, hit.rule));
          var sev = document.createElement('td');
          sev.appendChild(el('span', 'gp-sev gp-sev-' + hit.severity, config.severities[hit.severity] || hit.severity));
          var tr = row([rule, sev, { text: fmtNumber(hit.overlap_m2, 0), num: true },
            { text: fmtNumber(hit.overlap_pct, 1) + '%', num: true }, hit.feature_ids.join('、')]);
          tr.setAttribute('data-rule', hit.rule);
          body.appendChild(tr);
        });
        root.appendChild(table);
      } else {
        root.appendChild(el('p', null, '未发现与管控规则的冲突。'));
      }
      report.notes.forEach(function (note) { root.appendChild(el('p', 'gp-hint', note)); });
      var open = button('打开打印版报告', 'gp-button gp-primary', function () { openReport(open); });
      open.id = 'gp-open-report';
      root.appendChild(open);
      return root;
    }

    // The printable report needs the token, so it is fetched here; it is shown by /planner/report, which turns
    // it into a blob: URL under the report's own policy (a blob made here would inherit this page's policy and
    // lose the report's styles). The tab is opened within the click, so no popup blocker stops it.
    function openReport(trigger) {
      var site = lastSite;
      if (!site) return;
      var tab = window.open(config.api.reportViewer, '_blank');
      if (!tab) { lib.setStatus(drawStatus, '浏览器阻止了新窗口，请允许本站打开弹出窗口。', true); return; }
      var html = null;
      var viewerReady = false;
      function deliver() {
        if (html === null || !viewerReady) return;
        tab.postMessage({ type: 'geoplan-report', html: html }, window.location.origin);
        window.removeEventListener('message', onMessage);
        trigger.disabled = false;
      }
      function onMessage(event) {
        if (event.origin !== window.location.origin || event.source !== tab) return;
        if (event.data && event.data.type === 'geoplan-report-ready') { viewerReady = true; deliver(); }
      }
      window.addEventListener('message', onMessage);
      trigger.disabled = true;
      checkRequest(site, 'html').then(function (response) { return response.text(); }).then(function (text) {
        html = text;
        deliver();
      }).catch(function (error) {
        window.removeEventListener('message', onMessage);
        trigger.disabled = false;
        tab.close();
        if (error instanceof AuthError) { page.expire(error.message); return; }
        lib.setStatus(drawStatus, '报告生成失败：' + error.message, true);
      });
    }

    return { drawing: drawing };
  }

  // The polygon tool is shared: the scenario tab draws a project's outline with it (geoplan-scenario.js).
  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { siteCheck: siteCheck, drawingTool: drawingTool });
})();
