"""The command line's client mode: each command is a REST call made as the signed-in principal.

Where Warden is: ``--url``, else ``WARDEN_URL``, else ``url`` in the config file. The API key:
``WARDEN_API_KEY``, else ``api_key`` in the config file. The default project (``--project``):
``WARDEN_PROJECT``, else ``project`` in the config file. The config file is
``WARDEN_CONFIG`` or ``~/.config/warden/config.toml``::

    url = "https://warden.example.com"
    api_key = "wdn_…"          # the file must then be 0600: a key others can read is refused
    project = "census"

The server decides everything (permissions, separation of duties, audit), so a command refused
over REST is refused here with the same reason. Exit codes: 0 done; 1 Warden refused (its
``problem+json`` detail printed, naming the field); 2 the command could not ask (no URL or key,
a config file others can read, Warden unreachable, an unreadable input file). ``--json`` prints
Warden's answer as one JSON document on stdout. Requests use the standard library's
``urllib.request``: importing httpx costs a short command a third of its start-up here (its
own command line pulls in rich), measured by ``bench/cli_startup.py``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = [
    "ClientOptions",
    "Connection",
    "JsonOption",
    "ProjectOption",
    "client_url",
    "connect",
    "each",
    "emit",
    "fail",
    "load_document",
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print Warden's answer as JSON.")]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        help="The project's name (default WARDEN_PROJECT, or `project` in the config file).",
    ),
]

_TIMEOUT = 60.0
_USER_AGENT = "warden-cli"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """What the root command was told: the server's URL and the config file, if any."""

    url: str | None = None
    config: Path | None = None


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _config_path(options: ClientOptions) -> Path:
    if options.config is not None:
        return options.config
    if env := os.environ.get("WARDEN_CONFIG"):
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "warden" / "config.toml"


def _read_config(options: ClientOptions) -> dict[str, Any]:
    """Return the config file's table ({} when absent); refuse a key that others can read."""
    import tomllib

    path = _config_path(options)
    if not path.is_file():
        if options.config is not None:
            fail(f"the config file {path} does not exist")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        fail(f"cannot read the config file {path}: {error}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if "api_key" in values and mode & 0o077:
        fail(
            f"the config file {path} holds an API key but others may read it "
            f"(mode {mode:04o}); run: chmod 600 {path}"
        )
    unknown = sorted(set(values) - {"url", "api_key", "project"})
    if unknown:
        fail(f"the config file {path} has unknown keys {unknown}; it takes url, api_key, project")
    return values


def _options(ctx: typer.Context) -> ClientOptions:
    found = ctx.find_root().obj
    return found if isinstance(found, ClientOptions) else ClientOptions()


def client_url(ctx: typer.Context) -> str | None:
    """Return Warden's URL when one is configured (client mode), else ``None`` (direct mode)."""
    options = _options(ctx)
    url = options.url or os.environ.get("WARDEN_URL") or _read_config(options).get("url")
    return str(url) if url else None


def connect(ctx: typer.Context, project: str | None = None) -> Connection:
    """Return the connection this command uses; exit 2 naming what is missing."""
    options = _options(ctx)
    config = _read_config(options)
    url = options.url or os.environ.get("WARDEN_URL") or config.get("url")
    if not url:
        fail(
            "this command talks to Warden over REST: give --url, set WARDEN_URL, or put "
            f'url = "…" in {_config_path(options)}'
        )
    key = os.environ.get("WARDEN_API_KEY") or config.get("api_key")
    if not key:
        fail(
            'no API key: set WARDEN_API_KEY, or put api_key = "wdn_…" in '
            f"{_config_path(options)} (mode 0600)"
        )
    if not str(url).startswith(("http://", "https://")):
        fail(f"Warden's URL must start with http:// or https://, not {str(url)!r}")
    chosen = project or os.environ.get("WARDEN_PROJECT") or config.get("project")
    return Connection(url=str(url).rstrip("/"), api_key=str(key), project=chosen)


def _problem(status: int, reason: str, content: bytes) -> str:
    """Return Warden's refusal in one line: its status, detail and the field it names."""
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} {reason}: {content[:500].decode(errors='replace')}"
    if not isinstance(body, dict):
        return f"{status}: {body}"
    detail = body.get("detail") or body.get("title") or reason
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    field = body.get("field")
    return f"{status} {detail}" + (f" (field: {field})" if field else "")


def _multipart(
    files: Mapping[str, tuple[str, bytes]], data: Mapping[str, str]
) -> tuple[bytes, str]:
    """Return a ``multipart/form-data`` body and its content type."""
    import uuid

    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in data.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, (filename, content) in files.items():
        header = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(header.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _opener() -> Any:
    """Return a urllib opener that follows no redirect: the key goes to Warden's URL only."""
    import urllib.request

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx becomes an HTTPError, reported as Warden's answer

    return urllib.request.build_opener(RefuseRedirects)


@dataclass(frozen=True, slots=True)
class Connection:
    """Warden's URL, the signed-in principal's key, and the project commands act in."""

    url: str
    api_key: str
    project: str | None

    def project_path(self, tail: str = "") -> str:
        """Return ``/api/v1/projects/{project}{tail}``; exit 2 when no project is known."""
        from urllib.parse import quote

        if not self.project:
            fail("which project? give --project, set WARDEN_PROJECT, or put project in the config")
        return f"/api/v1/projects/{quote(self.project, safe='')}{tail}"

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
        data: Mapping[str, str] | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request; return the decoded answer (bytes if ``raw``), or exit 1 if refused."""
        from urllib.parse import urlencode

        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
        }
        content: bytes | None = None
        if files is not None:
            content, headers["Content-Type"] = _multipart(files, data or {})
        elif body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        answer, _ = self._exchange(method, path + (f"?{query}" if query else ""), content, headers)
        if raw:
            return answer
        return json.loads(answer) if answer else None

    def request_all(self, path: str, *, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Return every item of a list route, following its ``Link: rel="next"`` pages."""
        from urllib.parse import urlencode

        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
        }
        query = urlencode(
            {k: v for k, v in {**(params or {}), "limit": 1000}.items() if v is not None}
        )
        target: str | None = f"{path}?{query}"
        items: list[Any] = []
        while target is not None:
            answer, link = self._exchange("GET", target, None, headers)
            items.extend(json.loads(answer))
            target = _next_page(link)
        return items

    def _exchange(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> tuple[bytes, str]:
        """Send one request to ``target`` (path and query); return the body and ``Link``."""
        import urllib.error
        import urllib.request

        url = f"{self.url}{target}"
        # The scheme is http(s), checked by connect(); a redirect is not followed (_opener).
        request = urllib.request.Request(url, data=content, headers=headers, method=method)  # noqa: S310
        try:
            with _opener().open(request, timeout=_TIMEOUT) as response:
                return response.read(), response.headers.get("Link") or ""
        except urllib.error.HTTPError as refused:
            with refused:
                fail(_problem(refused.code, refused.reason, refused.read()), code=1)
        except (urllib.error.URLError, OSError) as error:
            fail(f"cannot reach Warden at {self.url}: {getattr(error, 'reason', error)}")

    def wait(
        self,
        path: str,
        *,
        done: Callable[[Any], bool],
        timeout: float,
        every: float = 0.5,
    ) -> Any:
        """Poll ``GET path`` until ``done`` holds for the answer; exit 1 after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.request("GET", path)
            if done(answer):
                return answer
            if time.monotonic() >= deadline:
                fail(f"still not finished after {timeout:g}s: {path}", code=1)
            time.sleep(every)


def _next_page(link: str) -> str | None:
    """Return the path and query of a ``Link`` header's ``rel="next"`` target, if any."""
    for part in link.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params:
            return target.strip().removeprefix("<").removesuffix(">")
    return None


def emit(answer: Any, *, as_json: bool, human: Callable[[Any], None]) -> None:
    """Print the answer: as one JSON document with ``--json``, else for a person."""
    if as_json:
        typer.echo(json.dumps(answer, sort_keys=True))
    else:
        human(answer)


def each(print_one: Callable[[Any], None]) -> Callable[[Any], None]:
    """Return a printer of a list that prints each item with ``print_one``."""

    def print_all(items: Any) -> None:
        for item in items:
            print_one(item)

    return print_all


def load_document(path: Path) -> Any:
    """Return a YAML or JSON file's content (a request body); exit 2 if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8") if str(path) != "-" else sys.stdin.read()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}")
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        fail(f"{path} is neither YAML nor JSON: {error}")
