"""Map pages: folium builds the skeleton (map, empty layer groups, legend); web/static/geoplan-map.js fetches the
data from the OGC API and adds the behaviour. Nothing here loads from another host, and no user data is
rendered into the HTML.
"""
