/*
 * geoplan map pages: what makes a Leaflet map usable by keyboard, by screen reader and on a phone.
 *
 *   GeoplanMapUI.collapsible(legend)      the legend's heading becomes a button (aria-expanded) that folds it;
 *                                         folded from the start on narrow screens (<= 600 px), where it would
 *                                         cover half the map
 *   GeoplanMapUI.describe(map, label, id) an accessible name for the map, its text alternative (aria-describedby),
 *                                         Chinese names for Leaflet's zoom buttons
 *   GeoplanMapUI.keyboardPopups(map)      an opened popup takes the focus (a named dialog); Escape closes it and
 *                                         the focus goes back to where it came from (the list button)
 *   GeoplanMapUI.fitOptions(map, extra)   fitBounds padding that keeps features clear of the map's controls (zoom
 *                                         buttons, scale bar, legend)
 * Loaded before geoplan-map.js on every map page. Text only: no HTML is built from strings here (a test checks).
 */
(function () {
  'use strict';

  var NARROW = '(max-width: 600px)';
  var legendCount = 0;

  function narrow() {
    return Boolean(window.matchMedia && window.matchMedia(NARROW).matches);
  }

  // The heading's content moves into a button; everything after the heading into a body the button shows or hides.
  // options.folded: start folded (default: on narrow screens).
  function collapsible(legend, options) {
    if (!legend || legend.querySelector('.gp-legend-toggle')) return legend;
    var heading = legend.querySelector('.gp-legend-title');
    if (!heading) return legend;
    var bodyId = 'gp-legend-body-' + (++legendCount);
    var body = document.createElement('div');
    body.className = 'gp-legend-body';
    body.id = bodyId;
    while (heading.nextSibling) body.appendChild(heading.nextSibling);
    legend.appendChild(body);
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'gp-legend-toggle';
    button.setAttribute('aria-controls', bodyId);
    while (heading.firstChild) button.appendChild(heading.firstChild);
    var mark = document.createElement('span');
    mark.className = 'gp-legend-mark';
    mark.setAttribute('aria-hidden', 'true');
    button.appendChild(mark);
    heading.appendChild(button);
    function set(open) {
      button.setAttribute('aria-expanded', open ? 'true' : 'false');
      button.title = open ? '收起图例' : '展开图例';
      mark.textContent = open ? '▾' : '▸';
      body.hidden = !open;
      legend.classList.toggle('gp-legend-collapsed', !open);
    }
    button.addEventListener('click', function () { set(button.getAttribute('aria-expanded') !== 'true'); });
    set(!(options && options.folded !== undefined ? options.folded : narrow()));
    return legend;
  }

  // The map container is focusable (Leaflet's keyboard panning), so it needs a name; `describedBy` is the id of
  // the text that says where the map's content is also given as text (the project list, the village table).
  function describe(map, label, describedBy) {
    var container = map.getContainer();
    // On a phone a whole zoom step halves the district's drawing; quarter steps let a fit use the small screen.
    if (narrow()) map.options.zoomSnap = 0.25;
    container.setAttribute('role', 'region');
    container.setAttribute('aria-label', label);
    if (describedBy) container.setAttribute('aria-describedby', describedBy);
    [['.leaflet-control-zoom-in', '放大'], ['.leaflet-control-zoom-out', '缩小']].forEach(function (pair) {
      var button = container.querySelector(pair[0]);
      if (!button) return;
      button.title = pair[1];
      button.setAttribute('aria-label', pair[1]);
    });
  }

  // Focus into an opened popup and back out when it closes (Escape, its close button or a click elsewhere).
  function keyboardPopups(map) {
    var returnTo = null;
    map.on('popupopen', function (event) {
      var container = event.popup.getElement();
      if (!container) return;
      var active = document.activeElement;
      returnTo = active && active !== document.body && !container.contains(active) ? active : map.getContainer();
      var title = container.querySelector('.gp-popup-title, h3, h2');
      container.setAttribute('role', 'dialog');
      if (title) {
        if (!title.id) title.id = 'gp-popup-title-' + (++legendCount);
        container.setAttribute('aria-labelledby', title.id);
      }
      var close = container.querySelector('.leaflet-popup-close-button');
      if (close) {
        close.setAttribute('aria-label', '关闭');
        close.title = '关闭（Esc）';
      }
      var target = title || close;
      if (target) {
        if (target === title) target.tabIndex = -1;
        target.focus({ preventScroll: true });
      }
      if (container.getAttribute('data-gp-keys')) return; // a popup reopened keeps its container and listener
      container.setAttribute('data-gp-keys', 'true');
      container.addEventListener('keydown', function (key) {
        if (key.key !== 'Escape') return;
        key.stopPropagation();
        map.closePopup(event.popup);
      });
    });
    map.on('popupclose', function (event) {
      var container = event.popup.getElement();
      var active = document.activeElement;
      var lost = !active || active === document.body || (container && container.contains(active));
      if (lost && returnTo && document.contains(returnTo)) returnTo.focus({ preventScroll: true });
    });
  }

  // Padding for fitBounds: the zoom buttons (top left), the scale bar (bottom left) and the legend (bottom right)
  // as they are drawn now, plus a margin, so no fitted feature ends up under one of them.
  function fitOptions(map, extra) {
    var container = map.getContainer();
    function size(selector) {
      var node = container.querySelector(selector);
      if (!node || !node.offsetParent) return { width: 0, height: 0 };
      return { width: node.offsetWidth, height: node.offsetHeight };
    }
    var margin = 12;
    var zoom = size('.leaflet-control-zoom');
    var scale = size('.leaflet-control-scale');
    var legend = size('.leaflet-bottom .gp-legend');
    var onLeft = Boolean(container.querySelector('.leaflet-bottom.leaflet-left .gp-legend'));
    var height = container.clientHeight;
    var width = container.clientWidth;
    // A tall legend takes its width off its side, a low one its height off the bottom; one that takes most of a
    // small map is left out: covering part of the area beats a tiny drawing.
    var side = legend.width < width * 0.4 && legend.height > height * 0.3 ? legend.width : 0;
    var bottom = Math.max(scale.height, legend.height <= height * 0.3 ? legend.height : 0);
    return Object.assign({
      paddingTopLeft: [Math.max(zoom.width, onLeft ? side : 0) + margin, margin],
      paddingBottomRight: [(onLeft ? 0 : side) + margin, bottom + margin],
      animate: false,
    }, extra || {});
  }

  window.GeoplanMapUI = {
    collapsible: collapsible,
    describe: describe,
    keyboardPopups: keyboardPopups,
    fitOptions: fitOptions,
    narrow: narrow,
  };
})();
