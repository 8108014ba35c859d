/*
 * geoplan patch details (the planner page's 图斑详情 tab): one conflict patch, its two source features (listed and
 * outlined on the map) and its marks (the current one, the history and the form for a new one).
 *
 *   GeoplanMap.patchDetail(map, config, page) -> {sources(sources), detail(detail) -> a DOM node}
 *
 * page gives what the planner holds: cfg() (/api/overlaps/config), rules (code -> rule), api() (the accepted
 * token's API wrapper), sourceGroup (where the sources are outlined), patchName(props), failed(node) (the
 * session's error handler) and marked(id) (after a new mark: reload the tables and reopen the patch).
 * Loaded with geoplan-planner.js, which calls it; it needs geoplan-session.js and GeoplanMap.lib.
 *
 * SECURITY: every field and note reaches the DOM as text (textContent, Option, DOM nodes): no innerHTML,
 * insertAdjacentHTML or HTML built from strings in this file (a test checks).
 */
(function () {
  'use strict';

  var SOURCE_STYLES = { a: { color: '#0b3d91', dashArray: '6 4' }, b: { color: '#111111', dashArray: '2 4' } };

  function patchDetail(map, config, page) {
    var lib = window.GeoplanMap.lib;
    var S = window.GeoplanSession;
    var el = S.el, button = S.button, fmtNumber = S.fmt;

    // The two source features, outlined over the map (A dashed blue, B dotted black).
    function showSources(sources) {
      page.sourceGroup.clearLayers();
      sources.forEach(function (source) {
        if (!source.feature) return;
        var style = SOURCE_STYLES[source.side];
        L.geoJSON(source.feature, {
          pane: 'gp-sources',
          interactive: false,
          coordsToLatLng: lib.coordsToLatLng(config.displayCrs),
          style: function () {
            return { pane: 'gp-sources', color: style.color, weight: 2.5, dashArray: style.dashArray, fill: false,
              className: 'gp-source gp-source-' + source.side, interactive: false };
          },
          onEachFeature: function (feature, layer) {
            layer.on('add', function () {
              var node = layer.getElement && layer.getElement();
              if (node) node.setAttribute('data-id', source.id);
            });
          },
        }).addTo(page.sourceGroup);
      });
    }

    function patchDetail(detail) {
      var props = detail.patch.properties;
      var rule = detail.rule;
      var root = el('article', 'gp-patch-detail');
      root.appendChild(el('h2', 'gp-subtitle gp-patch-name', page.patchName(props)));
      root.appendChild(el('p', 'gp-patch-code', '图斑编号 ' + props.patch_id));
      var meta = el('p', 'gp-patch-meta');
      meta.appendChild(el('span', 'gp-sev gp-sev-' + rule.severity, '严重程度：' + (config.severities[rule.severity] || rule.severity)));
      meta.appendChild(el('code', null, rule.code));
      if ((page.rules[rule.code] || {}).synthetic) meta.appendChild(S.syntheticTag(config.syntheticLabel));
      root.appendChild(meta);
      var village = detail.village_name
        ? detail.village_name + '（' + props.village_code + '）' : props.village_code;
      root.appendChild(S.definitionList('gp-facts', [
        ['图斑编号', props.patch_id],
        ['面积（平面）', fmtNumber(props.area_m2, 1) + ' m²'],
        ['面积（椭球）', fmtNumber(props.area_ellipsoid_m2, 1) + ' m²'],
        ['镇街', props.town],
        ['村（社区）', village],
        ['规则说明', rule.description],
        ['依据', rule.basis],
        ['豁免', props.exempt ? '是，不计入合计和指标。' + (props.exempt_basis || '') : '否'],
      ]));
      root.appendChild(el('h3', 'gp-subtitle', '源要素'));
      var list = el('ul', 'gp-sources');
      detail.sources.forEach(function (source) { list.appendChild(sourceItem(source)); });
      root.appendChild(list);
      if (rule.relation === 'difference') {
        var other = page.cfg().layers[props.layer_b];
        root.appendChild(el('p', 'gp-hint', '差集规则：图斑是甲要素位于' + (other ? other.title : '对照图层') +
          '之外的部分，没有单一的乙要素。'));
      }
      root.appendChild(markSection(detail));
      return root;
    }

    // A source feature: its layer, id and the first few fields (planners see private ones too), and a zoom link.
    function sourceItem(source) {
      var item = el('li', 'gp-source-item');
      item.setAttribute('data-side', source.side);
      item.setAttribute('data-id', source.id);
      var head = el('p', 'gp-source-head');
      head.appendChild(lib.swatch(SOURCE_STYLES[source.side].color));
      head.appendChild(el('span', null, (source.side === 'a' ? '甲 · ' : '乙 · ') + source.title + ' '));
      head.appendChild(el('strong', 'gp-source-id', source.id));
      if (source.synthetic) head.appendChild(S.syntheticTag('示意'));
      item.appendChild(head);
      if (!source.feature) {
        item.appendChild(el('p', 'gp-hint', '该要素已不在图层中（图层已修改）。'));
        return item;
      }
      var layerConfig = page.cfg().layers[source.layer];
      var props = source.feature.properties || {};
      var pairs = (layerConfig ? layerConfig.fields : [])
        .filter(function (field) { return field.name !== source.id_field; })
        .slice(0, 5)
        .map(function (field) { return [field.label, lib.formatValue(props[field.name])]; });
      item.appendChild(S.definitionList('gp-facts', pairs));
      item.appendChild(button('定位', 'gp-button gp-small', function () {
        var bounds = L.geoJSON(source.feature, { coordsToLatLng: lib.coordsToLatLng(config.displayCrs) }).getBounds();
        if (bounds.isValid()) map.fitBounds(bounds, { maxZoom: 16, padding: [40, 40] });
      }));
      return item;
    }

    // The current mark, its history (oldest first, as the server keeps it) and the form for a new one.
    function markSection(detail) {
      var section = el('section', 'gp-marks');
      section.appendChild(el('h3', 'gp-subtitle', '标记'));
      var current = el('p', 'gp-mark-current');
      current.setAttribute('data-status', detail.mark ? detail.mark.status : '');
      current.textContent = detail.mark
        ? '当前：' + detail.mark.status_title + ' · ' + detail.mark.actor + ' · ' + S.beijingTime(detail.mark.at) + '（北京时间）'
        : '当前：未标记';
      section.appendChild(current);
      if (detail.mark && detail.mark.note) section.appendChild(el('p', 'gp-mark-note', detail.mark.note));
      if (detail.history.length) {
        var past = el('ol', 'gp-history');
        detail.history.forEach(function (mark) {
          var item = el('li', null);
          var when = S.beijingTime(mark.at) + '（北京时间）';
          item.appendChild(el('span', 'gp-history-head', when + ' · ' + mark.actor + ' · ' + mark.status_title));
          if (mark.note) item.appendChild(el('span', 'gp-history-note', mark.note));
          past.appendChild(item);
        });
        var wrap = el('details', 'gp-history-wrap');
        wrap.appendChild(el('summary', null, '标记历史（' + detail.history.length + ' 条）'));
        wrap.appendChild(past);
        wrap.open = true;
        section.appendChild(wrap);
      }
      section.appendChild(markForm(detail));
      return section;
    }

    function markForm(detail) {
      var id = detail.patch.id;
      var form = el('form', 'gp-mark-form');
      form.id = 'gp-mark-form';
      var status = document.createElement('select');
      status.id = 'gp-mark-status';
      status.required = true;
      config.statuses.forEach(function (s) { status.appendChild(new Option(s.title, s.value)); });
      if (detail.mark) status.value = detail.mark.status;
      var note = document.createElement('textarea');
      note.id = 'gp-mark-note';
      note.maxLength = 2000;
      note.rows = 3;
      note.placeholder = '说明（可选）：依据、处理意见';
      var statusLabel = el('label', null, '状态');
      statusLabel.htmlFor = status.id;
      var noteLabel = el('label', null, '说明');
      noteLabel.htmlFor = note.id;
      var save = el('button', 'gp-button gp-primary', '保存标记');
      save.type = 'submit';
      var message = el('p', 'gp-hint');
      message.setAttribute('role', 'status');
      [statusLabel, status, noteLabel, note, save, message].forEach(function (node) { form.appendChild(node); });
      form.addEventListener('submit', async function (event) {
        event.preventDefault();
        save.disabled = true;
        lib.setStatus(message, '正在保存…');
        try {
          await page.api().json(config.api.patch + encodeURIComponent(id) + '/mark', {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ status: status.value, note: note.value }),
          });
          await page.marked(id); // the marks changed: the planner reloads its tables and reopens the patch
        } catch (error) {
          save.disabled = false;
          page.failed(message)(error);
        }
      });
      return form;
    }

    return { sources: showSources, detail: patchDetail };
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { patchDetail: patchDetail });
})();
