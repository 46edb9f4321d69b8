"""Writing results: atomic file output, Cloud-Optimized GeoTIFFs, figures."""
