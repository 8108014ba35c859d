/*
 * geoplan report viewer (/planner/report): the one script of the page that shows a site check's printable report.
 *
 *   GeoplanMap.reportViewer()
 *
 * The planner page (geoplan-site-check.js, openReport) opens this tab, fetches the report with its token and
 * sends the HTML here. SECURITY: the HTML is never inserted into a document of ours; it becomes a blob: document
 * under this page's script-free policy (no innerHTML or HTML built from strings in this file; a test checks).
 */
(function () {
  'use strict';

  // Receives the report's HTML from the planner page that opened this tab (same origin only) and shows it as a
  // blob: document, which inherits this page's policy: the report's inline styles apply, no script runs.
  function reportViewer() {
    var status = document.getElementById('gp-viewer-status'); // (this page has no session script)
    if (!window.opener) {
      status.textContent = '请在“多规合一冲突图斑”页面的选址审查中打开报告。';
      return;
    }
    window.addEventListener('message', function (event) {
      if (event.origin !== window.location.origin || event.source !== window.opener) return;
      if (!event.data || event.data.type !== 'geoplan-report' || typeof event.data.html !== 'string') return;
      var url = URL.createObjectURL(new Blob([event.data.html], { type: 'text/html;charset=utf-8' }));
      window.location.replace(url);
    });
    window.opener.postMessage({ type: 'geoplan-report-ready' }, window.location.origin);
  }

  window.GeoplanMap = Object.assign(window.GeoplanMap || {}, { reportViewer: reportViewer });
})();
