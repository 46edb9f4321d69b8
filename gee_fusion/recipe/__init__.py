"""The server-side recipe, written once with earthengine-api: Sentinel-1/2 collections, masks,
speckle filters, terrain flattening, indices, monthly composites and model-input stacks.

Modules here only build Earth Engine graphs: no file or network I/O of their own, no choice of
engine (see docs/architecture.md).
"""
