"""API keys from HELM's ``credentials.conf``, clembench's ``key.json`` and the environment.

Keys are handed to clients only; they never enter a cache key, an output file or a log
(:meth:`Credentials.secrets` lists what the redactor removes from everything written).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmeval.errors import ConfigError

if TYPE_CHECKING:
    from pytest_llmeval.registry.entries import ModelDeployment

# name: "quoted value" (may hold '#') or name: bare value, then an optional comma and comment.
_CONF_LINE = re.compile(r'^\s*([A-Za-z0-9_.-]+)\s*[:=]\s*(?:"([^"\n]*)"|([^"#\n]*?))\s*,?\s*(#.*)?$')


@dataclass
class Credentials:
    """A flat ``name -> secret`` map plus clembench's per-backend dicts."""

    values: dict[str, str] = field(default_factory=dict)
    clembench: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, local_path: Path | None) -> Credentials:
        creds = cls()
        if local_path is None:
            return creds
        conf = local_path / "credentials.conf"
        if conf.is_file():
            for number, line in enumerate(conf.read_text(encoding="utf-8").splitlines(), 1):
                stripped = line.strip()
                if not stripped or stripped.startswith("#") or stripped in "{}":
                    continue
                match = _CONF_LINE.match(line)
                if not match:
                    raise ConfigError("is not a 'name: \"value\"' line", file=conf, entry=f"line {number}")
                quoted, bare = match.group(2), match.group(3)
                creds.values[match.group(1)] = (quoted if quoted is not None else bare).strip()
        for key_file in (local_path / "key.json", Path("key.json")):
            if key_file.is_file():
                try:
                    data = json.loads(key_file.read_text(encoding="utf-8"))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"is not valid JSON: {exc}", file=key_file) from exc
                if not isinstance(data, dict):
                    raise ConfigError("must be an object of backend -> {api_key, ...}", file=key_file)
                for backend, entry in data.items():
                    if isinstance(entry, dict):
                        creds.clembench.setdefault(backend, {k: str(v) for k, v in entry.items() if v is not None})
        return creds

    def api_key(self, organization: str, explicit_env: str | None = None) -> str | None:
        """The key for a host organization (``openai``, ``together``, ...), or None."""
        if explicit_env:
            value = os.environ.get(explicit_env)
            if value:
                return value
        org = organization.lower()
        candidates = [
            os.environ.get(_env_name(org)),
            self.values.get(f"{org}ApiKey"),
            self.values.get(f"{_camel(org)}ApiKey"),
            self.clembench.get(org, {}).get("api_key"),
        ]
        return next((c for c in candidates if c), None)

    def clembench_entry(self, backend: str) -> dict[str, str]:
        return dict(self.clembench.get(backend, {}))

    def secrets(self, deployments: Iterable[ModelDeployment] = ()) -> set[str]:
        """Every value that must never be written: all of ``credentials.conf``, all of
        ``key.json`` but its URLs, and for each deployment the key written in its ``api_key``
        and the environment variables it names (``api_key_env``, ``<ORGANIZATION>_API_KEY``)."""
        found = set(self.values.values())
        for entry in self.clembench.values():
            found.update(value for name, value in entry.items() if not name.lower().endswith("url"))
        for deployment in deployments:
            args = deployment.client_spec.args
            found.add(str(args.get("api_key") or ""))
            names = [str(args["api_key_env"])] if args.get("api_key_env") else []
            names += [_env_name(str(org)) for org in (args.get("backend"), deployment.host_organization) if org]
            found.update(os.environ.get(name, "") for name in names)
        found.discard("")
        return found


def _env_name(organization: str) -> str:
    """``together`` -> ``TOGETHER_API_KEY``; ``my-org`` -> ``MY_ORG_API_KEY``."""
    return re.sub(r"[^A-Z0-9]", "_", organization.upper()) + "_API_KEY"


def _camel(name: str) -> str:
    parts = re.split(r"[-_]", name)
    return parts[0] + "".join(p.title() for p in parts[1:])
