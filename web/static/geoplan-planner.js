/*
 * geoplan planner map (/planner, 多规合一冲突图斑): conflict patches, their marks and totals, and the site check.
 *
 * The page is public and empty. This script asks for a token, keeps it in sessionStorage only (it ends with the
 * tab), and fetches everything with `Authorization: Bearer …`:
 *   GET  /api/overlaps/config      the rules (colours, titles, synthetic flag) and the plan layers (fields, styles)
 *   GET  /ogc/collections/X/items  the plan layers (private ones need the token)
 *   GET  /api/overlaps[/summary]   the patches and their totals;   GET /api/overlaps/{id}  one patch in detail
 *   POST /api/overlaps/{id}/mark   a planner's decision;           POST /api/compliance    the site check
 * It needs geoplan-session.js (the token form, the API wrapper, downloads, DOM helpers) and geoplan-map.js
 * (GeoplanMap.lib: GeoJSON and GCJ-02 helpers, the by-view loader, map controls).
 *
 * SECURITY: as in geoplan-map.js, every string from the server reaches the DOM as text (textContent, Option,
 * DOM nodes for popups and tooltips), never as markup: no innerHTML, insertAdjacentHTML or HTML built from
 * strings in this file (a test checks). The printable report is HTML by design: it is shown by /planner/report
 * (reportViewer below) under the report's own script-free policy, never inserted into this page.
 */
(function () {
  'use strict';

  var PATCH_PARAM = 'patch';
  var HIT_WIDTH = 14; // px: a thin patch (a strip along a road) is clickable within 7 px of its outline
  var SOURCE_STYLES = { a: { color: '#0b3d91', dashArray: '6 4' }, b: { color: '#111111', dashArray: '2 4' } };

  // ------------------------------------------------------------------ GCJ-02 back to CGCS2000 (drawn sites)
  // The display may be shifted to GCJ-02 (AMap); a drawn vertex is a display position. Undo the shift by
  // fixed-point iteration (the offset varies slowly: three steps reach millimetres).
  function displayToLonLat(lib, displayCrs, latlng) {
    if (displayCrs !== 'gcj02') return [latlng.lng, latlng.lat];
    var lon = latlng.lng, lat = latlng.lat;
    for (var i = 0; i < 4; i++) {
      var shifted = lib.wgs84ToGcj02(lon, lat);
      lon += latlng.lng - shifted[0];
      lat += latlng.lat - shifted[1];
    }
    return [lon, lat];
  }

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

  // ------------------------------------------------------------------ the planner map
  function plannerMap(map, _groups, config) {
    var lib = window.GeoplanMap.lib;
    var S = window.GeoplanSession;
    var el = S.el, byId = S.byId, row = S.row, button = S.button, fmtNumber = S.fmt;
    var AuthError = S.AuthError;
    function hectares(m2) { return fmtNumber(m2 / 10000, 2); }

    var count = byId('gp-count');
    var api = null;
    var rules = {};          // code -> rule config
    var cfg = null;          // /api/overlaps/config
    var patchEntries = {};   // patch id -> {feature, layer}
    var selectedId = null;
    var ruleFilter = null;
    var thresholds = null;   // {min_area_m2, min_width_m}
    var lastSite = null;     // the last checked site: {body} (drawn) or {file, crs} (uploaded)

    // Panes keep the order whatever loads first: plan layers < patches < their click targets < highlighted
    // sources < the drawn site. The click targets are each patch again, invisible, with a wide stroke.
    [['gp-patches', 450], ['gp-patch-hits', 455], ['gp-sources', 460], ['gp-site', 470]].forEach(function (pane) {
      map.createPane(pane[0]).style.zIndex = String(pane[1]);
    });
    var patchGroup = L.featureGroup().addTo(map);
    var sourceGroup = L.featureGroup().addTo(map);
    var planLayers = {};     // name -> {config, group, loading, refresh, tiles}
    var legendList = el('ul', 'gp-legend-items gp-rule-legend');

    function queryString(extra) {
      var params = new URLSearchParams(thresholds || {});
      Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
      return params.toString();
    }

    // data-planner (with data-ready, as on the other pages): 'login' (the form) or 'ready' (all loaded).
    var session = S.tokenPage({
      page: 'planner', forbidden: '本页需要规划（planner）或管理员角色。', reload: true,
      verify: function (accepted) { return accepted.json(config.api.config); },
      open: start,
    });
    var failed = session.failed, expire = session.expire;

    // The token is accepted: `first` is the rules and layers config.
    async function start(accepted, first) {
      api = accepted;
      cfg = first;
      setUp();
      var outline = drawDistrict();
      var layersLoaded = cfg.order.filter(function (name) { return cfg.layers[name].shown; })
        .map(function (name) { return ensureLoaded(planLayers[name]); });
      try {
        await Promise.all([loadPatches(), loadSummary()]);
      } catch (error) {
        failed(count)(error);
      }
      await Promise.all(layersLoaded.concat([outline]));
      var wanted = new URLSearchParams(window.location.hash.replace(/^#/, '')).get(PATCH_PARAM);
      if (wanted) await openPatch(wanted, { zoom: true });
      window.GeoplanMap.current = {
        map: map,
        patch: function (id) { return patchEntries[id] && patchEntries[id].layer; },
        planLayer: function (name) { return planLayers[name] && planLayers[name].group; },
        planTiles: function (name) { return planLayers[name] && planLayers[name].tiles; },
        drawing: drawing,
      };
      session.state('ready');
    }

    // ---------------------------------------------------------------- layers, legend, controls
    function setUp() {
      cfg.rules.forEach(function (rule) { rules[rule.code] = rule; });
      thresholds = { min_area_m2: cfg.thresholds.min_area_m2, min_width_m: cfg.thresholds.min_width_m };
      byId('gp-min-area').value = thresholds.min_area_m2;
      byId('gp-min-width').value = thresholds.min_width_m;
      var synthetic = cfg.rules.some(function (r) { return r.synthetic; });
      // The banner names the plan layers that still hold demo data (the server decides, from the audit log).
      byId('gp-synthetic-note').textContent = cfg.syntheticNote || '';
      byId('gp-synthetic-note').hidden = !cfg.syntheticNote;
      cfg.order.forEach(function (name) {
        planLayers[name] = { config: cfg.layers[name], group: L.featureGroup(), loading: null, refresh: null };
      });
      addLayerControl();
      addLegend(synthetic);
    }

    // A plan layer is fetched when first shown: whole up to the page's threshold, else by the map's view (the
    // same loader as the /layers pages, with the token).
    function ensureLoaded(entry) {
      var layerConfig = entry.config;
      if (entry.loading) {
        if (entry.refresh) entry.refresh();
        return entry.loading;
      }
      if (layerConfig.tiled && lib.tilesFit && lib.tilesFit(config)) {
        // Vector tiles with the token: each tile's parcels, clipped, at every zoom (geoplan-tiles.js).
        var grid = lib.vectorTileLayer(layerConfig, { headers: api.headers(), popupPadding: panelPadding });
        entry.tiles = grid;
        entry.loading = new Promise(function (resolve) { grid.once('load', resolve); });
        grid.on('tileerror', function () { lib.setStatus(entry.status, '部分瓦片加载失败', true); });
        entry.group.addLayer(grid);
        lib.setStatus(entry.status, fmtNumber(layerConfig.featureCount, 0) + ' 个');
        return entry.loading;
      }
      if (layerConfig.featureCount > config.largeLayer.maxFeaturesWholeLayer) {
        var byView = lib.loadByView(map, entry.group, layerConfig, config, {
          headers: api.headers(), fit: false,
          active: function () { return map.hasLayer(entry.group); },
          status: function (text, isError) { lib.setStatus(entry.status, text, isError); },
        });
        entry.refresh = byView.refresh;
        entry.loading = byView.first;
        return entry.loading;
      }
      lib.setStatus(entry.status, '加载中…');
      entry.loading = lib.fetchAll(layerConfig.url, api.headers()).then(function (features) {
        entry.group.addLayer(lib.geoJsonLayer(layerConfig, features, config.displayCrs,
          { interactive: true, popups: true, permalink: function () { return null; } }));
        lib.setStatus(entry.status, fmtNumber(features.length, 0) + ' 个');
      }).catch(function (error) {
        entry.loading = null; // try again when switched on again
        lib.setStatus(entry.status, '加载失败', true);
        console.warn(error);
      });
      return entry.loading;
    }

    // A popup opened near the layer panel (top right; controls sit above popups) pans the map until it is
    // clear of the panel, as wide as the panel is now (its counts fill in as layers load).
    function panelPadding() {
      var panel = map.getContainer().querySelector('.gp-layers');
      return [(panel ? panel.offsetWidth : 260) + 30, 20];
    }
    map.on('popupopen', function (event) {
      var popup = event.popup;
      popup.options.autoPanPaddingTopLeft = L.point(20, 20);
      popup.options.autoPanPaddingBottomRight = L.point(panelPadding());
      popup.update(); // pans again with this padding (GeoJSON layers' popups are bound without it)
    });

    function addLayerControl() {
      var toggle = lib.layerSwitcher(map);
      toggle('冲突图斑', patchGroup, { layer: 'patches', before: [lib.swatch('#d7191c')] });
      cfg.order.slice().reverse().forEach(function (name) { // top of the map first, as in the legend
        var entry = planLayers[name];
        var layerConfig = entry.config;
        entry.status = el('span', 'gp-layer-count');
        var after = [entry.status];
        if (layerConfig.synthetic) after.unshift(S.syntheticTag('示意'));
        toggle(layerConfig.title, entry.group, {
          layer: name, checked: layerConfig.shown, before: [lib.swatch(layerConfig.style.color)], after: after,
          onShow: function () { ensureLoaded(entry); },
        });
        if (layerConfig.shown) entry.group.addTo(map);
      });
    }

    // The legend: each rule with patches (colour, title, severity, count) and the synthetic-data flag.
    function addLegend(synthetic) {
      var box = el('div', 'gp-legend gp-planner-legend');
      box.setAttribute('role', 'region');
      box.setAttribute('aria-label', '图例');
      var heading = el('h2', 'gp-legend-title', '冲突图斑（按规则）');
      box.appendChild(heading);
      if (synthetic) box.appendChild(S.syntheticTag(config.syntheticLabel));
      box.appendChild(legendList);
      box.appendChild(el('p', 'gp-legend-note', '虚线边框：已标记的图斑；程度：高／中／低'));
      cfg.order.forEach(function (name) { addClassLegend(box, planLayers[name]); });
      if (config.basemapNote) box.appendChild(el('p', 'gp-legend-note', config.basemapNote));
      window.GeoplanMap.addLegend(map, box);
    }

    // A land-use plan coloured by class (用地性质): its classes and colours, listed while the layer is on.
    function addClassLegend(box, entry) {
      var layerConfig = entry.config;
      var categories = layerConfig.style.categories || {};
      if (!layerConfig.classLegend) return;
      var section = el('section', 'gp-legend-layer gp-class-legend');
      section.setAttribute('data-layer', layerConfig.name);
      section.appendChild(el('h3', 'gp-legend-name', layerConfig.title + ' · 按' + (layerConfig.categoryTitle || '类别')));
      var list = el('ul', 'gp-legend-items');
      Object.keys(categories).forEach(function (label) {
        var item = el('li', null);
        item.appendChild(lib.swatch(categories[label]));
        item.appendChild(el('span', null, label));
        list.appendChild(item);
      });
      section.appendChild(list);
      box.appendChild(section);
      function update() { section.hidden = !map.hasLayer(entry.group); }
      map.on('layeradd layerremove', function (event) { if (event.layer === entry.group) update(); });
      update();
    }

    function fillLegend(features) {
      var counts = {};
      features.forEach(function (f) { counts[f.properties.rule] = (counts[f.properties.rule] || 0) + 1; });
      legendList.replaceChildren();
      cfg.rules.forEach(function (rule) {
        if (!counts[rule.code]) return;
        var item = el('li', null);
        item.setAttribute('data-rule', rule.code);
        item.appendChild(lib.swatch(rule.color));
        item.appendChild(el('span', 'gp-legend-name', rule.title));
        item.appendChild(el('span', 'gp-sev gp-sev-' + rule.severity, config.severities[rule.severity] || rule.severity));
        item.appendChild(el('span', 'gp-legend-count', String(counts[rule.code])));
        if (rule.synthetic) item.title = config.syntheticLabel;
        legendList.appendChild(item);
      });
    }

    // The district outline for orientation (a public layer): underneath, not clickable.
    function drawDistrict() {
      if (!cfg.district) return Promise.resolve(null);
      return lib.fetchAll(cfg.district.url, api.headers()).then(function (features) {
        var outline = lib.geoJsonLayer(cfg.district, features, config.displayCrs,
          { interactive: false, popups: false });
        outline.addTo(map);
        outline.bringToBack();
        if (features.length) map.fitBounds(outline.getBounds(), { animate: false });
        return outline;
      }).catch(function (error) { console.warn(error); return null; });
    }

    // ---------------------------------------------------------------- patches
    function patchStyle(feature) {
      var props = feature.properties;
      var rule = rules[props.rule] || { color: '#333' };
      var selected = feature.id === selectedId;
      return {
        pane: 'gp-patches', color: selected ? '#000' : rule.color, fillColor: rule.color,
        weight: selected ? 3.5 : 1.5, fillOpacity: selected ? 0.75 : 0.55,
        dashArray: props.mark_status ? '5 4' : null,
        className: 'gp-patch gp-rule-' + props.rule + (props.mark_status ? ' gp-marked' : ''),
      };
    }

    // A patch's readable name: what conflicts, where, how big; its 16-digit id is only the second line.
    function patchName(props) {
      var rule = rules[props.rule] || { title: props.rule_title || props.rule };
      var area = props.area_m2 >= 10000 ? hectares(props.area_m2) + ' 公顷' : fmtNumber(props.area_m2, 0) + ' m²';
      return rule.title + ' · ' + (props.town || '镇街不详') + ' · ' + area;
    }

    function tooltipFor(props) {
      var node = el('span', 'gp-patch-tip');
      node.appendChild(el('strong', null, patchName(props)));
      node.appendChild(el('span', 'gp-patch-code', '编号 ' + props.patch_id));
      return node;
    }

    // The patch under a click: the smallest shown patch containing the point, else the one whose (wide,
    // invisible) click target was hit. So a click inside a patch opens it, even beside a neighbour's edge.
    function patchAt(latlng, fallback) {
      var point = displayToLonLat(lib, config.displayCrs, latlng);
      var best = null, bestArea = Infinity;
      Object.keys(patchEntries).forEach(function (id) {
        var entry = patchEntries[id];
        if (!patchGroup.hasLayer(entry.layer)) return;
        var props = entry.feature.properties;
        if (props.area_m2 < bestArea && containsPoint(entry.feature.geometry, point)) { best = id; bestArea = props.area_m2; }
      });
      return best || fallback;
    }

    // Even-odd ray casting over every ring of a (Multi)Polygon in lon/lat.
    function containsPoint(geometry, point) {
      var polygons = geometry.type === 'Polygon' ? [geometry.coordinates]
        : geometry.type === 'MultiPolygon' ? geometry.coordinates : [];
      var inside = false;
      polygons.forEach(function (rings) {
        rings.forEach(function (ring) {
          for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
            var a = ring[i], b = ring[j];
            if ((a[1] > point[1]) !== (b[1] > point[1]) &&
                point[0] < (b[0] - a[0]) * (point[1] - a[1]) / (b[1] - a[1]) + a[0]) inside = !inside;
          }
        });
      });
      return inside;
    }

    async function loadPatches() {
      var body = await api.json(config.api.patches + '?' + queryString(), { headers: { Accept: 'application/geo+json' } });
      var features = body.features || [];
      patchGroup.clearLayers();
      patchEntries = {};
      L.geoJSON({ type: 'FeatureCollection', features: features }, {
        pane: 'gp-patches',
        coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
        style: patchStyle,
        onEachFeature: function (feature, layer) {
          layer.on('add', function () {
            var node = layer.getElement && layer.getElement();
            if (node) { node.setAttribute('data-id', String(feature.id)); node.setAttribute('data-rule', feature.properties.rule); }
          });
          var id = String(feature.id);
          var hit = L.geoJSON(feature, {
            pane: 'gp-patch-hits', coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
            style: function () {
              return { pane: 'gp-patch-hits', color: '#000', opacity: 0, weight: HIT_WIDTH, fill: true, fillOpacity: 0,
                className: 'gp-patch-hit' };
            },
          });
          hit.on('add', function () {
            hit.eachLayer(function (part) {
              var node = part.getElement && part.getElement();
              if (node) node.setAttribute('data-id', id);
            });
          });
          hit.on('click', function (event) { openPatch(patchAt(event.latlng, id)); });
          hit.bindTooltip(tooltipFor(feature.properties), { sticky: true });
          layer.on('click', function (event) { openPatch(patchAt(event.latlng, id)); });
          patchEntries[id] = { feature: feature, layer: layer, hit: hit };
        },
      });
      applyRuleFilter();
      fillLegend(features);
      var settings = '（最小面积 ' + thresholds.min_area_m2 + ' m²，最小宽度 ' + thresholds.min_width_m + ' m）';
      lib.setStatus(count, '共 ' + features.length + ' 个冲突图斑' + settings);
      return features;
    }

    // Show only the patches of the chosen rule (all without one), and say so.
    function applyRuleFilter() {
      patchGroup.clearLayers();
      var shown = 0;
      Object.keys(patchEntries).forEach(function (id) {
        var entry = patchEntries[id];
        if (ruleFilter && entry.feature.properties.rule !== ruleFilter) return;
        patchGroup.addLayer(entry.layer);
        patchGroup.addLayer(entry.hit);
        shown += 1;
      });
      var note = byId('gp-filter');
      note.hidden = !ruleFilter;
      if (ruleFilter) {
        byId('gp-filter-text').textContent = '只显示：' + rules[ruleFilter].title + '（' + shown + ' 个）';
      }
      document.querySelectorAll('#gp-by-rule tbody tr').forEach(function (tr) {
        tr.classList.toggle('gp-selected', tr.getAttribute('data-rule') === ruleFilter);
      });
    }

    // The map moves to the patches shown (a rule's, after a click on it in the totals).
    function zoomToShownPatches() {
      var bounds = L.latLngBounds([]);
      Object.keys(patchEntries).forEach(function (id) {
        var entry = patchEntries[id];
        if (patchGroup.hasLayer(entry.layer)) bounds.extend(entry.layer.getBounds());
      });
      if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 16, padding: [40, 40], animate: false });
    }

    byId('gp-filter-clear').addEventListener('click', function () { ruleFilter = null; applyRuleFilter(); });

    async function loadSummary() {
      var summary = await api.json(config.api.summary + '?' + queryString());
      var byRule = byId('gp-by-rule').tBodies[0];
      byRule.replaceChildren();
      summary.by_rule.forEach(function (item) {
        var rule = rules[item.rule] || { color: '#333', title: item.title };
        var name = document.createElement('td');
        var pick = button('', 'gp-rule-button', function () {
          ruleFilter = ruleFilter === item.rule ? null : item.rule;
          applyRuleFilter();
          if (ruleFilter) zoomToShownPatches();
        });
        pick.appendChild(lib.swatch(rule.color));
        pick.appendChild(el('span', null, item.title || item.rule));
        pick.title = item.rule;
        name.appendChild(pick);
        var severity = document.createElement('td');
        severity.appendChild(el('span', 'gp-sev gp-sev-' + item.severity, config.severities[item.severity] || item.severity));
        var tr = row([name, severity, { text: String(item.patches), num: true },
          { text: hectares(item.area_m2), num: true }, { text: hectares(item.area_ellipsoid_m2), num: true }]);
        tr.setAttribute('data-rule', item.rule);
        byRule.appendChild(tr);
      });
      var byTown = byId('gp-by-town').tBodies[0];
      byTown.replaceChildren();
      summary.by_town.forEach(function (item) {
        var tr = row([item.town, { text: String(item.patches), num: true }, { text: String(item.high), num: true },
          { text: String(item.medium), num: true }, { text: String(item.low), num: true },
          { text: hectares(item.area_m2), num: true }]);
        tr.setAttribute('data-town', item.town);
        byTown.appendChild(tr);
      });
      applyRuleFilter();
      return summary;
    }

    byId('gp-thresholds').addEventListener('submit', function (event) {
      event.preventDefault();
      thresholds = { min_area_m2: byId('gp-min-area').value, min_width_m: byId('gp-min-width').value };
      lib.setStatus(count, '正在计算…');
      Promise.all([loadPatches(), loadSummary()]).catch(failed(count));
    });

    session.downloads('data-download', byId('gp-download-status'), function (format) {
      return {
        url: '/api/overlaps.' + format + '?' + queryString(ruleFilter ? { rule: ruleFilter } : {}),
        filename: 'conflict_patches.' + format,
        busy: '正在生成…',
      };
    });

    // ---------------------------------------------------------------- one patch
    var tabs = ['summary', 'patch', 'site'];
    function showTab(name) {
      tabs.forEach(function (tab) {
        byId('gp-tab-' + tab).setAttribute('aria-selected', String(tab === name));
        byId('gp-panel-' + tab).hidden = tab !== name;
      });
    }
    tabs.forEach(function (tab) { byId('gp-tab-' + tab).addEventListener('click', function () { showTab(tab); }); });

    function select(id) {
      var previous = selectedId;
      selectedId = id;
      lib.reselect(patchEntries, patchGroup, previous, id, patchStyle);
    }

    async function openPatch(id, options) {
      showTab('patch');
      var panel = byId('gp-patch');
      byId('gp-patch-empty').hidden = true;
      select(id);
      history.replaceState(null, '', '#' + PATCH_PARAM + '=' + encodeURIComponent(id));
      var detail;
      try {
        detail = await api.json(config.api.patch + encodeURIComponent(id) + '?' + queryString());
      } catch (error) {
        if (error instanceof AuthError) { expire(error.message); return; }
        panel.replaceChildren(el('p', 'gp-error', '无法打开图斑 ' + id + '：' + error.message));
        panel.setAttribute('data-id', id);
        return;
      }
      if (selectedId !== id) return; // another patch was clicked meanwhile
      showSources(detail.sources);
      panel.replaceChildren(patchDetail(detail));
      panel.setAttribute('data-id', id);
      var entry = patchEntries[id];
      if (options && options.zoom && entry) {
        map.fitBounds(entry.layer.getBounds(), { maxZoom: 16, padding: [60, 60], animate: false });
      }
    }

    // The two source features, outlined over the map (A dashed blue, B dotted black).
    function showSources(sources) {
      sourceGroup.clearLayers();
      sources.forEach(function (source) {
        if (!source.feature) return;
        var style = SOURCE_STYLES[source.side];
        L.geoJSON(source.feature, {
          pane: 'gp-sources',
          interactive: false,
          coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
          style: function () {
            return { pane: 'gp-sources', color: style.color, weight: 2.5, dashArray: style.dashArray, fill: false,
              className: 'gp-source gp-source-' + source.side, interactive: false };
          },
          onEachFeature: function (feature, layer) {
            layer.on('add', function () {
              var node = layer.getElement && layer.getElement();
              if (node) node.setAttribute('data-id', source.id);
            });
          },
        }).addTo(sourceGroup);
      });
    }

    function patchDetail(detail) {
      var props = detail.patch.properties;
      var rule = detail.rule;
      var root = el('article', 'gp-patch-detail');
      root.appendChild(el('h2', 'gp-subtitle gp-patch-name', patchName(props)));
      root.appendChild(el('p', 'gp-patch-code', '图斑编号 ' + props.patch_id));
      var meta = el('p', 'gp-patch-meta');
      meta.appendChild(el('span', 'gp-sev gp-sev-' + rule.severity, '严重程度：' + (config.severities[rule.severity] || rule.severity)));
      meta.appendChild(el('code', null, rule.code));
      if ((rules[rule.code] || {}).synthetic) meta.appendChild(S.syntheticTag(config.syntheticLabel));
      root.appendChild(meta);
      var village = detail.village_name
        ? detail.village_name + '（' + props.village_code + '）' : props.village_code;
      root.appendChild(S.definitionList('gp-facts', [
        ['图斑编号', props.patch_id],
        ['面积（平面）', fmtNumber(props.area_m2, 1) + ' m²'],
        ['面积（椭球）', fmtNumber(props.area_ellipsoid_m2, 1) + ' m²'],
        ['镇街', props.town],
        ['村（社区）', village],
        ['规则说明', rule.description],
        ['依据', rule.basis],
      ]));
      root.appendChild(el('h3', 'gp-subtitle', '源要素'));
      var list = el('ul', 'gp-sources');
      detail.sources.forEach(function (source) { list.appendChild(sourceItem(source)); });
      root.appendChild(list);
      if (rule.relation === 'difference') {
        var other = cfg.layers[props.layer_b];
        root.appendChild(el('p', 'gp-hint', '差集规则：图斑是甲要素位于' + (other ? other.title : '对照图层') +
          '之外的部分，没有单一的乙要素。'));
      }
      root.appendChild(markSection(detail));
      return root;
    }

    // A source feature: its layer, id and the first few fields (planners see private ones too), and a zoom link.
    function sourceItem(source) {
      var item = el('li', 'gp-source-item');
      item.setAttribute('data-side', source.side);
      item.setAttribute('data-id', source.id);
      var head = el('p', 'gp-source-head');
      head.appendChild(lib.swatch(SOURCE_STYLES[source.side].color));
      head.appendChild(el('span', null, (source.side === 'a' ? '甲 · ' : '乙 · ') + source.title + ' '));
      head.appendChild(el('strong', 'gp-source-id', source.id));
      if (source.synthetic) head.appendChild(S.syntheticTag('示意'));
      item.appendChild(head);
      if (!source.feature) {
        item.appendChild(el('p', 'gp-hint', '该要素已不在图层中（图层已修改）。'));
        return item;
      }
      var layerConfig = cfg.layers[source.layer];
      var props = source.feature.properties || {};
      var pairs = (layerConfig ? layerConfig.fields : [])
        .filter(function (field) { return field.name !== source.id_field; })
        .slice(0, 5)
        .map(function (field) { return [field.label, lib.formatValue(props[field.name])]; });
      item.appendChild(S.definitionList('gp-facts', pairs));
      item.appendChild(button('定位', 'gp-button gp-small', function () {
        var bounds = L.geoJSON(source.feature, { coordsToLatLng: lib.coordsToLatLng(config.displayCrs) }).getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 16, padding: [40, 40] });
      }));
      return item;
    }

    // The current mark, its history (oldest first, as the server keeps it) and the form for a new one.
    function markSection(detail) {
      var section = el('section', 'gp-marks');
      section.appendChild(el('h3', 'gp-subtitle', '标记'));
      var current = el('p', 'gp-mark-current');
      current.setAttribute('data-status', detail.mark ? detail.mark.status : '');
      current.textContent = detail.mark
        ? '当前：' + detail.mark.status_title + ' · ' + detail.mark.actor + ' · ' + detail.mark.at
        : '当前：未标记';
      section.appendChild(current);
      if (detail.mark && detail.mark.note) section.appendChild(el('p', 'gp-mark-note', detail.mark.note));
      if (detail.history.length) {
        var past = el('ol', 'gp-history');
        detail.history.forEach(function (mark) {
          var item = el('li', null);
          item.appendChild(el('span', 'gp-history-head', mark.at + ' · ' + mark.actor + ' · ' + mark.status_title));
          if (mark.note) item.appendChild(el('span', 'gp-history-note', mark.note));
          past.appendChild(item);
        });
        var wrap = el('details', 'gp-history-wrap');
        wrap.appendChild(el('summary', null, '标记历史（' + detail.history.length + ' 条）'));
        wrap.appendChild(past);
        wrap.open = true;
        section.appendChild(wrap);
      }
      section.appendChild(markForm(detail));
      return section;
    }

    function markForm(detail) {
      var id = detail.patch.id;
      var form = el('form', 'gp-mark-form');
      form.id = 'gp-mark-form';
      var status = document.createElement('select');
      status.id = 'gp-mark-status';
      status.required = true;
      config.statuses.forEach(function (s) { status.appendChild(new Option(s.title, s.value)); });
      if (detail.mark) status.value = detail.mark.status;
      var note = document.createElement('textarea');
      note.id = 'gp-mark-note';
      note.maxLength = 2000;
      note.rows = 3;
      note.placeholder = '说明（可选）：依据、处理意见';
      var statusLabel = el('label', null, '状态');
      statusLabel.htmlFor = status.id;
      var noteLabel = el('label', null, '说明');
      noteLabel.htmlFor = note.id;
      var save = el('button', 'gp-button gp-primary', '保存标记');
      save.type = 'submit';
      var message = el('p', 'gp-hint');
      message.setAttribute('role', 'status');
      [statusLabel, status, noteLabel, note, save, message].forEach(function (node) { form.appendChild(node); });
      form.addEventListener('submit', async function (event) {
        event.preventDefault();
        save.disabled = true;
        lib.setStatus(message, '正在保存…');
        try {
          await api.json(config.api.patch + encodeURIComponent(id) + '/mark', {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ status: status.value, note: note.value }),
          });
          await Promise.all([loadPatches(), loadSummary()]); // the marks changed: fresh tables (new ETags)
          await openPatch(id);
        } catch (error) {
          save.disabled = false;
          failed(message)(error);
        }
      });
      return form;
    }

    // ---------------------------------------------------------------- site check
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
      var ring = drawing.vertices().map(function (ll) { return displayToLonLat(lib, config.displayCrs, ll); });
      ring.push(ring[0]);
      return { type: 'Feature', properties: { name: '地图上绘制的地块' },
        geometry: { type: 'Polygon', coordinates: [ring] } };
    }

    // POST the last site to /api/compliance as JSON (format 'json') or as the printable report ('html').
    function checkRequest(site, format) {
      var url = config.api.compliance + '?format=' + format;
      if (site.body) {
        return api.request(url, { method: 'POST', headers: { 'Content-Type': 'application/geo+json' },
          body: JSON.stringify(site.body) });
      }
      var form = new FormData();
      form.append('file', site.file, site.file.name);
      if (site.crs) form.append('crs', site.crs);
      return api.request(url, { method: 'POST', body: form });
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
        if (error instanceof AuthError) { expire(error.message); return; }
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
        if (error instanceof AuthError) { expire(error.message); return; }
        lib.setStatus(drawStatus, '报告生成失败：' + error.message, true);
      });
    }

    // ---------------------------------------------------------------- go
    session.resume();
  }

  // ------------------------------------------------------------------ /planner/report
  // Receives the report's HTML from the planner page that opened this tab (same origin only) and shows it as a
  // blob: document, which inherits this page's policy: the report's inline styles apply, no script runs.
  function reportViewer() {
    var status = document.getElementById('gp-viewer-status'); // (this page has no session script)
    if (!window.opener) {
      status.textContent = '请在“多规合一冲突图斑”页面的选址审查中打开报告。';
      return;
    }
    window.addEventListener('message', function (event) {
      if (event.origin !== window.location.origin || event.source !== window.opener) return;
      if (!event.data || event.data.type !== 'geoplan-report' || typeof event.data.html !== 'string') return;
      var url = URL.createObjectURL(new Blob([event.data.html], { type: 'text/html;charset=utf-8' }));
      window.location.replace(url);
    });
    window.opener.postMessage({ type: 'geoplan-report-ready' }, window.location.origin);
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { plannerMap: plannerMap, reportViewer: reportViewer });
})();
