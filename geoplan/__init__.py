"""geoplan: the map and measuring tape of Gaoming District's city-governance action plan."""

__version__ = "0.1.0"
