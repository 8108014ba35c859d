"""The monitoring dashboard's charts and the quarterly report (季度监测报告): the data gathered once
(`report_data`), charts as data (`charts`) drawn as SVG (`svg_charts`) or with matplotlib (`report_mpl`), and one
writer per format (`report_xlsx`, `report_html`, `report_pdf`; `render` picks one by name or file suffix)."""
