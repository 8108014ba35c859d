/*
 * geoplan coverage map (/coverage, 十分钟文化圈覆盖): villages coloured by coverage, service areas, uncovered areas,
 * suggested new sites, and the per-village table under the map.
 *
 * The page is public and empty. This script asks for a token (staff or better), keeps it in sessionStorage only,
 * and fetches everything with `Authorization: Bearer …`:
 *   GET /api/coverage                    the village table, the town and district totals, the class breaks
 *   GET /api/coverage/villages           the villages with coverage and class (the choropleth)
 *   GET /api/coverage/service-areas      each counted facility's service area
 *   GET /api/coverage/gaps               the uncovered populated areas per village
 *   GET /api/coverage/suggested-sites    greedy new sites with their gains
 *   GET /api/coverage/table.{csv,xlsx,gpkg}  the table as a file;  GET /ogc/…/culture_facilities  the facilities
 * each with the form's options (mode, minutes, kinds; k for the sites). Every answer reflects the store as it is
 * at the request (the server keys its cache by the layers' versions), so "重新计算" after an edit shows it.
 * It needs geoplan-session.js (the token form, the API wrapper, downloads, DOM helpers) and geoplan-map.js
 * (GeoplanMap.lib: GeoJSON and GCJ-02 helpers, map controls).
 *
 * SECURITY: as in geoplan-map.js, every string from the server reaches the DOM as text (textContent, Option,
 * DOM nodes for popups, tooltips and icons), never as markup: no innerHTML, insertAdjacentHTML or HTML built
 * from strings in this file (a test checks).
 */
(function () {
  'use strict';

  var S = window.GeoplanSession;
  var byId = S.byId, fmt = S.fmt, row = S.row;
  var VILLAGE_PARAM = 'village';
  var STYLE = {
    facility: '#1f2933',
    area: '#6a51a3',
    gap: '#252525',
    site: '#08519c',
    offNetwork: '#636363',
  };
  var TYPE_LABELS = { community: '社区', village: '村', virtual: '虚拟单位' };

  // ------------------------------------------------------------------ numbers (text only)
  function people(value) { return fmt(value, 0); }
  function pct(value) { return typeof value === 'number' && isFinite(value) ? fmt(value, 1) + '%' : '—'; }
  function minutes(value) { return fmt(value, 1); }
  // A village with people but no time: more than 10 % of them (P90) or all of them (mean) have no route.
  function minutesOf(value, village) {
    if (value !== null || !(village.population > 0)) return minutes(value);
    var share = village.no_route_pct;  // the people without a route, so the words say how many
    return typeof share === 'number' && isFinite(share) ? '无路径（' + fmt(share, 1) + '% 人口）' : '无路径';
  }
  // People without a route and their share, in words ("1,234 人（5.6%）"), 0 when everyone has one.
  function noRoute(group) {
    var n = group.no_route_population;
    if (typeof n !== 'number' || !isFinite(n) || n < 0.5) return '0';
    return people(n) + ' 人（' + pct(group.no_route_pct) + '）';
  }
  // The nearest facility by its name, its id after it for whoever looks it up in the layer.
  function facilityOf(name, village) {
    if (!village.nearest_facility) return '—';
    return (name || village.nearest_facility) + (name ? '（' + village.nearest_facility + '）' : '');
  }

  var classOf = window.GeoplanMap.lib.classOf, classColor = window.GeoplanMap.lib.classColor;

  // The village table's columns: key in the API's rows, header, number or text, how a value reads.
  var COLUMNS = [
    { key: 'village_name', label: '村（社区）' },
    { key: 'village_code', label: '代码' },
    { key: 'town', label: '镇街' },
    { key: 'type', label: '类型', text: function (v) { return TYPE_LABELS[v] || v; } },
    { key: 'population', label: '人口', num: true, text: people },
    { key: 'covered_population', label: '覆盖人口', num: true, text: people },
    { key: 'coverage_pct', label: '覆盖率', num: true, text: pct, swatch: true },
    { key: 'mean_minutes', label: '平均用时（分钟）', num: true, text: minutesOf },
    { key: 'p90_minutes', label: 'P90 用时（分钟）', num: true, text: minutesOf },
    { key: 'nearest_facility_name', label: '最近设施', text: facilityOf },
    { key: 'off_network_population', label: '不在路网附近', num: true, text: people },
  ];

  // Numbers by value, text in Chinese collation; missing values last in either direction; ties by code.
  function compareRows(column, direction) {
    return function (a, b) {
      var x = a[column.key], y = b[column.key];
      var missingX = x === null || x === undefined || (typeof x === 'number' && !isFinite(x));
      var missingY = y === null || y === undefined || (typeof y === 'number' && !isFinite(y));
      var order = 0;
      if (missingX || missingY) {
        order = missingX === missingY ? 0 : missingX ? 1 : -1;
        return order || String(a.village_code).localeCompare(String(b.village_code));
      }
      order = column.num ? x - y : String(x).localeCompare(String(y), 'zh-CN');
      return order * direction || String(a.village_code).localeCompare(String(b.village_code));
    };
  }

  // ------------------------------------------------------------------ the coverage map
  function coverageMap(map, _groups, config) {
    var lib = window.GeoplanMap.lib;
    var el = lib.el;
    var ui = window.GeoplanMapUI;
    ui.describe(map, '文化圈覆盖地图', 'gp-villages-title');
    // Quarter zoom steps: with whole steps the district, fitted beside the legend, often drops to half its size.
    map.options.zoomSnap = 0.25;
    ui.keyboardPopups(map);
    var count = byId('gp-count');
    var section = byId('gp-villages');
    var api = null;
    var defaults = null;      // the rules file's options, from the first answer: sent only when changed
    var params = {};          // the options of the current view: mode, minutes, kinds, k
    var coverage = null;      // the last /api/coverage answer
    var classes = null;       // its class breaks
    var villages = {};        // code -> {feature, layer}
    var sites = {};           // rank -> marker
    var facilityMarkers = {}; // facility id -> layer
    var selected = null;
    var sort = { key: 'coverage_pct', direction: 1 };
    var loadSeq = 0;
    var started = false;      // set when the first load is drawn and the page is ready

    // Panes keep the order whatever loads first: villages < service areas < gaps < (overlay: outline,
    // facilities) < suggested sites.
    [['gp-villages', 370], ['gp-areas', 380], ['gp-gaps', 390], ['gp-sites', 450]].forEach(function (pane) {
      map.createPane(pane[0]).style.zIndex = String(pane[1]);
    });
    var groups = {
      villages: L.featureGroup().addTo(map),
      areas: L.featureGroup().addTo(map),
      gaps: L.featureGroup().addTo(map),
      facilities: L.featureGroup().addTo(map),
      sites: L.featureGroup().addTo(map),
    };
    var legendList = el('ul', 'gp-legend-items gp-class-legend');

    // The options that differ from the rules file, as a query string (the file's rules apply otherwise, also
    // where urban and rural units have different rules).
    function queryString(extra) {
      var query = new URLSearchParams();
      if (params.mode && params.mode !== defaults.mode) query.set('mode', params.mode);
      if (params.minutes && Number(params.minutes) !== defaults.minutes) query.set('minutes', params.minutes);
      if (params.kinds) query.set('kinds', params.kinds);
      Object.keys(extra || {}).forEach(function (key) { query.set(key, extra[key]); });
      var text = query.toString();
      return text ? '?' + text : '';
    }

    // data-coverage (with data-ready, as on the other pages): 'login', 'loading' or 'ready'.
    var session = S.tokenPage({
      page: 'coverage', forbidden: '本页需要工作人员（staff）或以上角色。', reload: true, also: [section],
      verify: function (accepted) { return accepted.json(config.api.coverage); },
      open: start,
    });
    var failed = session.failed;

    // The token is accepted: `first` is the coverage with the rules file's options.
    async function start(accepted, first) {
      api = accepted;
      setUp(first);
      var outline = drawDistrict();
      await load(first);
      await outline;
      window.GeoplanMap.current = {
        map: map,
        village: function (code) { return villages[code] && villages[code].layer; },
        site: function (rank) { return sites[rank]; },
        facility: function (id) { return facilityMarkers[id]; },
        reload: function () { return load(); },
      };
      var wanted = new URLSearchParams(window.location.hash.replace(/^#/, '')).get(VILLAGE_PARAM);
      if (wanted && villages[wanted]) selectVillage(wanted, { zoom: true, popup: true });
      started = true;
      session.state('ready');
    }

    // ---------------------------------------------------------------- controls, layer switcher, legend
    function setUp(first) {
      var urban = first.rules.urban;
      defaults = { mode: urban.mode, minutes: urban.minutes };
      params = { mode: urban.mode, minutes: urban.minutes, kinds: '', k: 5 };
      var mode = byId('gp-mode');
      config.modes.forEach(function (m) { mode.appendChild(new Option(m.title, m.value)); });
      mode.value = params.mode;
      byId('gp-minutes').value = params.minutes;
      var kinds = byId('gp-kinds');
      config.kinds.forEach(function (kind) { kinds.appendChild(new Option(kind, kind)); });
      byId('gp-k').max = config.maxSites;
      byId('gp-k').value = params.k;
      // The banner names the inputs that still hold demo data (the server decides, from the audit log).
      byId('gp-synthetic-note').textContent = first.synthetic_note || '';
      byId('gp-synthetic-note').hidden = !first.synthetic_note;
      addLayerControl();
      addLegend(first.synthetic);
      buildTableHead();
    }

    byId('gp-settings').addEventListener('submit', function (event) {
      event.preventDefault();
      params = {
        mode: byId('gp-mode').value,
        minutes: Number(byId('gp-minutes').value),
        kinds: byId('gp-kinds').value,
        k: Number(byId('gp-k').value),
      };
      load();
    });

    function addLayerControl() {
      // Top left, under the zoom buttons: the district is wide and low, with its north-west and south-east
      // corners empty, while its north-east tip is 荷城, where most people live.
      var toggle = lib.layerSwitcher(map, 'topleft');
      [
        ['villages', '村（社区）覆盖率', null],
        ['areas', '设施服务范围', STYLE.area],
        ['gaps', '未覆盖区域', STYLE.gap],
        ['facilities', '文化设施', STYLE.facility],
        ['sites', '建议新址', STYLE.site],
      ].forEach(function (entry) {
        toggle(entry[1], groups[entry[0]], { layer: entry[0], before: entry[2] ? [lib.swatch(entry[2])] : [] });
      });
    }

    // The legend: the class breaks (filled in fillLegend), the other layers' symbols, the synthetic flag.
    function addLegend(synthetic) {
      var box = el('div', 'gp-legend gp-coverage-legend');
      box.setAttribute('role', 'region');
      box.setAttribute('aria-label', '图例');
      box.appendChild(el('h2', 'gp-legend-title', '覆盖率（村/社区）'));
      if (synthetic) box.appendChild(S.syntheticTag(config.syntheticLabel));
      box.appendChild(legendList);
      var symbols = el('ul', 'gp-legend-items gp-symbol-legend');
      [[STYLE.area, '设施服务范围'], [STYLE.gap, '未覆盖的有人口区域'],
        ['#ffffff', '文化设施（灰色虚线：距路网过远）', 'gp-swatch-facility'],
        [STYLE.site, '建议新址（数字为次序）']].forEach(function (item) {
        var li = el('li', null);
        var mark = lib.swatch(item[0]);
        if (item[2]) mark.classList.add(item[2]);
        li.appendChild(mark);
        li.appendChild(el('span', null, item[1]));
        symbols.appendChild(li);
      });
      box.appendChild(symbols);
      box.appendChild(el('p', 'gp-legend-note', '分级：Fisher-Jenks 自然断点（mapclassify），按各村覆盖率'));
      if (config.basemapNote) box.appendChild(el('p', 'gp-legend-note', config.basemapNote));
      // Bottom right, the district's empty south-east corner. Foldable (geoplan-map-ui.js), folded from the start
      // on narrow screens.
      window.GeoplanMap.addLegend(map, box, 'bottomright');
    }

    function fillLegend(body) {
      var noData = body.villages.filter(function (v) { return classOf(classes, v.coverage_pct) === null; }).length;
      lib.fillClassLegend(legendList, classes, classes.counts, noData, 1);
    }

    // The district outline for orientation, the panel sized to it.
    function drawDistrict() { return lib.districtOutline(map, config, api.headers(), sizeToDistrict); }

    // The map panel as tall as the district needs at the width it has (the district is wide and low: a fixed tall
    // panel leaves it in a band with empty space above and below), then the district fitted clear of the controls.
    function sizeToDistrict(bounds) {
      var panel = map.getContainer().closest('.gp-coverage-map');
      var fit = ui.fitOptions(map);
      var padX = fit.paddingTopLeft[0] + fit.paddingBottomRight[0];
      var padY = fit.paddingTopLeft[1] + fit.paddingBottomRight[1];
      var nw = map.project(bounds.getNorthWest(), 0), se = map.project(bounds.getSouthEast(), 0);
      var snap = map.options.zoomSnap || 1;
      var maxHeight = Math.max(320, window.innerHeight * 0.75);
      var zoom = Math.min(Math.log2((map.getSize().x - padX) / (se.x - nw.x)),
        Math.log2((maxHeight - padY) / (se.y - nw.y)));
      zoom = Math.floor(zoom / snap) * snap;
      var height = Math.round((se.y - nw.y) * Math.pow(2, zoom) + padY);
      if (panel) {
        panel.style.height = Math.max(320, Math.min(maxHeight, height)) + 'px';
        map.invalidateSize({ animate: false });
      }
      map.fitBounds(bounds, ui.fitOptions(map));
    }

    // ---------------------------------------------------------------- loading
    // Every part is fetched at once and drawn as it arrives; an answer for options the user has since changed
    // is dropped. The page is ready when every part has settled.
    async function load(first) {
      var seq = ++loadSeq;
      var qs = queryString();
      session.state('loading');
      byId('gp-settings').querySelector('button[type=submit]').disabled = true;
      lib.setStatus(count, '正在计算…');
      function current(draw) {
        return function (body) { if (seq === loadSeq) draw(body); };
      }
      var geo = { headers: { Accept: 'application/geo+json' } };
      var parts = [
        (first ? Promise.resolve(first) : api.json(config.api.coverage + qs)).then(current(showCoverage))
          .catch(failed(count)),
        api.json(config.api.villages + qs, geo).then(current(drawVillages)).catch(failed(count)),
        api.json(config.api.serviceAreas + qs, geo).then(current(drawAreas)).catch(failed(count)),
        api.json(config.api.gaps + qs, geo).then(current(drawGaps)).catch(failed(count)),
        api.json(config.api.sites + queryString({ k: params.k }), geo).then(current(drawSites))
          .catch(function (error) {
            if (seq !== loadSeq) return;
            groups.sites.clearLayers();
            byId('gp-sites').tBodies[0].replaceChildren();
            failed(byId('gp-sites-note'))(error);
          }),
        lib.fetchAll(config.layers.culture_facilities.url, api.headers()).then(current(drawFacilities))
          .catch(failed(count)),
      ];
      await Promise.all(parts);
      if (seq !== loadSeq) return;
      byId('gp-settings').querySelector('button[type=submit]').disabled = false;
      if (coverage) markOffNetwork();
      if (started) session.state('ready'); // (the first: start() says when)
    }

    // ---------------------------------------------------------------- totals and the table
    function showCoverage(body) {
      coverage = body;
      classes = body.classes;
      var total = body.district;
      lib.setStatus(count, '全区 ' + people(total.covered_population) + ' / ' + people(total.population) +
        ' 人在文化圈内（' + pct(total.coverage_pct) + '）；' + body.below.villages + ' 个村（社区）覆盖率低于 ' +
        fmt(body.below.pct, 0) + '%');
      byId('gp-rules').textContent = rulesText(body.rules, body.kinds, body.facilities_counted);
      var notes = [];
      if (body.facilities_off_network.length) {
        notes.push('距路网过远、不计服务的设施：' + body.facilities_off_network.join('、'));
      }
      if (body.off_network_population > 0.5) notes.push('距路网过远的人口：' + people(body.off_network_population) + ' 人');
      if (body.unassigned_population > 0.5) notes.push('未落入任何村（社区）的人口：' + people(body.unassigned_population) + ' 人');
      var note = byId('gp-off-network');
      note.textContent = notes.join('；');
      note.hidden = !notes.length;
      var towns = byId('gp-by-town').tBodies[0];
      towns.replaceChildren();
      // The virtual units (prisons, farms) come as one group after the towns: they are no town.
      body.towns.forEach(function (town) {
        var name = town.town === body.virtual_group ? town.town + '（监狱、林场等，非镇街）' : town.town;
        var tr = row([name, { text: String(town.villages), num: true },
          { text: people(town.population), num: true }, { text: people(town.covered_population), num: true },
          { text: pct(town.coverage_pct), num: true }, { text: noRoute(town), num: true }]);
        tr.setAttribute('data-town', town.town);
        towns.appendChild(tr);
      });
      var district = row(['全区', { text: String(total.villages), num: true },
        { text: people(total.population), num: true }, { text: people(total.covered_population), num: true },
        { text: pct(total.coverage_pct), num: true }, { text: noRoute(total), num: true }]);
      district.className = 'gp-total-row';
      towns.appendChild(district);
      fillLegend(body);
      fillTable();
    }

    function settingText(s) {
      var how = s.mode === 'euclidean' ? '直线' : '沿路网';
      var text = how + ' ' + fmt(s.minutes, 0) + ' 分钟（' + fmt(s.speed_kmh, 1) + ' km/h，' +
        fmt(s.threshold_m, 0) + ' m';
      if (s.mode === 'network') text += '，接入路网 ≤ ' + fmt(s.access_m, 0) + ' m';
      return text + '）';
    }

    function rulesText(rules, kinds, counted) {
      var same = JSON.stringify(rules.urban) === JSON.stringify(rules.rural);
      var text = same ? '规则：' + settingText(rules.urban)
        : '社区：' + settingText(rules.urban) + '；村：' + settingText(rules.rural);
      return text + '；计入设施：' + (kinds ? kinds.join('、') : '全部类型') + '（' + counted + ' 处）';
    }

    function buildTableHead() {
      var head = byId('gp-village-table').tHead.rows[0];
      COLUMNS.forEach(function (column) {
        var th = el('th', column.num ? 'gp-num' : null);
        th.scope = 'col';
        th.setAttribute('data-key', column.key);
        var button = el('button', 'gp-sort', column.label);
        button.type = 'button';
        button.addEventListener('click', function () {
          sort = { key: column.key, direction: sort.key === column.key ? -sort.direction : 1 };
          fillTable();
        });
        th.appendChild(button);
        head.appendChild(th);
      });
    }

    function fillTable() {
      if (!coverage) return;
      var column = COLUMNS.filter(function (c) { return c.key === sort.key; })[0];
      var rows = coverage.villages.slice().sort(compareRows(column, sort.direction));
      byId('gp-village-table').tHead.querySelectorAll('th').forEach(function (th) {
        var key = th.getAttribute('data-key');
        if (key === sort.key) th.setAttribute('aria-sort', sort.direction > 0 ? 'ascending' : 'descending');
        else th.removeAttribute('aria-sort');
      });
      var body = byId('gp-village-table').tBodies[0];
      body.replaceChildren();
      rows.forEach(function (village) {
        var cells = COLUMNS.map(function (c) {
          var value = village[c.key];
          var text = c.text ? c.text(value, village) : value === null || value === undefined ? '—' : String(value);
          if (!c.swatch) return { text: text, num: c.num };
          var td = el('td', 'gp-num');
          td.appendChild(lib.swatch(classColor(classes, classOf(classes, value))));
          td.appendChild(el('span', null, text));
          return td;
        });
        var tr = row(cells);
        tr.setAttribute('data-code', village.village_code);
        tr.tabIndex = 0;
        tr.classList.toggle('gp-selected', village.village_code === selected);
        tr.addEventListener('click', function () { selectVillage(village.village_code, { zoom: true, popup: true }); });
        tr.addEventListener('keydown', function (event) {
          if (event.key === 'Enter') selectVillage(village.village_code, { zoom: true, popup: true });
        });
        body.appendChild(tr);
      });
    }

    // ---------------------------------------------------------------- villages
    function villageStyle(feature) {
      var props = feature.properties;
      var chosen = props.village_code === selected;
      return {
        pane: 'gp-villages', color: chosen ? '#000' : '#4d4d4d', weight: chosen ? 3 : 0.8,
        fillColor: classColor(classes, props['class']), fillOpacity: 0.72,
        className: 'gp-village',
      };
    }

    function villagePopup(props) {
      var root = el('div', 'gp-popup');
      root.appendChild(el('h3', 'gp-popup-title', props.village_name));
      root.appendChild(S.definitionList('gp-popup-fields', [
        ['镇街', props.town],
        ['类型', TYPE_LABELS[props.type] || props.type],
        ['代码', props.village_code],
        ['人口', people(props.population) + ' 人'],
        ['覆盖人口', people(props.covered_population) + ' 人'],
        ['覆盖率', pct(props.coverage_pct)],
        ['平均用时', minutesOf(props.mean_minutes, props) + (props.mean_minutes === null ? '' : ' 分钟')],
        ['P90 用时', minutesOf(props.p90_minutes, props) + (props.p90_minutes === null ? '' : ' 分钟')],
        ['最近设施', facilityOf(props.nearest_facility_name, props)],
        ['距路网过远', people(props.off_network_population) + ' 人'],
      ]));
      if (coverage && coverage.synthetic) root.appendChild(el('p', 'gp-popup-note', config.syntheticLabel));
      return root;
    }

    function drawVillages(body) {
      classes = body.classes;
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
          layer.bindTooltip(el('span', null, props.village_name + ' · ' + pct(props.coverage_pct)), { sticky: true });
          layer.bindPopup(function () { return villagePopup(props); }, { maxWidth: 320 });
          layer.on('click', function () { selectVillage(String(feature.id), {}); });
          villages[String(feature.id)] = { feature: feature, layer: layer };
          groups.villages.addLayer(layer);
        },
      });
    }

    function selectVillage(code, options) {
      var previous = selected;
      selected = code;
      var entry = lib.reselect(villages, groups.villages, previous, code, villageStyle);
      document.querySelectorAll('#gp-village-table tbody tr').forEach(function (tr) {
        var match = tr.getAttribute('data-code') === code;
        tr.classList.toggle('gp-selected', match);
        if (match && !options.zoom) tr.scrollIntoView({ block: 'nearest' });
      });
      history.replaceState(null, '', '#' + VILLAGE_PARAM + '=' + encodeURIComponent(code));
      if (!entry) return;
      if (options.zoom) map.fitBounds(entry.layer.getBounds(), { maxZoom: 15, padding: [30, 30], animate: false });
      if (options.popup) entry.layer.openPopup();
    }

    // ---------------------------------------------------------------- service areas, gaps, facilities, sites
    function tagged(feature, layer, attributes) {
      layer.on('add', function () {
        var node = layer.getElement && layer.getElement();
        if (!node) return;
        node.setAttribute('data-id', String(feature.id));
        Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
      });
    }

    // Not clickable: the areas overlap and lie over the villages, which stay clickable through them.
    function drawAreas(body) {
      groups.areas.clearLayers();
      L.geoJSON(body, {
        pane: 'gp-areas',
        interactive: false,
        coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
        style: function () {
          return { pane: 'gp-areas', color: STYLE.area, weight: 1, fillColor: STYLE.area, fillOpacity: 0.07,
            className: 'gp-area', interactive: false };
        },
        onEachFeature: function (feature, layer) {
          tagged(feature, layer, { 'data-facility': feature.properties.facility_id });
          groups.areas.addLayer(layer);
        },
      });
    }

    function drawGaps(body) {
      groups.gaps.clearLayers();
      L.geoJSON(body, {
        pane: 'gp-gaps',
        coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
        style: function () {
          return { pane: 'gp-gaps', color: STYLE.gap, weight: 0.6, fillColor: STYLE.gap, fillOpacity: 0.22,
            className: 'gp-gap' };
        },
        onEachFeature: function (feature, layer) {
          var props = feature.properties;
          tagged(feature, layer, {});
          layer.bindTooltip(el('span', null, props.village_name + ' 未覆盖 ' + people(props.uncovered_population) +
            ' 人'), { sticky: true });
          layer.on('click', function () { selectVillage(String(props.village_code), { popup: true }); });
          groups.gaps.addLayer(layer);
        },
      });
    }

    // The facilities counted (the kind chosen, or all), from the public OGC API; popups with public fields.
    // One dark colour (not the catalogue's colour per kind): they must stand out on the red-to-green villages.
    function drawFacilities(features) {
      var base = config.layers.culture_facilities;
      var layerConfig = Object.assign({}, base, { style: Object.assign({}, base.style,
        { categoryField: null, color: STYLE.facility, weight: 1.5, radius: 4 }) });
      var shown = features.filter(function (f) { return !params.kinds || f.properties.kind === params.kinds; });
      groups.facilities.clearLayers();
      facilityMarkers = {};
      var drawn = lib.geoJsonLayer(layerConfig, shown, config.displayCrs,
        { interactive: true, popups: true, permalink: function () { return null; } });
      drawn.getLayers().forEach(function (layer) {
        drawn.removeLayer(layer);
        layer.setStyle({ fillColor: '#ffffff', fillOpacity: 1 }); // white dots, dark rim: readable on any class
        facilityMarkers[String(layer.feature.id)] = layer;
        groups.facilities.addLayer(layer);
      });
      if (coverage) markOffNetwork();
    }

    function markOffNetwork() {
      var off = {};
      coverage.facilities_off_network.forEach(function (id) { off[id] = true; });
      Object.keys(facilityMarkers).forEach(function (id) {
        if (!off[id]) return;
        var layer = facilityMarkers[id];
        layer.setStyle({ color: STYLE.offNetwork, fillColor: STYLE.offNetwork, dashArray: '2 2' });
        var node = layer.getElement && layer.getElement();
        if (node) node.classList.add('gp-off-network');
      });
    }

    function siteContent(props, detailed) {
      var root = el('div', 'gp-popup');
      root.appendChild(el('h3', 'gp-popup-title', '建议新址 第 ' + props.rank + ' 位'));
      if (!detailed) {
        root.appendChild(el('span', null, '新增覆盖 ' + people(props.gain_population) + ' 人'));
        return root;
      }
      root.appendChild(S.definitionList('gp-popup-fields', [
        ['所在村（社区）', props.village_name ? props.village_name + '（' + props.town + '）' : null],
        ['新增覆盖人口', people(props.gain_population) + ' 人'],
        ['累计覆盖人口', people(props.cumulative_covered_population) + ' 人'],
        ['累计覆盖率', pct(props.cumulative_coverage_pct)],
        ['路网节点', props.site_id],
      ]));
      return root;
    }

    // Numbered markers (the number is a text node in the icon) and the list in the sidebar.
    function drawSites(body) {
      groups.sites.clearLayers();
      sites = {};
      var list = byId('gp-sites').tBodies[0];
      list.replaceChildren();
      var toLatLng = lib.coordsToLatLng(config.displayCrs);
      body.features.forEach(function (feature) {
        var props = feature.properties;
        var label = el('span', 'gp-site-rank', String(props.rank));
        var marker = L.marker(toLatLng(feature.geometry.coordinates), {
          pane: 'gp-sites',
          icon: L.divIcon({ className: 'gp-site-icon', html: label, iconSize: [24, 24] }),
          keyboard: true,
        });
        marker.on('add', function () {
          var node = marker.getElement();
          if (node) { node.setAttribute('data-id', String(feature.id)); node.setAttribute('data-rank', String(props.rank)); }
        });
        marker.bindTooltip(siteContent(props, false), { direction: 'top', offset: [0, -12] });
        marker.bindPopup(siteContent(props, true), { maxWidth: 320 });
        sites[props.rank] = marker;
        groups.sites.addLayer(marker);
        var place = el('button', 'gp-rule-button', props.village_name || '（村界外）');
        place.type = 'button';
        place.addEventListener('click', function () {
          map.setView(marker.getLatLng(), Math.max(map.getZoom(), 14), { animate: false });
          marker.openPopup();
        });
        var cell = document.createElement('td');
        cell.appendChild(place);
        var tr = row([{ text: String(props.rank), num: true }, cell,
          { text: people(props.gain_population), num: true }, { text: pct(props.cumulative_coverage_pct), num: true }]);
        tr.setAttribute('data-rank', String(props.rank));
        list.appendChild(tr);
      });
      var note = body.features.length < body.k
        ? '只有 ' + body.features.length + ' 处能新增覆盖。' : '';
      lib.setStatus(byId('gp-sites-note'), note + '基准覆盖率 ' + pct(body.baseline_coverage_pct) + '。');
    }

    // ---------------------------------------------------------------- downloads
    session.downloads('data-download', byId('gp-download-status'), function (format) {
      return { url: config.api.table + format + queryString(), filename: 'village_coverage.' + format, busy: '正在生成…' };
    });

    // ---------------------------------------------------------------- go
    session.resume();
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { coverageMap: coverageMap });
})();
