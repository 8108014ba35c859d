/*
 * geoplan map pages: the behaviour behind the folium-built skeletons.
 *
 * folium renders the map, its empty layer groups and the legend, then makes one call:
 *   GeoplanMap.projectMap(map, {district, projects}, config)   on /            (the public project map)
 *   GeoplanMap.layerMap(map, {district?, layer}, config)        on /layers/x    (one public layer)
 * The features come from the OGC API (anonymous fetch = public fields only); nothing is embedded in the HTML.
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
  // Every feature of a collection, following the OGC "next" links (same origin only).
  async function fetchAll(url) {
    var features = [];
    var next = url;
    while (next) {
      var response = await fetch(next, { headers: { Accept: 'application/geo+json' }, credentials: 'omit' });
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

  // ------------------------------------------------------------------ legend
  // folium renders the legend <div>; this moves it into a Leaflet control so it sits on the map.
  function addLegend(map, node) {
    if (!node) return;
    var control = L.control({ position: 'bottomright' });
    control.onAdd = function () {
      L.DomEvent.disableClickPropagation(node);
      L.DomEvent.disableScrollPropagation(node);
      return node;
    };
    control.addTo(map);
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

    // Show exactly the matching projects, on the map and in the list.
    function applyFilters() {
      var shown = entries.filter(matches);
      groups.projects.clearLayers();
      list.replaceChildren();
      shown.forEach(function (entry) {
        groups.projects.addLayer(entry.layer);
        list.appendChild(entry.item);
      });
      setStatus(count, shown.length === entries.length
        ? '共 ' + entries.length + ' 个项目'
        : '筛选出 ' + shown.length + ' 个项目（共 ' + entries.length + ' 个）');
      return shown;
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
    form.addEventListener('reset', function () { setTimeout(applyFilters, 0); });
    [taskArea, status, town].forEach(function (node) { node.addEventListener('change', applyFilters); });
    search.addEventListener('input', applyFilters);
    window.addEventListener('hashchange', function () {
      var id = requestedId();
      if (id && id !== selectedId) select(id);
    });

    applyFilters();
    // Start with the whole district in view (the outline is the orientation); without it, the projects.
    var districtLayer = await outline;
    var bounds = districtLayer && districtLayer.getLayers().length ? districtLayer.getBounds()
      : entries.length ? all.getBounds() : null;
    if (bounds && bounds.isValid()) map.fitBounds(bounds, { animate: false });
    var wanted = requestedId();
    if (wanted) select(wanted);
    // For the browser console and the tests: the map and each project's drawn layer.
    window.GeoplanMap.current = { map: map, layer: function (id) { return byId[id] && byId[id].layer; } };
    document.body.setAttribute('data-ready', 'true');
  }

  // ------------------------------------------------------------------ one layer on a map
  async function layerMap(map, groups, config) {
    var count = document.getElementById('gp-count');
    var layerConfig = config.layers.layer;
    var outline = groups.district
      ? drawDistrict(groups.district, config.layers.district, config.displayCrs).catch(function () { return null; })
      : Promise.resolve(null);
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
    if (bounds && bounds.isValid()) map.fitBounds(bounds, { maxZoom: 15, animate: false });
    window.GeoplanMap.current = { map: map, layer: function () { return drawn; } };
    document.body.setAttribute('data-ready', 'true');
  }

  window.GeoplanMap = {
    projectMap: projectMap,
    layerMap: layerMap,
    addLegend: addLegend,
    wgs84ToGcj02: wgs84ToGcj02,
  };
})();
