/*
 * geoplan map pages: the behaviour behind the folium-built skeletons.
 *
 * folium renders the map, its empty layer groups and the legend, then makes one call:
 *   GeoplanMap.projectMap(map, {district, projects}, config)   on /            (the public project map)
 *   GeoplanMap.layerMap(map, {district?, layer}, config)        on /layers/x    (one public layer)
 * The features come from the OGC API (anonymous fetch = public fields only); nothing is embedded in the HTML.
 * A layer larger than config.largeLayer.maxFeaturesWholeLayer is never fetched whole: it is drawn from vector
 * tiles (geoplan-tiles.js), or over a GCJ-02 basemap from the features in the map's view (see loadByView).
 *
 * SECURITY: feature properties are user data. They reach the DOM only as text (textContent, new Option)
 * inside elements built with createElement, and popups get DOM nodes, never HTML strings. Keep it that way:
 * no innerHTML, insertAdjacentHTML or string-built markup in this file (a test checks).
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ GCJ-02 display shift (AMap only)
  // A port of geoplan.crs.wgs84_to_gcj02. Data stays CGCS2000 (= WGS84 at map scale) everywhere; only what is
  // drawn over AMap's GCJ-02 tiles is shifted, or it would sit ~600 m off the streets.
  var KRASOVSKY_A = 6378245.0;
  var KRASOVSKY_EE = 0.00669342162296594323;

  function outOfChina(lon, lat) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }

  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    var pi = Math.PI, x = lon - 105.0, y = lat - 35.0;
    var common = (20.0 * Math.sin(6.0 * x * pi) + 20.0 * Math.sin(2.0 * x * pi)) * 2.0 / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common;
    dlat += (20.0 * Math.sin(y * pi) + 40.0 * Math.sin(y / 3.0 * pi)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * pi) + 320.0 * Math.sin(y * pi / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common;
    dlon += (20.0 * Math.sin(x * pi) + 40.0 * Math.sin(x / 3.0 * pi)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * pi) + 300.0 * Math.sin(x / 30.0 * pi)) * 2.0 / 3.0;
    var radlat = lat / 180.0 * pi;
    var magic = 1.0 - KRASOVSKY_EE * Math.pow(Math.sin(radlat), 2);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrtmagic) * pi);
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrtmagic * Math.cos(radlat) * pi);
    return [lon + dlon, lat + dlat];
  }

  // The GeoJSON -> LatLng conversion for this page's display CRS.
  function coordsToLatLng(displayCrs) {
    if (displayCrs !== 'gcj02') return L.GeoJSON.coordsToLatLng;
    return function (coords) {
      var shifted = wgs84ToGcj02(coords[0], coords[1]);
      return L.latLng(shifted[1], shifted[0]);
    };
  }

  // ------------------------------------------------------------------ data
  // Every feature of a collection, following the OGC "next" links (same origin only). `headers` adds request
  // headers (the planner page's bearer token); cookies are never sent.
  async function fetchAll(url, headers) {
    var features = [];
    var next = url;
    var requestHeaders = Object.assign({ Accept: 'application/geo+json' }, headers || {});
    while (next) {
      var response = await fetch(next, { headers: requestHeaders, credentials: 'omit' });
      if (!response.ok) throw new Error('HTTP ' + response.status + ' for ' + next);
      var body = await response.json();
      features = features.concat(body.features || []);
      var link = (body.links || []).find(function (l) { return l.rel === 'next'; });
      next = null;
      if (link) {
        var target = new URL(link.href, window.location.href);
        if (target.origin === window.location.origin) next = target.pathname + target.search;
      }
    }
    return features;
  }

  // ------------------------------------------------------------------ DOM helpers (text only)
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatValue(value) {
    if (value === null || value === undefined || value === '') return '—';
    if (typeof value === 'boolean') return value ? '是' : '否';
    // No digit grouping: most numbers here are years and codes (2024, not 2,024).
    if (typeof value === 'number') {
      return value.toLocaleString('zh-CN', { maximumFractionDigits: 2, useGrouping: false });
    }
    return String(value);
  }

  function colorFor(style, properties) {
    if (style.categoryField) {
      var color = style.categories[properties[style.categoryField]];
      if (color) return color;
    }
    return style.color;
  }

  // A coloured square made with the CSSOM (allowed by the page's CSP, unlike style attributes).
  function swatch(color) {
    var node = el('span', 'gp-swatch-box');
    node.style.backgroundColor = color;
    node.setAttribute('aria-hidden', 'true');
    return node;
  }

  // The popup: the feature's label as a heading, then each *public* field from the config (catalogue order).
  function popupContent(layerConfig, feature, permalink) {
    var props = feature.properties || {};
    var root = el('div', 'gp-popup');
    root.appendChild(el('h3', 'gp-popup-title', formatValue(props[layerConfig.labelField])));
    var list = el('dl', 'gp-popup-fields');
    layerConfig.fields.forEach(function (field) {
      if (field.name === layerConfig.labelField) return;
      list.appendChild(el('dt', null, field.label));
      list.appendChild(el('dd', null, formatValue(props[field.name])));
    });
    root.appendChild(list);
    if (layerConfig.synthetic) root.appendChild(el('p', 'gp-popup-note', '示意数据 / synthetic'));
    if (permalink) {
      var link = el('a', 'gp-popup-link', '本项目链接');
      link.href = permalink; // a "?project=..." URL built with encodeURIComponent
      root.appendChild(link);
    }
    return root;
  }

  // One L.geoJSON for a layer, styled from the catalogue. `className` marks the SVG paths for CSS and tests.
  function geoJsonLayer(layerConfig, features, displayCrs, options) {
    var style = layerConfig.style;
    var pathStyle = function (feature) {
      var color = colorFor(style, feature.properties || {});
      return {
        color: color, fillColor: color, weight: style.weight, fillOpacity: style.fillOpacity,
        dashArray: style.dashArray, className: 'gp-feature gp-layer-' + layerConfig.name,
        interactive: options.interactive,
      };
    };
    return L.geoJSON({ type: 'FeatureCollection', features: features }, {
      interactive: options.interactive,
      coordsToLatLng: coordsToLatLng(displayCrs),
      style: pathStyle,
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, Object.assign(pathStyle(feature), { radius: style.radius }));
      },
      onEachFeature: function (feature, layer) {
        // Tag the drawn element with the feature id (a DOM attribute, never parsed as HTML).
        layer.on('add', function () {
          var node = layer.getElement && layer.getElement();
          if (node && feature.id !== undefined && feature.id !== null) node.setAttribute('data-id', String(feature.id));
        });
        if (options.popups) {
          layer.bindPopup(function () { return popupContent(layerConfig, feature, options.permalink(feature)); },
            { maxWidth: 340 });
        }
      },
    });
  }

  // The outline for orientation: drawn under everything, not clickable.
  async function drawDistrict(group, layerConfig, displayCrs) {
    var features = await fetchAll(layerConfig.url);
    var outline = geoJsonLayer(layerConfig, features, displayCrs, { interactive: false, popups: false });
    group.addLayer(outline);
    group.bringToBack();
    return outline;
  }

  function setStatus(node, text, isError) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle('gp-error', Boolean(isError));
  }

  // One feature of `entries` (key -> {feature, layer}) is selected: the one selected before and the new one are
  // restyled (`style(feature)` knows which is selected now), and the new one comes to the top of `group`.
  // Returns the new one's entry (undefined without one).
  function reselect(entries, group, previous, chosen, style) {
    [previous, chosen].forEach(function (key) {
      var entry = key && entries[key];
      if (entry) entry.layer.setStyle(style(entry.feature));
    });
    var entry = entries[chosen];
    if (entry && group.hasLayer(entry.layer)) entry.layer.bringToFront();
    return entry;
  }

  // ------------------------------------------------------------------ controls: legend, layer switcher
  // `node` as a Leaflet control at `position`; clicks and scrolls on it stay off the map.
  function addControl(map, node, position) {
    var control = L.control({ position: position });
    control.onAdd = function () {
      L.DomEvent.disableClickPropagation(node);
      L.DomEvent.disableScrollPropagation(node);
      return node;
    };
    control.addTo(map);
    return control;
  }

  // folium renders the legend <div>; this moves it into a Leaflet control so it sits on the map, foldable
  // (geoplan-map-ui.js). The planner and coverage pages pass their own legends and positions.
  function addLegend(map, node, position) {
    // Every map page has a legend: a map whose page script names it (projectMap, layerMap…) renames it later.
    if (!map.getContainer().hasAttribute('aria-label')) window.GeoplanMapUI.describe(map, '地图');
    if (node) addControl(map, window.GeoplanMapUI.collapsible(node), position || 'bottomright');
  }

  // The layer switcher (top right unless `position` says otherwise). Leaflet's own L.control.layers writes layer names as HTML; this one writes
  // text. Returns toggle(label, group, options): a checkbox line that adds the group to the map or removes it.
  // options: layer (its data-layer), checked (default true), before/after (nodes around the label), onShow.
  function layerSwitcher(map, position) {
    var box = el('div', 'leaflet-control-layers leaflet-control-layers-expanded gp-layers');
    box.setAttribute('role', 'group');
    box.setAttribute('aria-label', '图层');
    box.appendChild(el('h2', 'gp-legend-title', '图层'));
    window.GeoplanMapUI.collapsible(box); // folded on a phone, where it would cover a third of the map
    var lines = box.querySelector('.gp-legend-body') || box;
    addControl(map, box, position || 'topright');
    return function toggle(label, group, options) {
      var line = el('label', 'gp-layer-toggle');
      var input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = options.checked !== false;
      input.dataset.layer = options.layer;
      input.addEventListener('change', function () {
        if (!input.checked) { map.removeLayer(group); return; }
        group.addTo(map);
        if (options.onShow) options.onShow();
      });
      line.appendChild(input);
      (options.before || []).forEach(function (node) { line.appendChild(node); });
      line.appendChild(el('span', 'gp-layer-name', label));
      (options.after || []).forEach(function (node) { line.appendChild(node); });
      lines.appendChild(line);
      return input;
    };
  }

  // ------------------------------------------------------------------ the public project map
  async function projectMap(map, groups, config) {
    var projectsConfig = config.layers.projects;
    var param = config.permalinkParam;
    var form = document.getElementById('gp-filters');
    var search = document.getElementById('gp-search');
    var taskArea = document.getElementById('gp-task-area');
    var status = document.getElementById('gp-status');
    var town = document.getElementById('gp-town');
    var list = document.getElementById('gp-list');
    var count = document.getElementById('gp-count');
    var entries = [];   // {id, props, layer, item}
    var byId = {};
    var selectedId = null;
    var districtBounds = null; // set once the outline has loaded
    var ui = window.GeoplanMapUI;
    ui.describe(map, '项目地图', 'gp-map-alt');
    ui.keyboardPopups(map);

    function permalink(feature) {
      return '?' + param + '=' + encodeURIComponent(String(feature.id));
    }

    var outline = drawDistrict(groups.district, config.layers.district, config.displayCrs).catch(function () {
      return null; // the projects still work without the outline
    });
    var features;
    try {
      features = await fetchAll(projectsConfig.url);
    } catch (error) {
      setStatus(count, '项目数据加载失败，请稍后重试。', true);
      throw error;
    }
    features.sort(function (a, b) { return String(a.id).localeCompare(String(b.id)); });

    var all = geoJsonLayer(projectsConfig, features, config.displayCrs,
      { interactive: true, popups: true, permalink: permalink });
    all.eachLayer(function (layer) {
      var id = String(layer.feature.id);
      var entry = { id: id, props: layer.feature.properties || {}, layer: layer, item: listItem(layer.feature) };
      layer.on('popupopen', function () { markSelected(id); });
      entries.push(entry);
      byId[id] = entry;
    });
    fillTownOptions();

    // A list entry: a button with the task-area colour, the name and status · town, all as text.
    function listItem(feature) {
      var props = feature.properties || {};
      var item = el('li', 'gp-item');
      item.setAttribute('data-id', String(feature.id));
      var button = el('button', 'gp-item-button');
      button.type = 'button';
      button.appendChild(swatch(colorFor(projectsConfig.style, props)));
      var text = el('span', 'gp-item-text');
      text.appendChild(el('span', 'gp-item-name', formatValue(props.name)));
      var meta = [props.task_area, props.status, props.town].filter(function (v) { return v; }).join(' · ');
      text.appendChild(el('span', 'gp-item-meta', meta));
      button.appendChild(text);
      button.addEventListener('click', function () { select(String(feature.id)); });
      item.appendChild(button);
      return item;
    }

    function fillTownOptions() {
      var towns = {};
      entries.forEach(function (e) { if (e.props.town) towns[e.props.town] = true; });
      Object.keys(towns).sort(function (a, b) { return a.localeCompare(b, 'zh-CN'); }).forEach(function (name) {
        town.appendChild(new Option(name, name)); // Option(text, value): text, not markup
      });
    }

    function matches(entry) {
      var q = search.value.trim().toLowerCase();
      var p = entry.props;
      if (taskArea.value && p.task_area !== taskArea.value) return false;
      if (status.value && p.status !== status.value) return false;
      if (town.value && p.town !== town.value) return false;
      if (q && String(p.name || '').toLowerCase().indexOf(q) < 0 && entry.id.toLowerCase().indexOf(q) < 0) return false;
      return true;
    }

    function filtered() {
      return Boolean(search.value.trim() || taskArea.value || status.value || town.value);
    }

    // Show exactly the matching projects, on the map and in the list; with `fit`, the map moves to them (to the
    // district when nothing is filtered or nothing matches, so a filter never leaves an empty view).
    function applyFilters(fit) {
      var shown = entries.filter(matches);
      groups.projects.clearLayers();
      list.replaceChildren();
      shown.forEach(function (entry) {
        groups.projects.addLayer(entry.layer);
        list.appendChild(entry.item);
      });
      if (!shown.length) {
        setStatus(count, '没有符合条件的项目（共 ' + entries.length + ' 个），请放宽或清除筛选条件。', true);
      } else {
        setStatus(count, shown.length === entries.length
          ? '共 ' + entries.length + ' 个项目'
          : '筛选出 ' + shown.length + ' 个项目（共 ' + entries.length + ' 个）');
      }
      if (fit) fitTo(shown.length && filtered() ? groups.projects.getBounds() : districtBounds);
      return shown;
    }

    function fitTo(bounds) {
      if (bounds && bounds.isValid()) map.fitBounds(bounds, ui.fitOptions(map, { maxZoom: 16 }));
    }

    function markSelected(id) {
      selectedId = id;
      entries.forEach(function (e) { e.item.classList.toggle('gp-selected', e.id === id); });
      var entry = byId[id];
      if (entry) {
        entry.item.scrollIntoView({ block: 'nearest' });
        history.replaceState(null, '', '#' + param + '=' + encodeURIComponent(id));
      }
    }

    // Zoom to a project and open its popup; a project hidden by the filters brings them back first.
    function select(id) {
      var entry = byId[id];
      if (!entry) {
        setStatus(count, '未找到项目：' + id, true);
        return;
      }
      if (!groups.projects.hasLayer(entry.layer)) {
        // Not form.reset(): its 'reset' handler re-filters later, which would close the popup opened below.
        [search, taskArea, status, town].forEach(function (node) { node.value = ''; });
        applyFilters();
      }
      map.fitBounds(entry.layer.getBounds(), { maxZoom: 16, padding: [40, 40], animate: false });
      entry.layer.openPopup();
      markSelected(id);
    }

    function requestedId() {
      var fromQuery = new URLSearchParams(window.location.search).get(param);
      var fromHash = new URLSearchParams(window.location.hash.replace(/^#/, '')).get(param);
      return fromHash || fromQuery;
    }

    form.addEventListener('submit', function (event) { event.preventDefault(); });
    form.addEventListener('reset', function () { setTimeout(function () { applyFilters(true); }, 0); });
    [taskArea, status, town].forEach(function (node) {
      node.addEventListener('change', function () { applyFilters(true); });
    });
    search.addEventListener('input', function () { applyFilters(true); });
    window.addEventListener('hashchange', function () {
      var id = requestedId();
      if (id && id !== selectedId) select(id);
    });

    applyFilters();
    // Start with the whole district in view (the outline is the orientation); without it, the projects.
    var districtLayer = await outline;
    districtBounds = districtLayer && districtLayer.getLayers().length ? districtLayer.getBounds()
      : entries.length ? all.getBounds() : null;
    fitTo(districtBounds);
    var wanted = requestedId();
    if (wanted) select(wanted);
    // For the browser console and the tests: the map and each project's drawn layer.
    window.GeoplanMap.current = { map: map, layer: function (id) { return byId[id] && byId[id].layer; } };
    document.body.setAttribute('data-ready', 'true');
  }

  // ------------------------------------------------------------------ one layer on a map
  // A layer of at most config.largeLayer.maxFeaturesWholeLayer features (the count comes from the server) is
  // fetched whole; a larger one only by the map's view (loadByView below), so no page ever holds all of it.
  async function layerMap(map, groups, config) {
    var count = document.getElementById('gp-count');
    var layerConfig = config.layers.layer;
    window.GeoplanMapUI.describe(map, '图层地图：' + layerConfig.title, 'gp-map-alt');
    window.GeoplanMapUI.keyboardPopups(map);
    var outline = groups.district
      ? drawDistrict(groups.district, config.layers.district, config.displayCrs).catch(function () { return null; })
      : Promise.resolve(null);
    if (layerConfig.featureCount > config.largeLayer.maxFeaturesWholeLayer && tilesReady(config)) {
      await tiledLayer(map, groups.layer, layerConfig, count, outline);
      return;
    }
    if (layerConfig.featureCount > config.largeLayer.maxFeaturesWholeLayer) { // GCJ-02 display: GeoJSON by view
      var byView = loadByView(map, groups.layer, layerConfig, config, {
        status: function (text, isError) { setStatus(count, text, isError); },
        // Ready when a view has settled and the outline is drawn (as on the whole-layer path below).
        settled: function () { outline.then(function () { document.body.setAttribute('data-ready', 'true'); }); },
      });
      window.GeoplanMap.current = { map: map, layer: function () { return groups.layer; }, view: byView.view };
      await byView.first;
      return;
    }
    var features;
    try {
      features = await fetchAll(layerConfig.url);
    } catch (error) {
      setStatus(count, '数据加载失败，请稍后重试。', true);
      throw error;
    }
    var drawn = geoJsonLayer(layerConfig, features, config.displayCrs,
      { interactive: true, popups: true, permalink: function () { return null; } });
    groups.layer.addLayer(drawn);
    setStatus(count, '共 ' + features.length + ' 个要素');
    var districtLayer = await outline;
    var bounds = features.length ? drawn.getBounds() : districtLayer && districtLayer.getBounds();
    if (bounds && bounds.isValid()) map.fitBounds(bounds, window.GeoplanMapUI.fitOptions(map, { maxZoom: 15 }));
    window.GeoplanMap.current = { map: map, layer: function () { return drawn; } };
    document.body.setAttribute('data-ready', 'true');
  }

  function tilesReady(config) {
    var lib = window.GeoplanMap.lib;
    return Boolean(lib.tilesFit) && lib.tilesFit(config);
  }

  // A large layer as vector tiles (geoplan-tiles.js): the server sends each tile's features, clipped, only for
  // the tiles in view, at every zoom. Ready once the first tiles are drawn and the outline is there.
  async function tiledLayer(map, group, layerConfig, count, outline) {
    var grid = window.GeoplanMap.lib.vectorTileLayer(layerConfig, {});
    var extent = layerConfig.extent;
    if (extent) map.fitBounds([[extent[1], extent[0]], [extent[3], extent[2]]], { animate: false });
    var loaded = new Promise(function (resolve) { grid.once('load', resolve); });
    grid.on('tileerror', function () { setStatus(count, '部分瓦片加载失败，请稍后重试。', true); });
    group.addLayer(grid);
    setStatus(count, '共 ' + layerConfig.featureCount + ' 个要素（矢量瓦片，随视图加载）');
    window.GeoplanMap.current = { map: map, layer: function () { return group; }, tiles: grid };
    await Promise.all([loaded, outline]);
    document.body.setAttribute('data-ready', 'true');
  }

  // ------------------------------------------------------------------ large layers: only what is in view
  var VIEW_DEBOUNCE_MS = 150; // one request after a burst of moves (wheel zoom, key pans), not one per step
  var BBOX_DECIMALS = 5;      // ~1 m: rounded outward, so a view revisited asks the same URL and revalidates (ETag)

  // The map's view, padded, as the bbox the OGC API filters by: lon/lat in the data's CRS (CGCS2000 = WGS84 at map
  // scale), rounded outward. Over AMap the view is in GCJ-02 (display) coordinates; its shift is undone with the
  // offset at the view centre. That offset changes by < 2 m per km around Gaoming, so at the edges of a ~15 km view
  // the error is ~15 m: far less than the padding (10% of the view on each side), so no feature is missed.
  function viewBbox(map, displayCrs, padding) {
    var b = map.getBounds().pad(padding);
    var dx = 0, dy = 0;
    if (displayCrs === 'gcj02') {
      // c is where the centre is drawn; its CGCS2000 position w satisfies gcj(w) = c. One fixed-point step finds
      // w to centimetres (w ≈ c − offset(c)); the offset used is the one at w.
      var c = map.getCenter();
      var shifted = wgs84ToGcj02(c.lng, c.lat);
      var w = [2 * c.lng - shifted[0], 2 * c.lat - shifted[1]];
      var back = wgs84ToGcj02(w[0], w[1]);
      dx = back[0] - w[0];
      dy = back[1] - w[1];
    }
    var scale = Math.pow(10, BBOX_DECIMALS);
    function down(v, limit) { return Math.max(limit, Math.floor(v * scale) / scale).toFixed(BBOX_DECIMALS); }
    function up(v, limit) { return Math.min(limit, Math.ceil(v * scale) / scale).toFixed(BBOX_DECIMALS); }
    return [down(b.getWest() - dx, -180), down(b.getSouth() - dy, -90),
      up(b.getEast() - dx, 180), up(b.getNorth() - dy, 90)].join(',');
  }

  // A notice over the top centre of the map (role=status, so screen readers announce it). Text only; positioned
  // through the CSSOM, which the page's CSP allows (style attributes it would not).
  function mapNotice(map) {
    var node = el('div', 'gp-map-notice leaflet-bar');
    node.setAttribute('role', 'status');
    Object.assign(node.style, {
      position: 'absolute', top: '10px', left: '50%', transform: 'translateX(-50%)', zIndex: '1000',
      padding: '4px 12px', background: '#fff', color: '#1f2933', whiteSpace: 'nowrap', fontSize: '14px',
    });
    node.hidden = true;
    L.DomEvent.disableClickPropagation(node);
    map.getContainer().appendChild(node);
    return function (text) {
      node.textContent = text || '';
      node.hidden = !text;
    };
  }

  // A feature's identity between two views: its whole JSON, so a feature still in view keeps its drawn layer (and
  // an open popup: a popup's auto-pan moves the map, which must not close it) while an edited one is redrawn.
  function featureKeys(features) {
    var seen = {};
    return features.map(function (feature) {
      var key = JSON.stringify(feature);
      seen[key] = (seen[key] || 0) + 1;
      return seen[key] > 1 ? key + '#' + seen[key] : key;
    });
  }

  // options: headers (added to each request), status(text, isError) for the count line, settled(state) after
  // each view load, active() -> false to skip loading while the layer is switched off. Returns {view, first}:
  // view() is the state below (for tests and the console), first the promise of the first load.
  function loadByView(map, group, layerConfig, config, options) {
    var policy = config.largeLayer;
    var status = options.status || function () {};
    var total = layerConfig.featureCount;
    var notice = mapNotice(map);
    var drawn = new Map();       // feature key -> its Leaflet layer (in `group`)
    var controller = null;       // the request in flight, aborted when the view moves on
    var timer = null;
    // What the tests (and the console) can read: seq counts view loads started, settled the last one finished.
    var view = { seq: 0, settled: 0, state: 'idle', bbox: null, matched: null, returned: 0 };

    // Draw exactly `features`: remove what left the view, add what entered it, keep the rest.
    function replaceFeatures(features) {
      var keys = featureKeys(features);
      var wanted = new Set(keys);
      drawn.forEach(function (layer, key) {
        if (!wanted.has(key)) { group.removeLayer(layer); drawn.delete(key); }
      });
      var added = [], addedKeys = [];
      features.forEach(function (feature, i) {
        if (!drawn.has(keys[i])) { added.push(feature); addedKeys.push(keys[i]); }
      });
      if (!added.length) return;
      var fresh = geoJsonLayer(layerConfig, added, config.displayCrs,
        { interactive: true, popups: true, permalink: function () { return null; } });
      fresh.getLayers().forEach(function (layer, i) {
        fresh.removeLayer(layer); // `fresh` only styled them: let go, so it does not keep a whole batch alive
        drawn.set(addedKeys[i], layer);
        group.addLayer(layer);
      });
    }

    function settle(seq, state) {
      view.state = state;
      view.settled = seq;
      if (options.settled) options.settled(state);
    }

    async function load() {
      timer = null;
      if (options.active && !options.active()) return; // switched off: load when switched on (refresh)
      var seq = ++view.seq;
      if (controller) controller.abort();
      controller = null;
      if (map.getZoom() < policy.minZoom) {
        replaceFeatures([]);
        view.bbox = null; view.matched = null; view.returned = 0;
        notice('图层要素较多，请放大地图查看');
        status('共 ' + total + ' 个要素；放大地图后按视图加载');
        settle(seq, 'zoom-in');
        return;
      }
      var bbox = viewBbox(map, config.displayCrs, policy.viewPadding);
      var url = layerConfig.itemsUrl + '?bbox=' + bbox + '&limit=' + policy.viewLimit; // numbers only: no escaping
      controller = new AbortController();
      view.state = 'loading';
      var body;
      try {
        // Default cache mode: the browser revalidates a URL it has seen with If-None-Match (the API sends ETags).
        var response = await fetch(url, {
          headers: Object.assign({ Accept: 'application/geo+json' }, options.headers || {}),
          credentials: 'omit', signal: controller.signal,
        });
        if (!response.ok) throw new Error('HTTP ' + response.status + ' for ' + url);
        body = await response.json();
      } catch (error) {
        if (seq !== view.seq) return; // aborted or superseded: a newer view is loading
        status('数据加载失败，请稍后重试。', true);
        settle(seq, 'error');
        console.error(error);
        return;
      }
      if (seq !== view.seq) return; // a stale answer for a view the map has left
      var features = body.features || [];
      replaceFeatures(features);
      view.bbox = bbox; view.matched = body.numberMatched; view.returned = features.length;
      var capped = typeof body.numberMatched === 'number' && body.numberMatched > features.length;
      notice(capped ? '仅显示前 ' + features.length + ' 个要素，请放大' : '');
      status('共 ' + total + ' 个要素；当前视图' + (capped
        ? '显示前 ' + features.length + ' 个（视图内共 ' + body.numberMatched + ' 个）'
        : ' ' + features.length + ' 个'));
      settle(seq, capped ? 'capped' : 'drawn');
    }

    function schedule() {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(load, VIEW_DEBOUNCE_MS);
    }

    // Start over the whole layer (its extent comes with the page); usually that is below the minimum zoom, so
    // the first thing shown is the notice, and the first request is made when the user zooms in. A page with
    // several layers (the planner map) keeps its own view: options.fit === false.
    var extent = layerConfig.extent;
    if (extent && options.fit !== false) {
      var toLatLng = coordsToLatLng(config.displayCrs);
      map.fitBounds(L.latLngBounds(toLatLng([extent[0], extent[1]]), toLatLng([extent[2], extent[3]])),
        { animate: false });
    }
    map.on('moveend', schedule);
    return {
      view: function () { return Object.assign({ pending: timer !== null }, view); },
      first: load(),
      refresh: schedule,
    };
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, {
    projectMap: projectMap,
    layerMap: layerMap,
    addLegend: addLegend,
    wgs84ToGcj02: wgs84ToGcj02,
    // Building blocks for the other map pages (geoplan-planner.js, geoplan-coverage.js): the same text-only DOM rules.
    lib: {
      el: el,
      addControl: addControl,
      layerSwitcher: layerSwitcher,
      reselect: reselect,
      formatValue: formatValue,
      colorFor: colorFor,
      swatch: swatch,
      setStatus: setStatus,
      coordsToLatLng: coordsToLatLng,
      wgs84ToGcj02: wgs84ToGcj02,
      fetchAll: fetchAll,
      geoJsonLayer: geoJsonLayer,
      popupContent: popupContent,
      loadByView: loadByView,
      viewBbox: viewBbox,
    },
  });
})();
