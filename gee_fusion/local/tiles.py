"""Map tiles from the local engine: ``ee.data.getMapId`` and a small XYZ tile server.

``getMapId`` evaluates the (visualised) image once, so a bad visualisation raises Earth Engine's
error in the cell rather than giving a blank map, registers it under a map name and returns the
``tile_fetcher`` whose ``url_format`` geemap and ipyleaflet read. The server answers
``GET /v1/<map name>/tiles/{z}/{x}/{y}`` with a 256 px RGBA PNG in Web Mercator: pixels outside the
data are transparent, tiles are cached per map name and zoom (LRU), a z/x/y out of range is an
HTTP 400 with a message. It listens on the loopback interface only, starts on the first
``getMapId`` and stops with the process (a daemon thread).
"""

from __future__ import annotations

import io
import re
import threading
import uuid
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from gee_fusion.errors import EngineError
from gee_fusion.grid import PixelGrid
from gee_fusion.local.graph import evaluate
from gee_fusion.local.image import Image, PixelContext
from gee_fusion.local.server import encode

TILE = 256
MAX_ZOOM = 24
WEB_MERCATOR_HALF = 20037508.342789244
_CACHE_TILES = 2048
_PATH = re.compile(r"^/v1/(?P<name>.+?)/tiles/(?P<z>-?\d+)/(?P<x>-?\d+)/(?P<y>-?\d+)$")


def tile_grid(z: int, x: int, y: int) -> PixelGrid:
    """The 256 x 256 px Web Mercator grid of tile (z, x, y)."""
    size = 2 * WEB_MERCATOR_HALF / 2**z
    res = size / TILE
    x0, y1 = -WEB_MERCATOR_HALF + x * size, WEB_MERCATOR_HALF - y * size
    return PixelGrid("EPSG:3857", (res, 0.0, x0, 0.0, -res, y1), TILE, TILE)


class _Maps:
    """Registered maps (name -> visualised image) and the tile cache."""

    def __init__(self) -> None:
        self.images: dict[str, Image] = {}
        self.cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def tile(self, name: str, z: int, x: int, y: int) -> bytes:
        key = (name, z, x, y)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            image = self.images.get(name)
        if image is None:
            raise KeyError(name)
        png = render_tile(image, tile_grid(z, x, y))
        with self.lock:
            self.cache[key] = png
            while len(self.cache) > _CACHE_TILES:
                self.cache.popitem(last=False)
        return png


MAPS = _Maps()


def rgba(image: Image, grid: PixelGrid) -> np.ndarray:
    """(h, w, 4) uint8 of a visualised image on ``grid``; alpha 0 where it is masked."""
    ctx = PixelContext([b.node for b in image.bands])
    out = np.zeros((*grid.shape, 4), dtype=np.uint8)
    valid = np.ones(grid.shape, dtype=bool)
    for k, band in enumerate(image.bands[:3]):
        values, mask = ctx.pixels(band.node, grid)
        out[..., k] = np.asarray(values)
        valid &= np.asarray(mask, bool)
    opacity = float(image.properties.get("system:visualization_opacity", 1.0))
    out[..., 3] = np.where(valid, round(255 * opacity), 0)
    return out


def render_tile(image: Image, grid: PixelGrid) -> bytes:
    """The PNG of ``image`` (three uint8 bands) on ``grid``."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(rgba(image, grid), mode="RGBA").save(buf, format="PNG")
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        match = _PATH.match(self.path.split("?")[0])
        if not match:
            return self._text(404, f"Unknown path {self.path}: use /v1/<map>/tiles/<z>/<x>/<y>.")
        z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
        if not 0 <= z <= MAX_ZOOM or not 0 <= x < 2**z or not 0 <= y < 2**z:
            return self._text(
                400, f"Tile z={z} x={x} y={y} is out of range (0 <= z <= {MAX_ZOOM}, 0 <= x, y < 2^z)."
            )
        try:
            png = MAPS.tile(match["name"], z, x, y)
        except KeyError:
            return self._text(
                404, f"Unknown map {match['name']!r} (maps live as long as the Python process)."
            )
        except Exception as exc:  # a tile that cannot be computed: say why, keep serving
            return self._text(500, f"{type(exc).__name__}: {exc}")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(png)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(png)

    def _text(self, status: int, message: str) -> None:
        body = message.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: notebooks must not fill with request logs


def server_url() -> str:
    """The tile server's base URL (started on first use, loopback only)."""
    with MAPS.lock:
        if MAPS.server is None:
            MAPS.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            MAPS.server.daemon_threads = True
            threading.Thread(target=MAPS.server.serve_forever, name="gee-fusion-tiles", daemon=True).start()
        port = MAPS.server.server_address[1]
    return f"http://127.0.0.1:{port}"


def get_map_id(params: dict[str, Any]) -> dict[str, Any]:
    """``ee.data.getMapId``: register the (visualised) image and return its tile fetcher."""
    import ee

    from gee_fusion.local.algorithms.visualize import image_visualize

    image = evaluate(encode(params["image"]))
    if not isinstance(image, Image):
        raise EngineError(f"getMapId needs an Image, got {type(image).__name__}.")
    if [b.name for b in image.bands] != ["vis-red", "vis-green", "vis-blue"]:
        image = image_visualize(image, bands=params.get("bands"))  # Earth Engine's default rendering
    name = f"projects/local/maps/{uuid.uuid4().hex}"
    with MAPS.lock:
        MAPS.images[name] = image
    url_format = f"{server_url()}/v1/{name}/tiles/{{z}}/{{x}}/{{y}}"
    return {"mapid": name, "token": "", "tile_fetcher": ee.data.TileFetcher(url_format, map_name=name)}
