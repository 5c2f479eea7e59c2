"""Plugin manager factory and typed facades over the hooks.

Discovery order: blocked names (``AUDITFT_DISABLE_PLUGINS``), then third-party entry points
in the group ``auditft`` (each loaded in isolation; ``AUDITFT_LOAD_PLUGINS`` allow-lists),
then the built-ins in ``DEFAULT_PLUGINS``, then ``check_pending()`` so a misspelled hook is
an error. pluggy calls later-registered plugins first, so built-ins run before third-party
plugins in "calls all" hooks.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from auditft import hookspecs
from auditft.errors import PluginError
from auditft.registry import AuditRegistry, TunerRegistry, _Registry

ENTRY_POINT_GROUP = "auditft"

def _builtin_modules() -> tuple[str, ...]:
    """One module per built-in plugin under ``default_plugins/tuners`` and ``/audits``:
    adding a built-in is adding a file (listing the folders imports nothing)."""
    import pkgutil
    from pathlib import Path

    root = Path(__file__).parent / "default_plugins"
    return tuple(f"auditft.default_plugins.{group}.{info.name}"
                 for group in ("tuners", "audits")
                 for info in sorted(pkgutil.iter_modules([str(root / group)]), key=lambda i: i.name)
                 if not info.name.startswith("_"))


DEFAULT_PLUGINS: tuple[str, ...] = _builtin_modules()


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be loaded or registered; shown by ``auditft plugins``."""

    plugin: str
    error: str
    #: kinds the plugin's distribution says it provides are unknown until it imports,
    #: so a suite naming an unknown kind is told about every failure.


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the record of load failures and cached registries."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.load_failures: list[LoadFailure] = []
        self._tuners: TunerRegistry | None = None
        self._audits: AuditRegistry | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        self._tuners = self._audits = None  # registries are rebuilt from the new plugin set
        return super().register(plugin, name=name)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> object | None:
        self._tuners = self._audits = None
        return super().unregister(plugin=plugin, name=name)

    def version_of(self, plugin_name: str) -> str | None:
        plugin = self.get_plugin(plugin_name)
        for obj, dist in self.list_plugin_distinfo():
            if obj is plugin:
                return str(dist.version)
        if plugin_name.startswith("auditft."):
            from auditft.version import __version__

            return __version__
        return None

    @property
    def tuners(self) -> TunerRegistry:
        if self._tuners is None:
            self._tuners = _collect(self, "auditft_register_tuners", TunerRegistry())
        return self._tuners

    @property
    def audits(self) -> AuditRegistry:
        if self._audits is None:
            self._audits = _collect(self, "auditft_register_audits", AuditRegistry())
        return self._audits

    def failure_for(self, kind: str) -> str | None:
        """A one-line hint when ``kind`` is unknown and some plugin failed to load."""
        if not self.load_failures:
            return None
        names = ", ".join(f"{f.plugin!r} ({f.error})" for f in self.load_failures)
        return f"these plugins failed to load and may provide {kind!r}: {names}"


def make_plugin_manager(
    *,
    entry_points: bool = True,
    strict: bool = False,
    env: Mapping[str, str] | None = None,
) -> PluginManager:
    """Build a fresh plugin manager: built-ins always, entry points unless disabled."""
    env = os.environ if env is None else env
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    strict = strict or env.get("AUDITFT_STRICT_PLUGINS", "") in ("1", "true", "yes")
    for name in _split(env.get("AUDITFT_DISABLE_PLUGINS", "")):
        pm.set_blocked(name)
    if entry_points:
        allow = env.get("AUDITFT_LOAD_PLUGINS")
        allowed = None if allow is None else set(_split(allow))
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            try:
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
            except Exception as exc:  # isolate: one broken plugin must not break the tool
                if pm.has_plugin(ep.name):
                    pm.unregister(name=ep.name)
                if strict:
                    raise PluginError(f"plugin {ep.name!r} failed to load: {_one_line(exc)}") from exc
                pm.load_failures.append(LoadFailure(ep.name, _one_line(exc)))
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    _drop_unknown_hooks(pm, strict)
    if env.get("AUDITFT_TRACE_PLUGINS", "") in ("1", "true", "yes"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def default_plugins() -> PluginManager:
    """The installed plugins, for library callers that were not handed a command's manager
    (a command always passes its own, built once with its ``--strict-plugins``)."""
    return make_plugin_manager()


def _drop_unknown_hooks(pm: PluginManager, strict: bool) -> None:
    """A misspelled hook would silently never run: treat its plugin as failed to load
    (fatal for built-ins and under ``--strict-plugins``), then let pluggy double-check."""
    for hook_name, caller in list(vars(pm.hook).items()):
        if getattr(caller, "spec", True) is not None:
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or not pm.has_plugin(impl.plugin_name):
                continue
            message = f"plugin {impl.plugin_name!r} implements unknown hook {hook_name!r} (misspelled?)"
            if strict or impl.plugin_name in DEFAULT_PLUGINS:
                raise PluginError(message)
            pm.unregister(name=impl.plugin_name)
            pm.load_failures.append(LoadFailure(impl.plugin_name, f"unknown hook {hook_name!r} (misspelled?)"))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name!r}: {_one_line(exc)}") from exc


def _collect(pm: PluginManager, hook_name: str, registry: _Registry) -> Any:
    """Call a registration hook plugin by plugin, so each entry knows its contributor."""
    hook = getattr(pm.hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):  # registration order: built-ins first
        plugin_name = impl.plugin_name
        registry.current_plugin = plugin_name
        registry.current_version = pm.version_of(plugin_name)
        try:
            impl.function(register=registry)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {plugin_name!r} failed in {hook_name}: {_one_line(exc)}") from exc
    registry.current_plugin = "<unknown>"
    return registry


def describe_plugins(pm: PluginManager) -> dict[str, Any]:
    """What ``auditft plugins`` prints: every plugin, its version, hooks and kinds."""
    tuners, audits = pm.tuners, pm.audits
    plugins = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        plugins.append(
            {
                "name": name,
                "version": pm.version_of(name),
                "builtin": name in DEFAULT_PLUGINS,
                "hooks": hooks,
                "tuners": [e.kind for e in tuners if e.plugin == name],
                "audits": [e.kind for e in audits if e.plugin == name],
            }
        )
    return {
        "plugins": plugins,
        "tuners": [e.describe() for e in tuners],
        "audits": [e.describe() for e in audits],
        "load_errors": [{"plugin": f.plugin, "error": f.error} for f in pm.load_failures],
    }


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return " ".join(text.split())
