/*
 * geoplan large layers by view: a layer too big to fetch whole, drawn over a GCJ-02 basemap (where vector tiles
 * would sit ~600 m off) from the features in the map's view only. Loaded after geoplan-map.js, whose helpers it
 * uses (GeoplanMap.lib: el, geoJsonLayer, and geoplan-gcj02.js's shift).
 *
 *   GeoplanMap.lib.loadByView(map, group, layerConfig, config, options) -> {view, first, refresh}
 *   GeoplanMap.lib.viewBbox(map, displayCrs, padding)                     -> the OGC bbox of the view, padded
 *
 * Used by layerMap (geoplan-map.js) and the planner's plan layers (geoplan-planner.js).
 *
 * SECURITY: features reach the map through geoJsonLayer (popups are DOM nodes) and the notice is text only: no
 * innerHTML, insertAdjacentHTML or string-built markup in this file (a test checks).
 */
(function () {
  'use strict';

  var lib = window.GeoplanMap.lib;
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
      var shifted = lib.wgs84ToGcj02(c.lng, c.lat);
      var w = [2 * c.lng - shifted[0], 2 * c.lat - shifted[1]];
      var back = lib.wgs84ToGcj02(w[0], w[1]);
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
    var node = lib.el('div', 'gp-map-notice leaflet-bar');
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
      var fresh = lib.geoJsonLayer(layerConfig, added, config.displayCrs,
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
      var toLatLng = lib.coordsToLatLng(config.displayCrs);
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

  Object.assign(lib, { loadByView: loadByView, viewBbox: viewBbox });
})();
