/*
 * geoplan planner map (/planner, 多规合一冲突图斑): conflict patches, their totals, the plan layers and legend.
 *
 * The page is public and empty. This script asks for a token, keeps it in sessionStorage only (it ends with the
 * tab), and fetches everything with `Authorization: Bearer …`:
 *   GET  /api/overlaps/config      the rules (colours, titles, synthetic flag) and the plan layers (fields, styles)
 *   GET  /ogc/collections/X/items  the plan layers (private ones need the token)
 *   GET  /api/overlaps[/summary]   the patches and their totals;   GET /api/overlaps/{id}  one patch in detail
 * Its other tabs are their own scripts, loaded before this one (planner.html) and called from it:
 *   geoplan-patch-detail.js  one patch's sources and marks (POST /api/overlaps/{id}/mark)
 *   geoplan-site-check.js    the site check (POST /api/compliance) and its printable report
 *   geoplan-scenario.js      scenarios (规划方案): draw into one, compare with today, adopt or discard
 * It needs geoplan-session.js (the token form, the API wrapper, downloads, DOM helpers) and the map scripts
 * (GeoplanMap.lib: GeoJSON and GCJ-02 helpers, the by-view loader, map controls).
 *
 * SECURITY: as in geoplan-map.js, every string from the server reaches the DOM as text (textContent, Option,
 * DOM nodes for popups and tooltips), never as markup: no innerHTML, insertAdjacentHTML or HTML built from
 * strings in this file (a test checks).
 */
(function () {
  'use strict';

  var PATCH_PARAM = 'patch';
  var SEVERITY_RANK = { high: 0, medium: 1, low: 2 };
  var EXEMPT_COLOR = '#9e9e9e'; // an exempt patch is drawn grey: listed, not counted
  var HIT_WIDTH = 14; // px: a thin patch (a strip along a road) is clickable within 7 px of its outline

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
        scenario: function () { return scenarios.layers(); },
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
      var exempt = el('p', 'gp-legend-note gp-legend-exempt');
      exempt.appendChild(lib.swatch(EXEMPT_COLOR));
      exempt.appendChild(document.createTextNode(' 灰色：按规则豁免的图斑（照常列出，不计入合计）'));
      box.appendChild(exempt);
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
      var colour = props.exempt ? EXEMPT_COLOR : rule.color;
      return {
        pane: 'gp-patches', color: selected ? '#000' : colour, fillColor: colour,
        weight: selected ? 3.5 : 1.5, fillOpacity: selected ? 0.75 : (props.exempt ? 0.3 : 0.55),
        dashArray: props.mark_status || props.exempt ? '5 4' : null,
        className: 'gp-patch gp-rule-' + props.rule + (props.mark_status ? ' gp-marked' : '') +
          (props.exempt ? ' gp-exempt' : ''),
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
      var point = lib.displayToLonLat(config.displayCrs, latlng);
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
      fillPatchList(features);
      applyRuleFilter();
      fillLegend(features);
      var settings = '（最小面积 ' + thresholds.min_area_m2 + ' m²，最小宽度 ' + thresholds.min_width_m + ' m）';
      var exempt = features.filter(function (f) { return f.properties.exempt; }).length;
      lib.setStatus(count, '共 ' + features.length + ' 个冲突图斑' + (exempt ? '，其中 ' + exempt + ' 个豁免' : '') + settings);
      return features;
    }

    // The list a planner reads: high first, then medium, then low, each by area (largest first); the exempt
    // patches apart and greyed, each with the basis it is exempt by. A click opens the patch.
    function fillPatchList(features) {
      var sorted = features.slice().sort(function (a, b) {
        var pa = a.properties, pb = b.properties;
        var ra = SEVERITY_RANK[pa.severity], rb = SEVERITY_RANK[pb.severity];
        if (ra !== rb) return (ra === undefined ? 9 : ra) - (rb === undefined ? 9 : rb);
        if (pa.area_m2 !== pb.area_m2) return pb.area_m2 - pa.area_m2;
        return String(a.id) < String(b.id) ? -1 : 1;
      });
      var counted = byId('gp-patch-list'), spared = byId('gp-exempt-list');
      counted.replaceChildren();
      spared.replaceChildren();
      sorted.forEach(function (feature) {
        var props = feature.properties, id = String(feature.id);
        var item = el('li');
        item.setAttribute('data-id', id);
        item.setAttribute('data-rule', props.rule);
        item.setAttribute('data-severity', props.severity);
        var open = button('', 'gp-patch-open', function () { openPatch(id, { zoom: true }); });
        open.appendChild(el('span', 'gp-sev gp-sev-' + props.severity, config.severities[props.severity] || props.severity));
        open.appendChild(document.createTextNode(' ' + patchName(props)));
        item.appendChild(open);
        if (props.exempt) {
          item.appendChild(el('span', 'gp-exempt-basis', '豁免依据：' + (props.exempt_basis || '见规则表')));
          spared.appendChild(item);
        } else {
          counted.appendChild(item);
        }
      });
      if (!counted.children.length) counted.appendChild(el('li', 'gp-hint', '无'));
      if (!spared.children.length) spared.appendChild(el('li', 'gp-hint', '无'));
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
      document.querySelectorAll('.gp-patch-list li[data-rule]').forEach(function (li) {
        li.hidden = Boolean(ruleFilter) && li.getAttribute('data-rule') !== ruleFilter;
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
      var exempt = summary.exempt || { patches: 0, area_m2: 0 };
      byId('gp-exempt-total').textContent = exempt.patches
        ? '豁免 ' + exempt.patches + ' 个图斑，' + hectares(exempt.area_m2) + ' 公顷（不计入上方合计）'
        : '没有豁免的图斑。';
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
    var tabs = ['summary', 'patch', 'site', 'scenario'];
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
      document.querySelectorAll('.gp-patch-list li[data-id]').forEach(function (li) {
        li.classList.toggle('gp-selected', li.getAttribute('data-id') === id);
      });
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
      details.sources(detail.sources);
      panel.replaceChildren(details.detail(detail));
      panel.setAttribute('data-id', id);
      var entry = patchEntries[id];
      if (options && options.zoom && entry) {
        map.fitBounds(entry.layer.getBounds(), { maxZoom: 16, padding: [60, 60], animate: false });
      }
    }

    // Its sources, facts and marks (geoplan-patch-detail.js).
    var details = window.GeoplanMap.patchDetail(map, config, {
      cfg: function () { return cfg; }, rules: rules, api: function () { return api; }, sourceGroup: sourceGroup,
      patchName: patchName, failed: failed,
      marked: async function (id) {
        await Promise.all([loadPatches(), loadSummary()]); // the marks changed: fresh tables (new ETags)
        await openPatch(id);
      },
    });

    // ---------------------------------------------------------------- site check (geoplan-site-check.js)
    var drawing = window.GeoplanMap.siteCheck(map, config, {
      api: function () { return api; }, expire: expire,
    }).drawing;

    // ---------------------------------------------------------------- scenarios (geoplan-scenario.js)
    var scenarios = window.GeoplanMap.scenarioPanel(map, config, {
      api: function () { return api; }, expire: expire, drawingTool: window.GeoplanMap.drawingTool,
      adopted: function () { return Promise.all([loadPatches(), loadSummary()]).catch(failed(count)); },
    });
    var scenariosStarted = false;
    byId('gp-tab-scenario').addEventListener('click', function () {
      if (!scenariosStarted && api) { scenariosStarted = true; scenarios.start(); }
    });

    // ---------------------------------------------------------------- go
    session.resume();
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { plannerMap: plannerMap });
})();
