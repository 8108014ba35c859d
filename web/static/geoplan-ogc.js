// The OGC API items page: fetch the page's GeoJSON (its URL comes from a JSON data block) and draw it.
// Properties are shown with textContent only, never as HTML.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gp-ogc-data").textContent);
  var map = L.map("gp-ogc-map", { preferCanvas: true }).setView([22.9, 112.75], 10);
  var count = document.getElementById("gp-ogc-count");
  function popup(feature) {
    var table = document.createElement("table");
    Object.keys(feature.properties || {}).forEach(function (key) {
      var row = table.insertRow();
      row.insertCell().textContent = key;
      row.insertCell().textContent = String(feature.properties[key]);
    });
    return table;
  }
  fetch(data.items, { headers: { Accept: "application/geo+json" } })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
    .then(function (body) {
      var layer = L.geoJSON(body, {
        style: { color: "#d95f02", weight: 1 },
        onEachFeature: function (feature, l) { l.bindPopup(function () { return popup(feature); }); }
      }).addTo(map);
      count.textContent = body.numberReturned + " / " + body.numberMatched;
      if (body.numberReturned > 0) { map.fitBounds(layer.getBounds()); }
    })
    .catch(function () { count.textContent = "加载失败"; });
})();
