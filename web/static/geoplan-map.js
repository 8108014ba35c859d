/*
 * geoplan map pages: the behaviour behind the folium-built skeletons.
 *
 * folium renders the map, its empty layer groups and the legend, then makes one call:
 *   GeoplanMap.projectMap(map, {district, projects}, config)   on /            (the public project map)
 *   GeoplanMap.layerMap(map, {district?, layer}, config)        on /layers/x    (one public layer)
 * The features come from the OGC API (anonymous fetch = public fields only); nothing is embedded in the HTML.
 * A layer larger than config.largeLayer.maxFeaturesWholeLayer is never fetched whole: it is drawn from vector
 * tiles (geoplan-tiles.js), or over a GCJ-02 basemap from the features in the map's view (geoplan-by-view.js).
 *
 * The map scripts, in load order (map_page.html), each adding to window.GeoplanMap and GeoplanMap.lib:
 *   geoplan-gcj02.js    the GCJ-02 display shift (wgs84ToGcj02, coordsToLatLng, displayToLonLat)
 *   geoplan-map.js      this file: fetching, text-only DOM helpers, GeoJSON layers, controls, the two pages
 *   geoplan-by-view.js  a large layer fetched by the map's view (loadByView, viewBbox)
 * then the page's own: geoplan-tiles.js, geoplan-planner.js (and its parts), geoplan-coverage.js.
 *
 * SECURITY: feature properties are user data. They reach the DOM only as text (textContent, new Option)
 * inside elements built with createElement, and popups get DOM nodes, never HTML strings. Keep it that way:
 * no innerHTML, insertAdjacentHTML or string-built markup in this file (a test checks).
 */
(function () {
  'use strict';

  var coordsToLatLng = window.GeoplanMap.lib.coordsToLatLng; // geoplan-gcj02.js, loaded first

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
  // fetched whole; a larger one only by the map's view (loadByView in geoplan-by-view.js), so no page ever holds
  // all of it.
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
      var byView = window.GeoplanMap.lib.loadByView(map, groups.layer, layerConfig, config, {
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

  // Coverage classes as the API gives them ({upper, lower, colors, noDataColor}), shared by the coverage and
  // life-circle pages. A % belongs to the first class whose upper bound holds it, as the server bins.
  function classOf(classes, value) {
    if (typeof value !== 'number' || !isFinite(value) || !classes.upper.length) return null;
    for (var i = 0; i < classes.upper.length; i++) if (value <= classes.upper[i]) return i;
    return classes.upper.length - 1;
  }
  function classColor(classes, cls) {
    return cls === null || cls === undefined ? classes.noDataColor : classes.colors[cls];
  }
  function percent(value, digits) {
    return value.toLocaleString('zh-CN', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  // One legend item per class: its colour, "lower – upper %" and how many villages it holds (`counts`); the exact
  // bounds are in data- attributes (the browser tests check every village's colour against them). Villages with
  // no people (`noData` of them) get an item of their own.
  function fillClassLegend(list, classes, counts, noData, digits) {
    function item(cls, color, name, count) {
      var li = el('li', null);
      li.setAttribute('data-class', cls);
      li.setAttribute('data-color', color);
      li.appendChild(swatch(color));
      li.appendChild(el('span', 'gp-legend-name', name));
      li.appendChild(el('span', 'gp-legend-count', String(count)));
      return li;
    }
    list.replaceChildren();
    classes.upper.forEach(function (upper, i) {
      var name = percent(classes.lower[i], digits) + ' – ' + percent(upper, digits) + '%';
      var li = item(String(i), classes.colors[i], name, counts[i]);
      li.setAttribute('data-lower', String(classes.lower[i]));
      li.setAttribute('data-upper', String(upper));
      list.appendChild(li);
    });
    if (noData) list.appendChild(item('none', classes.noDataColor, '无人口', noData));
  }
  // The district outline for orientation (a public layer, not clickable), handed to `fit` once drawn; null when
  // the page has no district layer or it could not be read (the map works without it).
  function districtOutline(map, config, headers, fit) {
    var district = config.layers.district;
    if (!district) return Promise.resolve(null);
    return fetchAll(district.url, headers).then(function (features) {
      var outline = geoJsonLayer(district, features, config.displayCrs, { interactive: false, popups: false });
      outline.addTo(map);
      if (features.length) fit(outline.getBounds());
      return outline;
    }).catch(function (error) { console.warn(error); return null; });
  }

  // lib is merged into, never replaced: geoplan-gcj02.js registered its part before, geoplan-by-view.js and
  // geoplan-tiles.js add theirs after.
  var G = Object.assign(window.GeoplanMap, { projectMap: projectMap, layerMap: layerMap, addLegend: addLegend });
  // Building blocks for the other map pages (geoplan-planner.js, geoplan-coverage.js): the same text-only DOM rules.
  Object.assign(G.lib, {
    el: el,
    addControl: addControl,
    layerSwitcher: layerSwitcher,
    reselect: reselect,
    formatValue: formatValue,
    colorFor: colorFor,
    swatch: swatch,
    setStatus: setStatus,
    fetchAll: fetchAll,
    geoJsonLayer: geoJsonLayer,
    popupContent: popupContent,
    classOf: classOf,
    classColor: classColor,
    fillClassLegend: fillClassLegend,
    districtOutline: districtOutline,
  });
})();
