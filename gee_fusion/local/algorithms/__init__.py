"""Local-engine algorithm implementations, one module per Earth Engine type or family.

Importing this package registers nothing: :mod:`gee_fusion.local.index` imports every module
(the explicit index), and each module registers its functions in :mod:`gee_fusion.local.registry`.
"""
