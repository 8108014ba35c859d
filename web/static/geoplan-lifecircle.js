/*
 * geoplan life-circle map (/lifecircle, 社区生活圈): villages coloured by one service's coverage, that service's
 * facilities, the villages × services heat table under the map, and a village card listing what it lacks.
 *
 * The page is public and empty. This script asks for a token (staff or better), keeps it in sessionStorage only,
 * and fetches everything with `Authorization: Bearer …`:
 *   GET /api/lifecircle                        the rules, the rollups per group and circle, the class breaks
 *   GET /api/lifecircle/villages?service=S     the villages with S's coverage and class (the choropleth)
 *   GET /api/lifecircle/facilities?service=S   S's facilities
 *   GET /api/lifecircle/matrix                 the villages × services matrix (the heat table)
 *   GET /api/lifecircle/villages/{code}        one village's card
 *   GET /api/lifecircle/table.{csv,xlsx,gpkg}  the scorecard as a file
 * It needs geoplan-session.js (the token form, the API wrapper, downloads, DOM helpers) and geoplan-map.js
 * (GeoplanMap.lib: GeoJSON helpers, map controls).
 *
 * SECURITY: every string from the server reaches the DOM as text (textContent, Option, DOM nodes for tooltips),
 * never as markup: no innerHTML, insertAdjacentHTML or HTML built from strings in this file (a test checks).
 */
(function () {
  'use strict';

  var S = window.GeoplanSession;
  var byId = S.byId, fmt = S.fmt, row = S.row;
  var FACILITY = '#1f2933';
  var DISTRICT = '全区';

  function people(value) { return fmt(value, 0); }
  function pct(value) { return typeof value === 'number' && isFinite(value) ? fmt(value, 1) + '%' : '—'; }

  var classOf = window.GeoplanMap.lib.classOf, classColor = window.GeoplanMap.lib.classColor;
  // Black or white text, whichever reads better on `hex` (WCAG relative luminance).
  function inkOn(hex) {
    var rgb = [1, 3, 5].map(function (i) {
      var c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
    return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? '#000000' : '#ffffff';
  }

  function lifecircleMap(map, _groups, config) {
    var lib = window.GeoplanMap.lib;
    var el = lib.el;
    var ui = window.GeoplanMapUI;
    ui.describe(map, '生活圈覆盖地图', 'gp-matrix-title');
    map.options.zoomSnap = 0.25;
    ui.keyboardPopups(map);
    var count = byId('gp-count');
    var section = byId('gp-matrix');
    var api = null;
    var summary = null;       // the /api/lifecircle answer
    var classes = null;       // its class breaks (fixed steps: the same for every service)
    var services = [];        // [{service, title_zh, circle, …}] in rule order
    var titles = {};          // service -> title_zh
    var matrix = null;        // the /api/lifecircle/matrix answer
    var current = null;       // the service on the map
    var villages = {};        // code -> {feature, layer}
    var selected = null;
    var groupRank = {};       // group -> its place in the rollups (towns, then 虚拟单位)
    var sort = { key: 'group', direction: 1 };
    var loadSeq = 0, cardSeq = 0;

    map.createPane('gp-villages').style.zIndex = '370';
    var groups = {
      villages: L.featureGroup().addTo(map),
      facilities: L.featureGroup().addTo(map),
    };
    var legendList = el('ul', 'gp-legend-items gp-class-legend');
    var legendTitle = el('h2', 'gp-legend-title', '覆盖率（村/社区）');

    var session = S.tokenPage({
      page: 'lifecircle', forbidden: '本页需要工作人员（staff）或以上角色。', reload: true, also: [section],
      verify: function (accepted) { return accepted.json(config.api.summary); },
      open: start,
    });
    var failed = session.failed;

    async function start(accepted, first) {
      api = accepted;
      summary = first;
      classes = first.classes;
      services = first.services;
      services.forEach(function (s) { titles[s.service] = s.title_zh; });
      first.rollup.forEach(function (x) { if (!(x.group in groupRank)) groupRank[x.group] = Object.keys(groupRank).length; });
      setUp(first);
      var outline = drawDistrict();
      var hash = new URLSearchParams(window.location.hash.replace(/^#/, ''));
      var wanted = hash.get('service');
      var chosen = titles[wanted] ? wanted : services[0].service;
      byId('gp-service').value = chosen;
      session.state('loading');
      try {
        await Promise.all([loadService(chosen), loadMatrix()]);
      } catch (error) { failed(count)(error); }
      await outline;
      window.GeoplanMap.current = {
        map: map,
        village: function (code) { return villages[code] && villages[code].layer; },
        select: function (code) { return selectVillage(code, {}); },
      };
      var village = hash.get('village');
      if (village && villages[village]) await selectVillage(village, { zoom: true });
      session.state('ready');
    }

    // ---------------------------------------------------------------- controls and legend
    function setUp(first) {
      var picker = byId('gp-service');
      services.forEach(function (s) {
        picker.appendChild(new Option(s.title_zh + '（' + s.circle + ' 分钟生活圈）', s.service));
      });
      picker.addEventListener('change', function () {
        session.state('loading');
        loadService(picker.value).then(function () { session.state('ready'); }).catch(failed(count));
      });
      byId('gp-service-form').addEventListener('submit', function (event) { event.preventDefault(); });
      byId('gp-synthetic-note').textContent = first.synthetic_note || '';
      byId('gp-synthetic-note').hidden = !first.synthetic_note;
      var toggle = lib.layerSwitcher(map, 'topleft');
      toggle('村（社区）覆盖率', groups.villages, { layer: 'villages', before: [] });
      toggle('该类设施', groups.facilities, { layer: 'facilities', before: [lib.swatch(FACILITY)] });
      addLegend(first.synthetic);
      fillCompleteness(first.completeness);
      buildHeatHead();
    }

    function addLegend(synthetic) {
      var box = el('div', 'gp-legend gp-coverage-legend');
      box.setAttribute('role', 'region');
      box.setAttribute('aria-label', '图例');
      box.appendChild(legendTitle);
      if (synthetic) box.appendChild(S.syntheticTag(config.syntheticLabel));
      box.appendChild(legendList);
      var symbols = el('ul', 'gp-legend-items gp-symbol-legend');
      var li = el('li', null);
      var mark = lib.swatch('#ffffff');
      mark.classList.add('gp-swatch-facility');
      li.appendChild(mark);
      li.appendChild(el('span', null, '该类服务设施'));
      symbols.appendChild(li);
      box.appendChild(symbols);
      box.appendChild(el('p', 'gp-legend-note', '分级：每 20% 一档，各类服务相同'));
      if (config.basemapNote) box.appendChild(el('p', 'gp-legend-note', config.basemapNote));
      window.GeoplanMap.addLegend(map, box, 'bottomright');
    }

    function fillLegend(body) {
      legendTitle.textContent = body.title_zh + '覆盖率（村/社区）';
      var noData = body.features.filter(function (f) { return f.properties['class'] === null; }).length;
      lib.fillClassLegend(legendList, classes, body.classes.counts, noData, 0);
    }

    function drawDistrict() {
      return lib.districtOutline(map, config, api.headers(), function (bounds) {
        map.fitBounds(bounds, ui.fitOptions(map));
      });
    }

    // ---------------------------------------------------------------- one service on the map
    async function loadService(name) {
      var seq = ++loadSeq;
      lib.setStatus(count, '正在加载…');
      var qs = '?service=' + encodeURIComponent(name);
      var geo = { headers: { Accept: 'application/geo+json' } };
      var answers = await Promise.all([
        api.json(config.api.villages + qs, geo),
        api.json(config.api.facilities + qs, geo),
      ]);
      if (seq !== loadSeq) return;
      current = name;
      document.body.setAttribute('data-service', name);
      history.replaceState(null, '', '#' + hashFor(selected));
      drawVillages(answers[0]);
      drawFacilities(answers[1]);
      fillLegend(answers[0]);
      showRollup(name);
    }

    function hashFor(code) {
      var params = new URLSearchParams();
      if (current) params.set('service', current);
      if (code) params.set('village', code);
      return params.toString();
    }

    function rule(name) { return services.filter(function (s) { return s.service === name; })[0]; }

    function unitText(unit) {
      var text;
      if (unit.reaches.length > 1) {
        text = unit.reaches.map(function (r) { return '≥' + fmt(r.min_ha, 1) + ' 公顷 ' + fmt(r.radius_m, 0) + ' m'; })
          .join('，');
      } else {
        text = fmt(unit.radius_m, 0) + ' m';
      }
      return text + (unit.assumed ? '（规划假定）' : '');
    }

    function showRollup(name) {
      var r = rule(name);
      byId('gp-rules').textContent = r.title_zh + '：' + r.circle + ' 分钟生活圈；社区 ' + unitText(r.urban) +
        '（' + r.urban.clause + '）；村 ' + unitText(r.rural) + '（' + r.rural.clause + '）；设施 ' +
        r.facilities + ' 处';
      byId('gp-rollup-service').textContent = '（' + r.title_zh + '）';
      var rows = summary.rollup.filter(function (x) { return x.service === name; });
      var body = byId('gp-by-group').tBodies[0];
      body.replaceChildren();
      var district = null;
      rows.forEach(function (x) {
        var tr = row([x.group, { text: people(x.population), num: true },
          { text: people(x.covered_population), num: true }, { text: pct(x.coverage_pct), num: true }]);
        tr.setAttribute('data-group', x.group);
        if (x.group === DISTRICT) { tr.className = 'gp-total-row'; district = x; }
        body.appendChild(tr);
      });
      if (district) {
        lib.setStatus(count, '全区 ' + people(district.covered_population) + ' / ' + people(district.population) +
          ' 人在' + r.title_zh + '服务半径内（' + pct(district.coverage_pct) + '）；共 ' + summary.searches +
          ' 次路网搜索');
      }
    }

    function fillCompleteness(rows) {
      var byGroup = {};
      var order = [];
      rows.forEach(function (x) {
        if (!byGroup[x.group]) { byGroup[x.group] = {}; order.push(x.group); }
        byGroup[x.group][x.circle] = x.completeness_pct;
      });
      var body = byId('gp-completeness').tBodies[0];
      body.replaceChildren();
      order.forEach(function (group) {
        var tr = row([group].concat([5, 10, 15].map(function (c) { return { text: pct(byGroup[group][c]), num: true }; })));
        tr.setAttribute('data-group', group);
        if (group === DISTRICT) tr.className = 'gp-total-row';
        body.appendChild(tr);
      });
    }

    function villageStyle(feature) {
      var props = feature.properties;
      var chosen = props.village_code === selected;
      return {
        pane: 'gp-villages', color: chosen ? '#000' : '#4d4d4d', weight: chosen ? 3 : 0.8,
        fillColor: classColor(classes, props['class']), fillOpacity: 0.72, className: 'gp-village gp-feature',
      };
    }

    function drawVillages(body) {
      groups.villages.clearLayers();
      villages = {};
      L.geoJSON(body, {
        pane: 'gp-villages',
        coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
        style: villageStyle,
        onEachFeature: function (feature, layer) {
          var props = feature.properties;
          layer.on('add', function () {
            var node = layer.getElement && layer.getElement();
            if (!node) return;
            node.setAttribute('data-id', String(feature.id));
            node.setAttribute('data-class', props['class'] === null ? 'none' : String(props['class']));
          });
          layer.bindTooltip(el('span', null, props.village_name + ' · ' + pct(props.coverage_pct) + '（' +
            people(props.covered_population) + ' / ' + people(props.population) + ' 人）'), { sticky: true });
          layer.on('click', function () { selectVillage(String(feature.id), {}); });
          villages[String(feature.id)] = { feature: feature, layer: layer };
          groups.villages.addLayer(layer);
        },
      });
    }

    function drawFacilities(body) {
      groups.facilities.clearLayers();
      var toLatLng = lib.coordsToLatLng(config.displayCrs);
      body.features.forEach(function (feature) {
        var props = feature.properties;
        var marker = L.circleMarker(toLatLng(feature.geometry.coordinates), {
          radius: 4, color: FACILITY, weight: 1.5, fillColor: '#ffffff', fillOpacity: 1,
          className: 'gp-facility gp-feature',
        });
        marker.on('add', function () {
          var node = marker.getElement && marker.getElement();
          if (node) node.setAttribute('data-id', String(feature.id));
        });
        marker.bindTooltip(el('span', null, props.name + (props.kind ? '（' + props.kind + '）' : '')));
        groups.facilities.addLayer(marker);
      });
    }

    // ---------------------------------------------------------------- the heat table
    function columns() {
      var fixed = [
        { key: 'village_name', label: '村（社区）' },
        { key: 'group', label: '镇街' },
        { key: 'population', label: '人口', num: true },
      ];
      var perService = services.map(function (s) {
        return { key: 'svc:' + s.service, service: s.service, label: s.title_zh, num: true };
      });
      return fixed.concat(perService, [
        { key: 'missing', label: '缺项', num: true },
        { key: 'has_centre', label: '文化中心' },
      ]);
    }

    function valueOf(village, column) {
      if (column.service) return village.coverage[column.service];
      if (column.key === 'missing') return village.missing.length;
      if (column.key === 'has_centre') return village.has_centre === null ? null : village.has_centre ? 1 : 0;
      return village[column.key];
    }
    // What a column sorts by: its value, the group by its place in the rollups.
    function sortValue(village, column) {
      if (column.key === 'group' && village.group in groupRank) return groupRank[village.group];
      return valueOf(village, column);
    }

    function compare(column, direction) {
      return function (a, b) {
        var x = sortValue(a, column), y = sortValue(b, column);
        var missingX = x === null || x === undefined, missingY = y === null || y === undefined;
        var tie = String(a.village_code).localeCompare(String(b.village_code));
        if (missingX || missingY) return (missingX === missingY ? 0 : missingX ? 1 : -1) || tie;
        var order = typeof x === 'number' && typeof y === 'number' ? x - y
          : String(x).localeCompare(String(y), 'zh-CN');
        if (column.key === 'group' && order === 0) return tie; // by group (as the rollups), then code
        return order * direction || tie;
      };
    }

    function buildHeatHead() {
      var head = byId('gp-heat').tHead.rows[0];
      columns().forEach(function (column) {
        var th = el('th', column.num ? 'gp-num' : null);
        th.scope = 'col';
        th.setAttribute('data-key', column.key);
        var button = el('button', 'gp-sort', column.label);
        button.type = 'button';
        if (column.service) button.title = column.label + '覆盖率（' + rule(column.service).circle + ' 分钟生活圈）';
        button.addEventListener('click', function () {
          sort = { key: column.key, direction: sort.key === column.key ? -sort.direction : 1 };
          fillHeat();
        });
        th.appendChild(button);
        head.appendChild(th);
      });
    }

    async function loadMatrix() {
      matrix = await api.json(config.api.matrix);
      fillHeat();
    }

    function fillHeat() {
      if (!matrix) return;
      var all = columns();
      var column = all.filter(function (c) { return c.key === sort.key; })[0] || all[1];
      var rows = matrix.villages.slice().sort(compare(column, sort.direction));
      byId('gp-heat').tHead.querySelectorAll('th').forEach(function (th) {
        if (th.getAttribute('data-key') === sort.key) {
          th.setAttribute('aria-sort', sort.direction > 0 ? 'ascending' : 'descending');
        } else {
          th.removeAttribute('aria-sort');
        }
      });
      var body = byId('gp-heat').tBodies[0];
      body.replaceChildren();
      rows.forEach(function (village) {
        var cells = all.map(function (c) {
          var value = valueOf(village, c);
          if (c.service) {
            var color = classColor(classes, classOf(classes, value));
            var td = el('td', 'gp-num gp-heat-cell', pct(value));
            td.style.backgroundColor = color;
            td.style.color = inkOn(color);
            td.setAttribute('data-service', c.service);
            return td;
          }
          if (c.key === 'population') return { text: people(value), num: true };
          if (c.key === 'missing') {
            var cell = el('td', 'gp-num', String(value));
            if (value) cell.title = village.missing.map(function (s) { return titles[s] || s; }).join('、');
            return cell;
          }
          if (c.key === 'has_centre') return value === null ? '—' : value ? '有' : '无';
          return value;
        });
        var tr = row(cells);
        tr.setAttribute('data-code', village.village_code);
        tr.setAttribute('data-group', village.group);
        tr.title = village.village_name + '（' + village.type + '）';
        tr.tabIndex = 0;
        tr.classList.toggle('gp-selected', village.village_code === selected);
        tr.addEventListener('click', function () { selectVillage(village.village_code, { zoom: true }); });
        tr.addEventListener('keydown', function (event) {
          if (event.key === 'Enter') selectVillage(village.village_code, { zoom: true });
        });
        body.appendChild(tr);
      });
    }

    // ---------------------------------------------------------------- the village card
    async function selectVillage(code, options) {
      var previous = selected;
      selected = code;
      var entry = lib.reselect(villages, groups.villages, previous, code, villageStyle);
      document.querySelectorAll('#gp-heat tbody tr').forEach(function (tr) {
        var match = tr.getAttribute('data-code') === code;
        tr.classList.toggle('gp-selected', match);
        if (match && !options.zoom) tr.scrollIntoView({ block: 'nearest' });
      });
      history.replaceState(null, '', '#' + hashFor(code));
      if (entry && options.zoom) {
        map.fitBounds(entry.layer.getBounds(), { maxZoom: 14, padding: [30, 30], animate: false });
      }
      var seq = ++cardSeq;
      try {
        var card = await api.json(config.api.village + encodeURIComponent(code));
        if (seq === cardSeq) showCard(card);
      } catch (error) { failed(byId('gp-card-facts'))(error); }
    }

    function showCard(card) {
      var box = byId('gp-card');
      box.setAttribute('data-code', card.village_code);
      byId('gp-card-title').textContent = card.village_name + '（' + card.group + '）';
      byId('gp-card-facts').textContent = card.type + ' · 代码 ' + card.village_code + ' · 人口 ' +
        people(card.population) + ' 人';
      var missing = byId('gp-card-missing');
      missing.replaceChildren();
      card.missing.forEach(function (m) {
        var li = el('li', null, (titles[m.service] || m.title_zh) + '：覆盖 ' + pct(m.coverage_pct) + '，' + people(m.uncovered_population) +
          ' 人未覆盖');
        li.setAttribute('data-service', m.service);
        missing.appendChild(li);
      });
      if (!card.missing.length) missing.appendChild(el('li', 'gp-card-none', '无：各项服务均覆盖本村一半以上人口'));
      var centre = card.culture_centre;
      var centreText = '';
      if (centre && centre.has_centre) centreText = '综合性文化服务中心：' + centre.centres;
      else if (centre && centre.expected) centreText = '综合性文化服务中心：界内没有（规划要求每个村、社区设置）';
      else if (centre) centreText = '综合性文化服务中心：虚拟单位，不作要求';
      byId('gp-card-centre').textContent = centreText;
      byId('gp-card-centre').setAttribute('data-has-centre', centre && centre.has_centre ? 'true' : 'false');
      var services = byId('gp-card-services').tBodies[0];
      services.replaceChildren();
      card.services.forEach(function (s) {
        var name = s.nearest_facility_name || s.nearest_facility || '—';
        var tr = row([s.title_zh, { text: pct(s.coverage_pct), num: true }, name, { text: s.minutes_zh, num: true }]);
        tr.setAttribute('data-service', s.service);
        services.appendChild(tr);
      });
      var complete = byId('gp-card-complete').tBodies[0];
      complete.replaceChildren();
      card.completeness.forEach(function (c) {
        complete.appendChild(row([c.circle + ' 分钟', { text: people(c.population), num: true },
          { text: pct(c.completeness_pct), num: true }]));
      });
      box.hidden = false;
      box.focus({ preventScroll: true });
      box.scrollIntoView({ block: 'nearest' });
    }

    // ---------------------------------------------------------------- downloads, go
    session.downloads('data-download', byId('gp-download-status'), function (format) {
      return { url: config.api.table + format, filename: 'life_circles.' + format, busy: '正在生成…' };
    });
    session.resume();
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { lifecircleMap: lifecircleMap });
})();
