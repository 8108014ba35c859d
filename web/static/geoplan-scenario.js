/*
 * geoplan scenarios (规划方案, the planner page's fourth tab): pick or create a scenario, draw a new facility
 * (a point) or project (a polygon) into it, see it against today on the map and in tables, adopt or discard it.
 *
 *   GeoplanMap.scenarioPanel(map, config, page) -> {layers}
 *
 * config is the planner page's config (api urls, displayCrs); page gives api() (the accepted token's API
 * wrapper), expire(message), drawingTool (geoplan-site-check.js's polygon tool) and adopted() (the live layers
 * changed: the planner reloads its patches). Loaded with geoplan-planner.js, which calls it.
 *   GET/POST /api/scenarios, GET/DELETE /api/scenarios/{name}, POST /api/scenarios/{name}/features/{layer},
 *   GET /api/scenarios/{name}/layers/{layer}, GET /api/scenarios/{name}/diff, POST /api/scenarios/{name}/adopt
 *
 * SECURITY: names, ids, titles and values reach the DOM as text only (textContent, DOM nodes, Option): no
 * innerHTML, insertAdjacentHTML or HTML built from strings in this file (a test checks).
 */
(function () {
  'use strict';

  var ADDED = '#d7191c';   // conflict patches the scenario adds
  var REMOVED = '#1a9641'; // conflict patches it removes
  var DRAFT = '#6a3d9a';   // the scenario's own new or changed features

  function scenarioPanel(map, config, page) {
    var lib = window.GeoplanMap.lib;
    var S = window.GeoplanSession;
    var el = S.el, byId = S.byId, row = S.row, button = S.button, fmtNumber = S.fmt;
    var AuthError = S.AuthError;
    var base = config.api.scenarios;

    var drawable = [];        // layers a feature can be drawn into, with their required fields
    var current = null;       // the chosen scenario's name
    var point = null;         // the placed point (a Leaflet marker) of a facility
    var placing = false;
    var status = byId('gp-scn-status');

    map.createPane('gp-scenario').style.zIndex = '465';
    var changes = L.featureGroup();   // added and removed conflict patches
    var drafts = L.featureGroup();    // the scenario's new and changed features
    var polygon = page.drawingTool(map, 'gp-scenario', function (state, n) {
      lib.setStatus(byId('gp-scn-draw-status'), {
        drawing: '单击地图添加顶点（已 ' + n + ' 个），双击闭合；Esc 取消。',
        'too-few': '范围至少需要 3 个顶点（已 ' + n + ' 个）。',
        done: '范围已绘制（' + n + ' 个顶点）。',
        empty: '',
      }[state], state === 'too-few');
    });

    // A layer's Chinese title (the drawable layers'; any other layer by its name).
    function layerTitle(name) {
      var found = drawable.filter(function (d) { return d.name === name; })[0];
      return found ? found.title : name;
    }
    function url(name, tail) { return base + '/' + encodeURIComponent(name) + (tail || ''); }
    function failed(node) {
      return function (error) {
        if (error instanceof AuthError) { page.expire(error.message); return; }
        lib.setStatus(node, error.message, true);
      };
    }

    // ---------------------------------------------------------------- scenarios
    async function load(selected) {
      var body = await page.api().json(base);
      drawable = body.drawable || [];
      var select = byId('gp-scn-select');
      select.replaceChildren(new Option('（请选择或新建方案）', ''));
      body.scenarios.forEach(function (s) {
        select.appendChild(new Option(s.name + '（' + s.edit_count + ' 项修改）', s.name));
      });
      fillLayers();
      var wanted = selected !== undefined ? selected : current;
      select.value = body.scenarios.some(function (s) { return s.name === wanted; }) ? wanted : '';
      await choose(select.value || null);
    }

    async function choose(name) {
      current = name;
      clearResult();
      if (!name) { byId('gp-scn-work').hidden = true; return; }
      var detail = await page.api().json(url(name));
      if (current !== name) return; // another scenario was chosen meanwhile
      byId('gp-scn-title').textContent = detail.name;
      byId('gp-scn-meta').textContent = '创建者 ' + detail.author + ' · ' + detail.created_at_shown;
      fillEdits(detail);
      byId('gp-scn-work').hidden = false; // shown once it names the scenario it is about
      await drawDrafts(detail);
      if (detail.edits.length) await compare();
      else lib.setStatus(status, '方案中还没有修改：在地图上绘制新设施或项目。');
    }

    byId('gp-scn-select').addEventListener('change', function (event) {
      choose(event.target.value || null).catch(failed(status));
    });

    byId('gp-scn-create').addEventListener('submit', function (event) {
      event.preventDefault();
      var name = byId('gp-scn-name').value.trim();
      if (!name) return;
      page.api().json(base, { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: name }) }).then(function () {
        byId('gp-scn-name').value = '';
        return load(name);
      }).catch(failed(byId('gp-scn-create-status')));
    });

    function fillEdits(detail) {
      var body = byId('gp-scn-edits').tBodies[0];
      body.replaceChildren();
      detail.edits.forEach(function (edit) {
        var tr = row([layerTitle(edit.layer), edit.feature_id, edit.op_zh]);
        tr.setAttribute('data-id', edit.feature_id);
        body.appendChild(tr);
      });
      if (!detail.edits.length) body.appendChild(row(['无', '', '']));
    }

    // The layers the scenario edits, as it sees them: its new and changed features drawn over today's map.
    async function drawDrafts(detail) {
      drafts.clearLayers();
      var layers = {};
      detail.edits.forEach(function (e) { layers[e.layer] = true; });
      for (var name of Object.keys(layers)) {
        var body = await page.api().json(url(detail.name, '/layers/' + encodeURIComponent(name)),
          { headers: { Accept: 'application/geo+json' } });
        var edited = body.features.filter(function (f) { return f.properties.scenario_op; });
        L.geoJSON({ type: 'FeatureCollection', features: edited }, {
          pane: 'gp-scenario', coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
          pointToLayer: function (feature, latlng) {
            return L.circleMarker(latlng, { pane: 'gp-scenario', radius: 8, color: '#fff', weight: 2,
              fillColor: DRAFT, fillOpacity: 1, className: 'gp-scn-draft' });
          },
          style: function () { return { pane: 'gp-scenario', color: DRAFT, weight: 3, fillOpacity: 0.2, className: 'gp-scn-draft' }; },
          onEachFeature: function (feature, layer) {
            layer.bindTooltip(draftTip(feature));
            layer.on('add', function () {
              var node = layer.getElement && layer.getElement();
              if (node) node.setAttribute('data-id', String(feature.id));
            });
          },
        }).eachLayer(function (layer) { drafts.addLayer(layer); });
      }
      if (!map.hasLayer(drafts)) drafts.addTo(map);
    }

    function draftTip(feature) {
      var node = el('span', 'gp-scn-tip');
      node.appendChild(el('strong', null, '方案' + ({ create: '新增', replace: '修改' }[feature.properties.scenario_op] || '')));
      node.appendChild(document.createTextNode(' ' + (feature.properties.name || '') + '（' + feature.id + '）'));
      return node;
    }

    // ---------------------------------------------------------------- drawing a new feature
    function fillLayers() {
      var select = byId('gp-scn-layer');
      var before = select.value;
      select.replaceChildren();
      drawable.forEach(function (d) {
        var shape = d.geometry && d.geometry.indexOf('Point') >= 0 ? '（点）' : '（面）';
        select.appendChild(new Option(d.title + shape, d.name));
      });
      if (before) select.value = before;
      fillForm();
    }

    function chosenLayer() {
      var name = byId('gp-scn-layer').value;
      return drawable.filter(function (d) { return d.name === name; })[0] || null;
    }
    function isPoint(layer) { return Boolean(layer && layer.geometry && layer.geometry.indexOf('Point') >= 0); }

    // The form asks the layer's required fields: a choice list where the catalogue allows only some values.
    function fillForm() {
      var layer = chosenLayer();
      var box = byId('gp-scn-fields');
      box.replaceChildren();
      resetShape();
      if (!layer) return;
      byId('gp-scn-place').textContent = isPoint(layer) ? '在地图上点选位置' : '在地图上绘制范围';
      layer.fields.forEach(function (field) {
        var id = 'gp-scn-f-' + field.name;
        var label = el('label', null, field.title);
        label.htmlFor = id;
        var input;
        if (field.choices.length) {
          input = document.createElement('select');
          field.choices.forEach(function (c) { input.appendChild(new Option(c.label, String(c.value))); });
        } else {
          input = document.createElement('input');
          input.type = field.type === 'integer' || field.type === 'float' ? 'number' : 'text';
          if (field.type === 'float') input.step = 'any';
          if (field.type === 'date') input.type = 'date';
        }
        input.id = id;
        input.name = field.name;
        input.required = true;
        input.setAttribute('data-type', field.type);
        box.appendChild(label);
        box.appendChild(input);
      });
    }
    byId('gp-scn-layer').addEventListener('change', fillForm);

    function resetShape() {
      if (point) map.removeLayer(point);
      point = null;
      placing = false;
      map.getContainer().classList.remove('gp-drawing');
      polygon.cancel();
      lib.setStatus(byId('gp-scn-draw-status'), '');
    }

    function place(event) {
      if (!placing) return;
      placing = false;
      map.getContainer().classList.remove('gp-drawing');
      if (point) map.removeLayer(point);
      point = L.circleMarker(event.latlng, { pane: 'gp-scenario', radius: 9, color: '#000', weight: 2,
        fillColor: DRAFT, fillOpacity: 0.6, className: 'gp-scn-new' }).addTo(map);
      lib.setStatus(byId('gp-scn-draw-status'), '位置已选定，可填写属性后加入方案。');
    }
    map.on('click', place);

    byId('gp-scn-place').addEventListener('click', function () {
      var layer = chosenLayer();
      if (!layer) return;
      resetShape();
      if (isPoint(layer)) {
        placing = true;
        map.getContainer().classList.add('gp-drawing');
        lib.setStatus(byId('gp-scn-draw-status'), '单击地图选定设施位置。');
      } else {
        polygon.start();
      }
    });

    function geometry(layer) {
      if (isPoint(layer)) {
        if (!point) return null;
        var lonLat = lib.displayToLonLat(config.displayCrs, point.getLatLng());
        return { type: 'Point', coordinates: lonLat };
      }
      var vertices = polygon.vertices();
      if (vertices.length < 3) return null;
      var ring = vertices.map(function (ll) { return lib.displayToLonLat(config.displayCrs, ll); });
      ring.push(ring[0]);
      return { type: 'MultiPolygon', coordinates: [[ring]] };
    }

    function properties(layer) {
      var props = {};
      layer.fields.forEach(function (field) {
        var value = byId('gp-scn-f-' + field.name).value.trim();
        if (value === '') return;
        props[field.name] = field.type === 'integer' ? parseInt(value, 10)
          : field.type === 'float' ? parseFloat(value) : value;
      });
      return props;
    }

    byId('gp-scn-feature').addEventListener('submit', function (event) {
      event.preventDefault();
      var layer = chosenLayer();
      var note = byId('gp-scn-draw-status');
      if (!current || !layer) return;
      var shape = geometry(layer);
      if (!shape) { lib.setStatus(note, isPoint(layer) ? '请先在地图上点选位置。' : '请先在地图上绘制范围。', true); return; }
      var feature = { type: 'Feature', geometry: shape, properties: properties(layer) };
      lib.setStatus(note, '正在加入方案…');
      page.api().json(url(current, '/features/' + encodeURIComponent(layer.name)), {
        method: 'POST', headers: { 'Content-Type': 'application/geo+json' }, body: JSON.stringify(feature),
      }).then(function () {
        resetShape();
        byId('gp-scn-feature').reset();
        lib.setStatus(note, '已加入方案。');
        return load(current);
      }).catch(failed(note));
    });

    // ---------------------------------------------------------------- the comparison
    function clearResult() {
      changes.clearLayers();
      drafts.clearLayers();
      ['gp-scn-patches', 'gp-scn-coverage', 'gp-scn-indicators'].forEach(function (id) {
        byId(id).tBodies[0].replaceChildren();
      });
      byId('gp-scn-result').hidden = true;
      legend.hidden = true; // shown again with the next comparison
      byId('gp-scn-confirm').replaceChildren();
      byId('gp-scn-stale').replaceChildren();
      lib.setStatus(status, '');
    }

    async function compare() {
      var name = current;
      lib.setStatus(status, '正在对比方案与现状（冲突、生活圈、指标，约需半分钟）…');
      var diff = await page.api().json(url(name, '/diff'));
      if (current !== name) return;
      drawChanges(diff.patches.features);
      fillPatches(diff.patches.features);
      fillCoverage(diff.coverage);
      fillIndicators(diff.indicators);
      byId('gp-scn-result').hidden = false;
      lib.setStatus(status, '对比完成：新增冲突图斑 ' + diff.counts.added + ' 个，消除 ' + diff.counts.removed +
        ' 个；生活圈覆盖变化 ' + diff.counts.coverage_changed + ' 项；指标变化 ' + diff.counts.indicators_changed + ' 项。');
      byId('gp-scn-result').setAttribute('data-ready', 'true');
    }
    byId('gp-scn-compare').addEventListener('click', function () { if (current) compare().catch(failed(status)); });

    function drawChanges(features) {
      changes.clearLayers();
      L.geoJSON({ type: 'FeatureCollection', features: features }, {
        pane: 'gp-scenario', coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
        style: function (feature) {
          var added = feature.properties.change === 'added';
          var colour = added ? ADDED : REMOVED;
          return { pane: 'gp-scenario', color: colour, fillColor: colour, weight: 2.5, fillOpacity: 0.45,
            dashArray: added ? null : '6 4', className: 'gp-scn-change gp-scn-' + feature.properties.change };
        },
        onEachFeature: function (feature, layer) {
          var tip = el('span', null, feature.properties.change_zh + '冲突：' + feature.properties.rule_title);
          layer.bindTooltip(tip, { sticky: true });
          layer.on('add', function () {
            var node = layer.getElement && layer.getElement();
            if (node) node.setAttribute('data-id', String(feature.id));
          });
        },
      }).eachLayer(function (layer) { changes.addLayer(layer); });
      if (!map.hasLayer(changes)) changes.addTo(map);
      legend.hidden = false;
    }

    function area(m2) { return m2 >= 10000 ? fmtNumber(m2 / 10000, 2) + ' 公顷' : fmtNumber(m2, 0) + ' m²'; }

    function fillPatches(features) {
      var body = byId('gp-scn-patches').tBodies[0];
      body.replaceChildren();
      features.forEach(function (f) {
        var p = f.properties;
        var change = el('td');
        change.appendChild(lib.swatch(p.change === 'added' ? ADDED : REMOVED));
        change.appendChild(el('span', null, ' ' + p.change_zh));
        var tr = row([change, p.rule_title, p.town || '—', { text: area(p.area_m2), num: true }]);
        tr.setAttribute('data-change', p.change);
        body.appendChild(tr);
      });
      if (!features.length) body.appendChild(row(['无', '', '', '']));
    }

    function signed(value, digits) {
      if (typeof value !== 'number' || !isFinite(value)) return '—';
      return (value > 0 ? '+' : '') + fmtNumber(value, digits);
    }
    function pct(value) { return typeof value === 'number' ? fmtNumber(value, 1) + '%' : '—'; }

    function fillCoverage(rows) {
      var body = byId('gp-scn-coverage').tBodies[0];
      body.replaceChildren();
      rows.forEach(function (r) {
        var tr = row([r.village_name || r.village_code, r.service_title || r.service,
          { text: pct(r.coverage_pct_live) + ' → ' + pct(r.coverage_pct_scenario), num: true },
          { text: signed(r.delta_pp, 1), num: true },
          { text: fmtNumber(r.covered_live, 0) + ' → ' + fmtNumber(r.covered_scenario, 0), num: true }]);
        tr.setAttribute('data-village', String(r.village_code));
        tr.setAttribute('data-service', r.service);
        tr.classList.add(r.delta_pp > 0 ? 'gp-better' : r.delta_pp < 0 ? 'gp-worse' : 'gp-same');
        body.appendChild(tr);
      });
      if (!rows.length) body.appendChild(row(['无变化', '', '', '', '']));
    }

    function met(value) { return value === true ? '达标' : value === false ? '未达标' : '—'; }

    function fillIndicators(rows) {
      var body = byId('gp-scn-indicators').tBodies[0];
      body.replaceChildren();
      rows.forEach(function (r) {
        var scope = r.scope === 'district' ? '全区' : (r.scope_key || r.scope);
        var tr = row([r.indicator_title || r.indicator, scope,
          { text: fmtNumber(r.value_live, 2) + ' → ' + fmtNumber(r.value_scenario, 2) + ' ' + (r.unit || ''), num: true },
          { text: signed(r.delta, 2), num: true }, met(r.target_met_live) + ' → ' + met(r.target_met_scenario)]);
        tr.setAttribute('data-indicator', r.indicator);
        body.appendChild(tr);
      });
      if (!rows.length) body.appendChild(row(['无变化', '', '', '', '']));
    }

    // ---------------------------------------------------------------- the legend of the comparison
    var legend = el('div', 'gp-legend gp-scn-legend');
    legend.setAttribute('role', 'region');
    legend.setAttribute('aria-label', '方案对比图例');
    legend.appendChild(el('h2', 'gp-legend-title', '方案对比（方案 与 现状）'));
    var keys = el('ul', 'gp-legend-items');
    [[ADDED, '方案新增的冲突图斑'], [REMOVED, '方案消除的冲突图斑（虚线）'], [DRAFT, '方案中新增或修改的要素']]
      .forEach(function (item) {
        var line = el('li', null);
        line.appendChild(lib.swatch(item[0]));
        line.appendChild(el('span', null, item[1]));
        keys.appendChild(line);
      });
    legend.appendChild(keys);
    legend.appendChild(el('p', 'gp-legend-note', '底图上其余图斑为现状冲突图斑'));
    legend.hidden = true;
    window.GeoplanMap.addLegend(map, legend, 'bottomleft');

    // ---------------------------------------------------------------- adopt and discard, confirmed in the page
    function confirmThen(question, label, action) {
      var box = byId('gp-scn-confirm');
      var yes = button(label, 'gp-button gp-primary', function () { box.replaceChildren(); action(); });
      yes.id = 'gp-scn-confirm-yes';
      var no = button('取消', 'gp-button', function () { box.replaceChildren(); });
      box.replaceChildren(el('p', 'gp-scn-question', question), yes, no);
    }

    byId('gp-scn-adopt').addEventListener('click', function () {
      if (!current) return;
      confirmThen('确定采纳方案“' + current + '”？方案中的全部修改将一次写入现状图层。', '确认采纳', function () {
        adopt().catch(failed(status));
      });
    });
    byId('gp-scn-discard').addEventListener('click', function () {
      if (!current) return;
      confirmThen('确定放弃方案“' + current + '”？方案及其修改将被删除，现状不变。', '确认放弃', function () {
        var name = current;
        page.api().json(url(name), { method: 'DELETE' }).then(function () {
          return load('');
        }).then(function () {
          lib.setStatus(status, '方案“' + name + '”已放弃，现状未变。');
        }).catch(failed(status));
      });
    });

    // The answer is read here (not through api.json): a refusal of a stale scenario lists its features.
    async function adopt() {
      var name = current;
      var stale = byId('gp-scn-stale');
      stale.replaceChildren();
      lib.setStatus(status, '正在采纳…');
      var response = await fetch(url(name, '/adopt'), {
        method: 'POST', credentials: 'omit', headers: page.api().headers({ Accept: 'application/json' }),
      });
      var body = {};
      try { body = await response.json(); } catch (e) { /* not JSON */ }
      if (response.status === 401 || response.status === 403) { page.expire(body.detail_zh || '令牌无效或角色不足。'); return; }
      if (response.status === 409 && body.features) {
        lib.setStatus(status, '方案未采纳：所依据的现状已变化。', true);
        stale.appendChild(el('p', 'gp-error', body.detail_zh || ''));
        var list = el('ul', 'gp-scn-stale-list');
        body.features.forEach(function (f) {
          var item = el('li', null, layerTitle(f.layer) + ' ' + f.feature_id + '：' + f.reason_zh);
          item.setAttribute('data-id', f.feature_id);
          list.appendChild(item);
        });
        stale.appendChild(list);
        status.scrollIntoView({ block: 'start' });
        return;
      }
      if (!response.ok) { lib.setStatus(status, body.detail_zh || ('采纳失败（HTTP ' + response.status + '）'), true); return; }
      var written = Object.keys(body.written || {}).map(function (k) {
        return layerTitle(k) + ' ' + body.written[k] + ' 个要素';
      });
      await load('');
      lib.setStatus(status, '方案“' + name + '”已采纳，写入现状：' + written.join('、') + '。');
      page.adopted();
    }
    byId('gp-scn-adopt').setAttribute('data-ready', 'true');

    return {
      start: function () { return load().catch(failed(status)); },
      layers: function () { return { changes: changes, drafts: drafts }; },
    };
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { scenarioPanel: scenarioPanel });
})();
