/*
 * geoplan GCJ-02 display shift (AMap only), loaded before geoplan-map.js.
 *
 *   GeoplanMap.lib.wgs84ToGcj02(lon, lat)                -> [lon, lat] as drawn over AMap's GCJ-02 tiles
 *   GeoplanMap.lib.coordsToLatLng(displayCrs)            -> the GeoJSON -> LatLng conversion for the page's display
 *   GeoplanMap.lib.displayToLonLat(displayCrs, latlng)   -> a drawn (display) position back in CGCS2000 lon/lat
 *
 * Data stays CGCS2000 (= WGS84 at map scale) everywhere; only what is drawn over AMap is shifted, or it would sit
 * ~600 m off the streets. Pure arithmetic: this file touches no DOM.
 */
(function () {
  'use strict';

  // A port of geoplan.crs.wgs84_to_gcj02.
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

  // A drawn vertex (or a click) is a display position. Undo the shift by fixed-point iteration (the offset
  // varies slowly: three steps reach millimetres).
  function displayToLonLat(displayCrs, latlng) {
    if (displayCrs !== 'gcj02') return [latlng.lng, latlng.lat];
    var lon = latlng.lng, lat = latlng.lat;
    for (var i = 0; i < 4; i++) {
      var shifted = wgs84ToGcj02(lon, lat);
      lon += latlng.lng - shifted[0];
      lat += latlng.lat - shifted[1];
    }
    return [lon, lat];
  }

  // Merge, never replace: geoplan-basemap.js (folium's head) may have made window.GeoplanMap already.
  var G = window.GeoplanMap = window.GeoplanMap || {};
  G.wgs84ToGcj02 = wgs84ToGcj02;
  G.lib = Object.assign(G.lib || {}, {
    wgs84ToGcj02: wgs84ToGcj02,
    coordsToLatLng: coordsToLatLng,
    displayToLonLat: displayToLonLat,
  });
})();
