/*
 * geoplan reference basemap: what every map page draws under its own data, from the store itself, offline.
 *
 * new_map (web/maps/offline.py) makes one call before the page's own script:
 *   GeoplanMap.basemap(map, {kind, reference: 'full'|'outlines'|'off', referenceUrl, vectorTiles})
 * and this script adds, in panes below Leaflet's overlay pane and never interactive:
 *   - water areas and waterways (blue), roads by class (minor classes only from some zoom), as the OGC API's
 *     vector tiles of the store's layers, each zoom's road tiles filtered to its classes: 'full' only;
 *   - district, town and village outlines (towns stronger) from /basemap/reference.json;
 *   - town names (the special units ranked lower) and, from zoom 12, village names, at points the server placed
 *     inside each area, culled on every zoom so a label overlapping a higher-ranked one is hidden;
 *   - the credit for roads and water (© OpenStreetMap contributors, or the synthetic mark);
 *   - street names from zoom 16 (the longest drawn piece of each named street);
 *   - a metric scale bar (folium's also shows miles).
 * A vector tile basemap (a .pbf package or intranet URL) is drawn with a plain style per geometry type.
 *
 * SECURITY: names are data: they reach the DOM only through textContent, never as HTML (a test checks).
 */
(function () {
  'use strict';

  var PANES = [
    ['gpBaseTiles', 210],
    ['gpBaseWater', 230],
    ['gpBaseRoads', 240],
    ['gpBaseBounds', 250],
    // Names above the data (overlay pane 400: a choropleth's fill would hide them) but below markers (600) and
    // popups; the pane takes no pointer events, so a click on a name reaches the feature under it.
    ['gpBaseLabels', 450],
  ];
  // Width and colour per road class; minZoom: below it the class is not in the tiles asked for (the filter).
  var ROAD_CLASSES = {
    '高速公路': { color: '#d9822b', weight: 3.5, minZoom: 0 },
    '主干路': { color: '#e0a84a', weight: 2.5, minZoom: 0 },
    '次干路': { color: '#a0a0a0', weight: 1.8, minZoom: 12 },
    '支路': { color: '#b4b4b4', weight: 1.2, minZoom: 13 },
    '村道': { color: '#bfb294', weight: 1.1, minZoom: 13 },
    '其他': { color: '#c4c4c4', weight: 0.9, minZoom: 14 },
    '步行道': { color: '#c4c4c4', weight: 0.8, minZoom: 15, dashArray: '3 3' },
  };
  var WATER_COLOR = '#6fa8d6';
  var WATER_FILL = '#b3d4ee';
  var VIEW_LIMIT = 5000;
  var TILE_MAX_ZOOM = 16; // deeper zooms scale zoom 16's tiles: a tile unit there is ~4 cm
  var LABEL_GAP = 4; // px kept free around each label
  var ROAD_NAME_ZOOM = 16; // street names only when streets are far enough apart to carry them
  var ROAD_NAME_RANK = 4;
  var CREDIT_OSM = '© OpenStreetMap contributors';
  var CREDIT_SYNTHETIC = '示意数据 / synthetic';

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function makePanes(map) {
    var renderers = {};
    PANES.forEach(function (entry) {
      var pane = map.getPane(entry[0]) || map.createPane(entry[0]);
      pane.style.zIndex = String(entry[1]);
      pane.style.pointerEvents = 'none';
      renderers[entry[0]] = L.svg({ pane: entry[0], padding: 0.3 });
    });
    return renderers;
  }

  async function getJson(url) {
    var response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'omit' });
    if (!response.ok) throw new Error('HTTP ' + response.status + ' for ' + url);
    return response.json();
  }

  // ------------------------------------------------------------------ roads and water
  // Takes a GeoJSON feature or its properties (Leaflet.VectorGrid's style functions).
  function roadStyle(feature) {
    var properties = feature.properties || feature;
    var style = ROAD_CLASSES[properties.road_class] || ROAD_CLASSES['其他'];
    return { color: style.color, weight: style.weight, dashArray: style.dashArray || null, opacity: 0.95 };
  }

  // The road classes drawn at `zoom`, as a CQL2 filter; '' when every class is.
  function roadFilter(zoom) {
    var names = Object.keys(ROAD_CLASSES);
    var shown = names.filter(function (name) { return ROAD_CLASSES[name].minZoom <= zoom; });
    if (shown.length === names.length) return '';
    return 'road_class IN (' + shown.map(function (n) { return "'" + n + "'"; }).join(',') + ')';
  }

  // A store layer as the OGC API's vector tiles (SVG tiles: VectorGrid's canvas renderer is broken under Leaflet
  // 1.9), so a real OpenStreetMap network (~10^5 road segments) is read a tile at a time, each cached by the browser
  // (ETag). `options.filter(z)` gives the CQL2 filter of zoom z: Leaflet's L.Util.template calls a function-valued
  // option with the tile's data, so {query} becomes each tile's own '?filter=…' ('' when every feature is drawn).
  function storeTileLayer(name, options) {
    var styles = {};
    styles[name] = options.style; // VectorGrid names the style by the tile's layer, named after the collection
    var url = '/ogc/collections/' + encodeURIComponent(name) + '/tiles/WebMercatorQuad/{z}/{y}/{x}{query}';
    return L.vectorGrid.protobuf(url, {
      pane: options.pane,
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: false,
      maxNativeZoom: TILE_MAX_ZOOM,
      maxZoom: 22,
      fetchOptions: { credentials: 'omit' },
      query: function (data) {
        var filter = options.filter ? options.filter(data.z) : '';
        return filter ? '?filter=' + encodeURIComponent(filter) : '';
      },
    });
  }

  function drawLines(map, lines) {
    var drawn = {};
    if (!L.vectorGrid) { console.warn('basemap: Leaflet.VectorGrid missing: roads and water not drawn'); return drawn; }
    if (lines.water) {
      drawn.water = storeTileLayer('water', {
        pane: 'gpBaseWater',
        style: { color: WATER_COLOR, weight: 0.8, fill: true, fillColor: WATER_FILL, fillOpacity: 0.9 },
      }).addTo(map);
    }
    if (lines.waterways) {
      drawn.waterways = storeTileLayer('waterways', {
        pane: 'gpBaseWater',
        style: { color: WATER_COLOR, weight: 2, opacity: 0.9 },
      }).addTo(map);
    }
    if (lines.roads) {
      drawn.roads = storeTileLayer('roads', { pane: 'gpBaseRoads', style: roadStyle, filter: roadFilter }).addTo(map);
    }
    return drawn;
  }

  // ------------------------------------------------------------------ outlines
  function drawOutlines(renderers, reference) {
    var layers = [
      ['villages', { color: '#7f8fa6', weight: 0.7, opacity: 0.8, fill: false, dashArray: '2 3' }],
      ['towns', { color: '#6a3d9a', weight: 1.8, opacity: 0.85, fill: false }],
      ['district', { color: '#333333', weight: 2.5, opacity: 0.9, fill: false }],
    ];
    return layers.map(function (entry) {
      return L.geoJSON(reference[entry[0]], {
        style: function () { return entry[1]; },
        renderer: renderers.gpBaseBounds,
        interactive: false,
      });
    });
  }

  // ------------------------------------------------------------------ labels
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  // Names as text elements in their own pane, placed again on every zoom: shown in rank order (the server sends
  // them sorted), each only if its box is clear of every label already shown.
  var LabelLayer = L.Layer.extend({
    initialize: function (labels) {
      this._labels = labels;
      this._items = [];
      this._extra = [];
    },
    _item: function (label) {
      var node = el('span', 'gp-base-label gp-base-label-r' + label.rank, label.name);
      node.dataset.layer = label.layer;
      node.hidden = true;
      this._box.appendChild(node);
      return { label: label, el: node, size: null };
    },
    onAdd: function (map) {
      this._box = el('div', 'gp-base-labels leaflet-zoom-hide');
      map.getPane('gpBaseLabels').appendChild(this._box);
      this._items = this._labels.map(this._item, this);
      map.on('zoomend viewreset moveend', this.place, this);
      this.place();
    },
    // Labels that change with the view (street names), ranked after the areas' names.
    setExtra: function (labels) {
      this._extra.forEach(function (item) { item.el.remove(); });
      this._extra = this._box ? labels.map(this._item, this) : [];
      this.place();
    },
    onRemove: function (map) {
      map.off('zoomend viewreset moveend', this.place, this);
      this._box.remove();
    },
    place: function () {
      var map = this._map;
      if (!map) return;
      var zoom = map.getZoom();
      var view = map.getPixelBounds();
      var origin = map.getPixelOrigin();
      var placed = [];
      this._items.concat(this._extra).forEach(function (item) {
        var label = item.label;
        if (zoom < label.minZoom) { item.el.hidden = true; return; }
        var p = map.latLngToLayerPoint([label.lat, label.lon]);
        var abs = p.add(origin); // the view's pixel bounds are absolute, layer points relative to the origin
        if (!view.contains(abs)) { item.el.hidden = true; return; }
        item.el.hidden = false;
        if (!item.size) item.size = [item.el.offsetWidth, item.el.offsetHeight];
        var w = item.size[0], h = item.size[1];
        var rect = {
          left: p.x - w / 2 - LABEL_GAP, right: p.x + w / 2 + LABEL_GAP,
          top: p.y - h / 2 - LABEL_GAP, bottom: p.y + h / 2 + LABEL_GAP,
        };
        if (placed.some(function (other) { return overlaps(rect, other); })) { item.el.hidden = true; return; }
        placed.push(rect);
        L.DomUtil.setPosition(item.el, L.point(Math.round(p.x - w / 2), Math.round(p.y - h / 2)));
      });
      if (this._box) this._box.dataset.zoom = String(zoom);
    },
  });

  // The point halfway along a line (lat/lngs), `length` metres long.
  function halfway(map, points, length) {
    var left = length / 2;
    for (var i = 1; i < points.length; i++) {
      var step = map.distance(points[i - 1], points[i]);
      if (step > 0 && step >= left) {
        var t = left / step, a = points[i - 1], b = points[i];
        return L.latLng(a.lat + t * (b.lat - a.lat), a.lng + t * (b.lng - a.lng));
      }
      left -= step;
    }
    return points[points.length - 1];
  }

  // The longest piece of each named street in GeoJSON `features`, named halfway along it (a street is many
  // segments).
  function roadNames(map, features) {
    var best = {};
    features.forEach(function (feature) {
      var name = (feature.properties || {}).name;
      var geometry = feature.geometry || {};
      if (!name) return;
      var parts = geometry.type === 'LineString' ? [geometry.coordinates]
        : geometry.type === 'MultiLineString' ? geometry.coordinates : [];
      parts.forEach(function (coordinates) {
        var points = coordinates.map(function (c) { return L.latLng(c[1], c[0]); });
        var length = 0;
        for (var i = 1; i < points.length; i++) length += map.distance(points[i - 1], points[i]);
        if (!best[name] || best[name].length < length) best[name] = { points: points, length: length };
      });
    });
    return Object.keys(best).map(function (name) {
      var centre = halfway(map, best[name].points, best[name].length);
      return { name: name, lon: centre.lng, lat: centre.lat, rank: ROAD_NAME_RANK, minZoom: ROAD_NAME_ZOOM, layer: 'roads' };
    });
  }

  // Street names from ROAD_NAME_ZOOM. The tiles are drawn without their properties kept (not interactive), and at
  // that zoom the view is a few streets: one small request by the view for the named roads (name and line only),
  // after a short pause, the previous view's names replaced.
  function streetNames(map, labels) {
    var timer = null;
    var generation = 0;
    async function load() {
      timer = null;
      var mine = ++generation;
      if (map.getZoom() < ROAD_NAME_ZOOM) { labels.setExtra([]); return; }
      var b = map.getBounds().pad(0.15);
      var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); });
      var params = new URLSearchParams({
        bbox: bbox.join(','), limit: String(VIEW_LIMIT), filter: 'name IS NOT NULL', properties: 'name',
      });
      try {
        var body = await getJson('/ogc/collections/roads/items?' + params.toString());
        if (mine !== generation) return; // a newer view is already loading
        labels.setExtra(roadNames(map, body.features || []));
      } catch (error) {
        console.warn('basemap: street names not drawn', error);
      }
    }
    map.on('moveend', function () {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(load, 150);
    });
    load();
  }

  // ------------------------------------------------------------------ credit and scale
  function creditText(reference) {
    var credits = reference.credits || {};
    var lines = reference.lines || {};
    var osm = [], synthetic = [];
    Object.keys(lines).forEach(function (name) {
      if (credits[name] === 'osm') osm.push(lines[name]);
      if (credits[name] === 'synthetic') synthetic.push(lines[name]);
    });
    var parts = [];
    if (osm.length) parts.push(osm.join('、') + '：' + CREDIT_OSM);
    if (synthetic.length) parts.push(synthetic.join('、') + '：' + CREDIT_SYNTHETIC);
    return parts;
  }

  function addCredit(map, parts) {
    if (!parts.length) return;
    var control = L.control({ position: 'bottomleft' });
    control.onAdd = function () {
      var box = el('div', 'gp-base-credit leaflet-control');
      box.appendChild(el('span', 'gp-base-credit-title', '底图数据'));
      parts.forEach(function (part) { box.appendChild(el('span', 'gp-base-credit-line', part)); });
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    control.addTo(map);
  }

  // ------------------------------------------------------------------ vector tile basemaps
  // Any layer of an unknown package: areas light grey, lines grey, points small dots. VectorGrid styles by layer
  // name, so a Proxy answers every name with the same style.
  function vectorTileBasemap(map, tiles, renderers) {
    if (!L.vectorGrid) { console.warn('basemap: Leaflet.VectorGrid missing'); return null; }
    var style = { weight: 0.8, color: '#9a9a9a', fill: true, fillColor: '#e4e4dc', fillOpacity: 0.6, radius: 1.5 };
    var styles = new Proxy({}, { get: function () { return style; } });
    return L.vectorGrid.protobuf(tiles.url, {
      pane: 'gpBaseTiles',
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: false,
      minZoom: 0,
      maxNativeZoom: tiles.maxZoom,
      maxZoom: 19,
      attribution: tiles.attribution || '',
    }).addTo(map);
  }

  // ------------------------------------------------------------------ entry
  function basemap(map, config) {
    L.control.scale({ imperial: false, metric: true, position: 'bottomleft' }).addTo(map);
    var state = { config: config, labels: null, lines: {}, ready: false };
    map._gpBasemap = state;
    if (config.reference === 'off' && !config.vectorTiles) { state.ready = true; return state; }
    var renderers = makePanes(map);
    if (config.vectorTiles) vectorTileBasemap(map, config.vectorTiles, renderers);
    if (config.reference === 'off') { state.ready = true; return state; }
    state.loaded = getJson(config.referenceUrl).then(function (reference) {
      drawOutlines(renderers, reference).forEach(function (layer) { layer.addTo(map); });
      if (config.reference === 'full') state.lines = drawLines(map, reference.lines || {});
      state.labels = new LabelLayer(reference.labels || []).addTo(map);
      if (state.lines.roads) streetNames(map, state.labels);
      if (config.reference === 'full') addCredit(map, creditText(reference));
      state.ready = true;
      map.getContainer().dataset.basemap = 'ready';
      return state;
    }).catch(function (error) {
      console.warn('basemap: reference layers not drawn', error);
    });
    return state;
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { basemap: basemap });
})();
