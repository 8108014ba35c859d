/*
 * geoplan vector tiles: a big layer drawn from the OGC API – Tiles endpoint (Mapbox Vector Tiles) with the vendored
 * Leaflet.VectorGrid, styled and clickable like the GeoJSON layers of geoplan-map.js.
 *
 *   GeoplanMap.lib.vectorTileLayer(layerConfig, options) -> an L.VectorGrid.Protobuf
 *
 * layerConfig is the page config's layer (tilesUrl, style, fields, idField, labelField); the tile's MVT layer is
 * layerConfig.name unless options.layerName says otherwise. options: headers (the planner's bearer token),
 * pane, popups (default true), popup(feature) -> a DOM node (default GeoplanMap.lib.popupContent), style(props)
 * (extra path options), color(props), onClick(feature, event), popupPadding ([x, y] or a function giving it:
 * kept clear at the bottom right when a popup pans the map, e.g. the layer panel's width).
 *
 * Renderer: VectorGrid's default SVG tiles (L.svg.tile). Its canvas renderer calls L.DomEvent.fakeStop, which
 * Leaflet 1.9 removed, so a click on a canvas tile throws; SVG tiles also keep each feature a DOM path that the
 * browser hit-tests exactly (thin lines included) and the tests can count.
 *
 * The tiles are in Web Mercator, drawn where the data is: over a GCJ-02 basemap (AMap) they would sit ~600 m off,
 * so pages keep GeoJSON by view there (GeoplanMap.lib.loadByView) and call tilesFit(config) to choose.
 *
 * SECURITY: properties reach the DOM only through popupContent and textContent, never as markup (a test checks).
 */
(function () {
  'use strict';

  var lib = window.GeoplanMap.lib;
  var MAX_NATIVE_ZOOM = 18; // deeper zooms scale the level-18 tile (the map itself stops at 18 or 19)

  // Whether tiles can draw this page's layers: the data's own coordinates (not shifted to GCJ-02) and VectorGrid.
  function tilesFit(config) {
    return config.displayCrs !== 'gcj02' && Boolean(L.vectorGrid && L.vectorGrid.protobuf);
  }

  function vectorTileLayer(layerConfig, options) {
    options = options || {};
    var style = layerConfig.style;
    var layerName = options.layerName || layerConfig.name;
    var lines = layerConfig.geometry === 'MultiLineString';
    var grid = null;

    function pathStyle(properties) {
      var color = options.color ? options.color(properties) : lib.colorFor(style, properties);
      var base = {
        color: color, fillColor: color, weight: style.weight, opacity: 1,
        fill: !lines, fillOpacity: style.fillOpacity, dashArray: style.dashArray, radius: style.radius || 5,
        className: 'gp-feature gp-tile-feature gp-layer-' + layerConfig.name, interactive: true,
      };
      return Object.assign(base, options.style ? options.style(properties) : {});
    }

    var styles = {};
    styles[layerName] = function (properties) { return pathStyle(properties); };
    grid = L.vectorGrid.protobuf(layerConfig.tilesUrl, {
      rendererFactory: L.svg.tile,
      vectorTileLayerStyles: styles,
      interactive: true,
      pane: options.pane || 'overlayPane',
      maxNativeZoom: MAX_NATIVE_ZOOM,
      getFeatureId: function (feature) {
        var id = layerConfig.idField ? feature.properties[layerConfig.idField] : undefined;
        return id === undefined || id === null ? undefined : String(id);
      },
      // Default cache mode: the browser revalidates a tile it holds with If-None-Match (the API sends ETags).
      fetchOptions: { headers: options.headers || {}, credentials: 'omit' },
    });

    grid.on('click', function (event) {
      var feature = { properties: (event.layer && event.layer.properties) || {} };
      if (options.onClick) options.onClick(feature, event);
      if (options.popups === false) return;
      var content = options.popup ? options.popup(feature) : lib.popupContent(layerConfig, feature, null);
      var padding = typeof options.popupPadding === 'function' ? options.popupPadding() : options.popupPadding || [20, 20];
      L.popup({ maxWidth: 340, autoPanPaddingTopLeft: L.point(20, 20), autoPanPaddingBottomRight: L.point(padding) })
        .setLatLng(event.latlng).setContent(content).openOn(grid._map);
    });

    // Highlight one feature by id in every tile it spans (VectorGrid restyles the paths); none with null.
    var highlighted = null;
    grid.highlight = function (id, extra) {
      if (highlighted !== null) grid.resetFeatureStyle(highlighted);
      highlighted = id === null || id === undefined ? null : String(id);
      if (highlighted !== null) {
        grid.setFeatureStyle(highlighted, function (properties) {
          return Object.assign(pathStyle(properties), extra || { color: '#000', weight: 3.5 });
        });
      }
    };
    // The features drawn now (loaded tiles), for the tests and the console: [{id, properties}], one per piece.
    grid.drawnFeatures = function () {
      var out = [];
      Object.keys(grid._vectorTiles || {}).forEach(function (key) {
        var tile = grid._vectorTiles[key];
        Object.keys((tile && tile._features) || {}).forEach(function (id) {
          out.push({ id: id, properties: tile._features[id].feature.properties });
        });
      });
      return out;
    };
    return grid;
  }

  lib.vectorTileLayer = vectorTileLayer;
  lib.tilesFit = tilesFit;
})();
