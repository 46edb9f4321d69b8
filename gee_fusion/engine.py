"""Choosing who answers Earth Engine calls: real Earth Engine or the embedded local engine.

``connect("local")`` initialises earthengine-api offline from the algorithm table shipped in
its wheel and routes ``ee.data`` calls to the local engine (the routing table is
:mod:`gee_fusion.local.routes`). ``disconnect()`` restores earthengine-api.

Only the CLI, ``ee_scripts/`` and notebooks choose an engine with :func:`connect`; library jobs
call :func:`ensure_connected`, which uses the active connection and never switches it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import ee

from gee_fusion.errors import CredentialsError, EngineStateError

if TYPE_CHECKING:
    from gee_fusion.local.faults import Faults
    from gee_fusion.local.world.config import WorldConfig

EngineName = Literal["local", "earthengine"]
"""Who answers Earth Engine calls."""
EngineChoice = Literal["local", "earthengine", "auto"]
"""What a config or caller may ask for: ``auto`` is Earth Engine when credentials exist, else local."""
ENGINE_NAMES: tuple[str, ...] = ("local", "earthengine")
LOCAL_PROJECT = "gee-fusion-local"


@dataclass(frozen=True)
class Connection:
    """What ``connect`` set up."""

    engine: EngineName
    project: str | None


_state_lock = threading.Lock()
_saved: dict[str, Any] = {}
_saved_stac: Callable[[], dict[str, Any]] | None = None
_EE_OWN = {"Initialize": ee.Initialize, "Authenticate": ee.Authenticate}
"""earthengine-api's own ``ee.Initialize`` / ``ee.Authenticate`` (stood in for while local)."""
_current: Connection | None = None
_local_options: dict[str, Any] = {
    "register_samples": True, "world": None, "faults": None, "exports_dir": None,
}  # fmt: skip


def credential_sources() -> list[str]:
    """Files that would let earthengine-api authenticate, without touching the network."""
    found = []
    ee_file = Path(ee.oauth.get_credentials_path())
    if ee_file.is_file():
        found.append(str(ee_file))
    adc = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if adc and Path(adc).is_file():
        found.append(adc)
    gcloud_dir = os.environ.get("CLOUDSDK_CONFIG") or str(Path.home() / ".config" / "gcloud")
    gcloud = Path(gcloud_dir) / "application_default_credentials.json"
    if gcloud.is_file():
        found.append(str(gcloud))
    return found


def has_credentials() -> bool:
    """Whether Earth Engine credentials are configured on this machine."""
    return bool(credential_sources())


def current() -> Connection | None:
    """The active connection, or None."""
    return _current


def ensure_connected() -> Connection:
    """The engine a library job runs on: the active connection, else the local engine.

    Library code calls this instead of :func:`connect`: a job never switches the engine a
    user (a notebook, the CLI, a script) connected, and connects the embedded local engine only
    when nothing is connected yet.
    """
    active = _current
    return active if active is not None else connect("local")


def connect(
    engine: EngineChoice = "auto",
    *,
    project: str | None = None,
    register_samples: bool = True,
    world: WorldConfig | None = None,
    faults: Faults | str | None = None,
    exports_dir: str | Path | None = None,
) -> Connection:
    """Initialise earthengine-api against real Earth Engine or the embedded local engine.

    Only the CLI, ``ee_scripts/`` and notebooks call this; library jobs use
    :func:`ensure_connected`. A failed connection leaves the previous one as it was.

    Args:
        engine: ``"local"``, ``"earthengine"``, or ``"auto"`` (Earth Engine when credentials
            are configured, else local).
        project: Google Cloud project for Earth Engine (required by Earth Engine; ignored
            locally).
        register_samples: With the local engine, register the real samples found in
            ``../shared/data/real`` (or ``$GEE_FUSION_REAL_DATA``) in the local catalog.
        world: With the local engine, the demo world served under Earth Engine's collection
            IDs (seed, centre, size); defaults to the 12 x 12 km Rouen-like city.
        faults: With the local engine, fail a seeded share of calls as Earth Engine does
            (:mod:`gee_fusion.local.faults`), e.g. ``"rate=0.2,seed=7"``; default: the
            ``GEE_FUSION_LOCAL_FAULTS`` environment variable, else none.
        exports_dir: With the local engine, the folder where batch exports
            (``Export.image.*`` + ``Task.start()``) land (:mod:`gee_fusion.local.tasks`);
            default: ``GEE_FUSION_LOCAL_EXPORTS``, else ``./ee_exports``.

    Returns:
        The connection that was set up.

    Raises:
        CredentialsError: Earth Engine was asked for and no usable credentials were found, or
            Earth Engine refused them.
        EngineStateError: ``engine`` is not one of the names above.
    """
    if engine == "auto":
        engine = "earthengine" if has_credentials() else "local"
    if engine not in ENGINE_NAMES:
        raise EngineStateError(f"Unknown engine {engine!r}: use 'local', 'earthengine' or 'auto'.")
    with _state_lock:
        if engine == "earthengine":
            return _connect_earthengine(project)
        _restore()
        return _connect_local(
            project, register_samples=register_samples, world=world, faults=faults, exports_dir=exports_dir
        )


def disconnect() -> None:
    """Undo ``connect``: restore earthengine-api's own functions and reset its state."""
    global _current
    with _state_lock:
        _restore()
        ee.Reset()
        _current = None


def _connect_earthengine(project: str | None) -> Connection:
    global _current
    if not has_credentials():
        raise CredentialsError(
            "No Earth Engine credentials found. Run `earthengine authenticate` (or "
            "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to "
            "a service-account key), then call gee_fusion.connect('earthengine', "
            "project='<your-cloud-project>'). To work offline use gee_fusion.connect('local')."
        )
    import google.auth.exceptions

    previous, local_options = _current, dict(_local_options)
    _restore()
    try:
        ee.Initialize(project=project)
    except (ee.EEException, google.auth.exceptions.GoogleAuthError) as exc:
        _reinstate(previous, local_options)
        raise CredentialsError(
            f"Earth Engine refused to initialise: {exc}. Check the credentials and pass "
            "project='<your-cloud-project>' (a project registered for Earth Engine)."
        ) from exc
    except BaseException:
        _reinstate(previous, local_options)
        raise
    _current = Connection("earthengine", project)
    return _current


def _reinstate(previous: Connection | None, local_options: dict[str, Any]) -> None:
    """Put back the connection a failed ``connect`` replaced (the local engine's catalog is
    process-wide, so reconnecting it keeps every registered asset)."""
    if previous is not None and previous.engine == "local":
        _connect_local(previous.project, reconnect=True, **local_options)


def _connect_local(
    project: str | None,
    *,
    register_samples: bool,
    world: WorldConfig | None,
    faults: Faults | str | None = None,
    exports_dir: str | Path | None = None,
    reconnect: bool = False,
) -> Connection:
    global _current, _saved_stac
    from gee_fusion.local import faults as local_faults
    from gee_fusion.local import tasks as local_tasks
    from gee_fusion.local.routes import local_routes

    if faults is None and os.environ.get(local_faults.ENV_VAR):
        faults = os.environ[local_faults.ENV_VAR]
    chosen = local_faults.Faults.parse(faults) if isinstance(faults, str) else faults
    injector = local_faults.install(chosen)
    local_tasks.set_exports_dir(exports_dir, project=project or LOCAL_PROJECT)
    for name, fn in local_routes(injector).items():
        _saved[name] = getattr(ee.data, name)
        setattr(ee.data, name, fn)
    _saved_stac = ee.deprecation._FetchDataCatalogStac
    ee.deprecation._FetchDataCatalogStac = lambda: {}
    try:
        ee.Reset()
        ee.Initialize(None, "", project=project or LOCAL_PROJECT)
        # anonymous credentials that never refresh: libraries that check for credentials before
        # starting an OAuth flow (geemap.Map()) see an initialised session and do not prompt
        from google.auth.credentials import AnonymousCredentials

        ee.data._get_state().credentials = AnonymousCredentials()  # type: ignore[assignment]
    except Exception:
        _restore()
        raise
    # a user's script calls ee.Authenticate() / ee.Initialize() first: keep the local session
    ee.Initialize = _local_initialize
    ee.Authenticate = _local_authenticate
    if not reconnect:
        from gee_fusion.local.world.register import register_world

        # the embedded demo world under Earth Engine's collection IDs (lazy: generated on request)
        if world is None:
            register_world()
        else:
            register_world(world, replace=True)
        if register_samples:
            from gee_fusion.local.samples import register_real_samples

            register_real_samples()
    _local_options.update(
        register_samples=register_samples, world=world, faults=chosen, exports_dir=exports_dir
    )
    _current = Connection("local", project or LOCAL_PROJECT)
    return _current


def _local_initialize(*args: Any, **kwargs: Any) -> None:
    """``ee.Initialize`` while the local engine is connected: the offline session stays as it is
    (call ``gee_fusion.connect("earthengine", project=...)`` to use Earth Engine)."""


def _local_authenticate(*args: Any, **kwargs: Any) -> bool:
    """``ee.Authenticate`` while the local engine is connected: nothing to authorise offline."""
    return True


def _restore() -> None:
    global _saved_stac, _current
    for name, stand_in in (("Initialize", _local_initialize), ("Authenticate", _local_authenticate)):
        if getattr(ee, name) is stand_in:  # leave anything else (e.g. a test's fake) in place
            setattr(ee, name, _EE_OWN[name])
    was_local = bool(_saved)
    for name, fn in _saved.items():
        setattr(ee.data, name, fn)
    _saved.clear()
    if was_local:  # drop the offline algorithm table so a real Initialize fetches the server's
        ee.Reset()
    if _saved_stac is not None:
        ee.deprecation._FetchDataCatalogStac = _saved_stac
        _saved_stac = None
    _current = None
