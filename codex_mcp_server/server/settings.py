"""The server's settings: command-line flags, each with a ``CODEX_MCP_*`` environment variable."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn, get_args

from ..sdk import CodexNotFoundError
from ..sdk.codex import EngineName
from ..sdk.locate import INSTALL_HINT, find_codex

__all__ = [
    "APPROVAL_POLICIES",
    "SANDBOX_MODES",
    "ApprovalPolicy",
    "SandboxModeName",
    "Settings",
    "SettingsError",
    "parse_settings",
]

SandboxModeName = Literal["read-only", "workspace-write", "danger-full-access"]
ApprovalPolicy = Literal["never", "on-request", "on-failure", "untrusted"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
ToolSet = Literal["default", "codex", "all"]
Transport = Literal["stdio", "streamable-http"]
SANDBOX_MODES: tuple[SandboxModeName, ...] = get_args(SandboxModeName)
APPROVAL_POLICIES: tuple[ApprovalPolicy, ...] = get_args(ApprovalPolicy)


class SettingsError(ValueError):
    """A flag or environment variable has a value the server cannot start with."""


@dataclass(frozen=True)
class Settings:
    """How the server runs codex. Every field has a flag and an environment variable."""

    codex_path: str | None = None
    backend: EngineName = "app-server"
    cwd: Path = field(default_factory=Path.cwd)
    default_model: str | None = None
    default_sandbox: SandboxModeName = "read-only"
    max_sandbox: SandboxModeName = "workspace-write"
    allowed_roots: tuple[Path, ...] = ()
    approval_policy: ApprovalPolicy = "never"
    config: tuple[str, ...] = ()
    allow_config_keys: tuple[str, ...] = ()
    trust_project_config: bool = False
    idle_timeout: float = 1800.0
    heartbeat_interval: float = 10.0
    approval_timeout: float = 300.0
    log_level: LogLevel = "INFO"
    max_concurrent_turns: int = 4
    tool_set: ToolSet = "default"
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    allowed_hosts: tuple[str, ...] = ()
    auth_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Paths are compared after resolving symlinks, so the roots must be resolved too.
        object.__setattr__(self, "cwd", Path(self.cwd).resolve())
        object.__setattr__(
            self, "allowed_roots", tuple(Path(r).resolve() for r in self.allowed_roots)
        )
        if SANDBOX_MODES.index(self.default_sandbox) > SANDBOX_MODES.index(self.max_sandbox):
            raise SettingsError(
                f"--default-sandbox {self.default_sandbox} "
                f"is above --max-sandbox {self.max_sandbox}"
            )
        if not self.cwd.is_dir():
            raise SettingsError(f"--cwd {self.cwd} is not an existing directory")
        for root in self.allowed_roots:
            if not root.is_dir():
                raise SettingsError(f"--allowed-root {root} is not an existing directory")
        if self.allowed_roots and not any(
            self.cwd == root or root in self.cwd.parents for root in self.allowed_roots
        ):
            raise SettingsError(f"--cwd {self.cwd} lies outside every --allowed-root")
        if self.idle_timeout < 0:
            raise SettingsError("--idle-timeout must be 0 (off) or a number of seconds")
        if self.approval_timeout <= 0:
            raise SettingsError("--approval-timeout must be a positive number of seconds")
        if self.heartbeat_interval <= 0:
            raise SettingsError("--heartbeat-interval must be a positive number of seconds")
        if self.max_concurrent_turns < 1:
            raise SettingsError("--max-concurrent-turns must be at least 1")
        if not 0 < self.port < 65536:
            raise SettingsError("--port must be between 1 and 65535")
        object.__setattr__(
            self, "allowed_hosts", tuple(_host_header(h) for h in self.allowed_hosts)
        )
        if self.transport == "streamable-http" and not self.auth_token:
            if not self.loopback:
                raise SettingsError(
                    f"--host {self.host} is reachable from other machines: set "
                    "CODEX_MCP_AUTH_TOKEN to require a bearer token, or bind to 127.0.0.1."
                )
            if self.allowed_hosts:
                raise SettingsError(
                    "--allowed-host means the server is reached under another name, through a "
                    "proxy that other machines can reach: set CODEX_MCP_AUTH_TOKEN to require "
                    "a bearer token."
                )

    @property
    def loopback(self) -> bool:
        """Whether ``host`` is reachable only from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def sandbox_allowed(self, mode: str) -> bool:
        return SANDBOX_MODES.index(mode) <= SANDBOX_MODES.index(self.max_sandbox)  # type: ignore[arg-type,unused-ignore]


_HOST_HEADER = re.compile(r"(?:\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")


def _host_header(value: str) -> str:
    """``value`` as the ``Host`` header it admits: ``name`` or ``name:port``, lower case."""
    host = value.strip().lower()
    match = _HOST_HEADER.fullmatch(host)
    if match is None or not 0 < int(match["port"] or 80) < 65536:
        raise SettingsError(
            f"--allowed-host {value!r}: expected a host name as clients send it in the Host "
            "header, with an optional port: codex.example.com or codex.example.com:8443"
        )
    return host


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

_HELP = """\
An MCP server for OpenAI's Codex agent: start threads, run and resume turns, watch their
progress and cancel them. Serves MCP over stdio, or streamable HTTP. Every flag can also be
set through the environment variable named in its help; a flag wins over its variable.
Over HTTP, CODEX_MCP_AUTH_TOKEN (environment only) is the bearer token every request must
carry."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codex-mcp-server", description=_HELP)
    p.add_argument(
        "compat",
        nargs="?",
        choices=["mcp-server"],
        help="`codex-mcp-server mcp-server` stands in for the removed `codex mcp-server`: "
        "the same as --tool-set codex, so a configuration that ran `codex` with the argument "
        "`mcp-server` works by changing only its command.",
    )
    p.add_argument(
        "--codex-path",
        help="The codex binary. Default: the openai-codex-cli-bin wheel, else `codex` on PATH. "
        "[CODEX_MCP_CODEX_PATH]",
    )
    p.add_argument(
        "--backend",
        choices=get_args(EngineName),
        help="What runs Codex: app-server (one long-lived `codex app-server` holding every "
        "thread warm) or exec (one `codex exec` process per turn). Default: app-server. "
        "[CODEX_MCP_BACKEND]",
    )
    p.add_argument(
        "--cwd",
        help="Working directory of threads that name none. Default: the server's own. "
        "[CODEX_MCP_CWD]",
    )
    p.add_argument(
        "--default-model", help="Model of threads that name none. [CODEX_MCP_DEFAULT_MODEL]"
    )
    p.add_argument(
        "--default-sandbox",
        choices=SANDBOX_MODES,
        help="Sandbox of threads that name none. Default: read-only. [CODEX_MCP_DEFAULT_SANDBOX]",
    )
    p.add_argument(
        "--max-sandbox",
        choices=SANDBOX_MODES,
        help="The most a thread may ask for; asking for more is an error. "
        "Default: workspace-write. [CODEX_MCP_MAX_SANDBOX]",
    )
    p.add_argument(
        "--allowed-root",
        action="append",
        metavar="DIR",
        help="Repeatable. When given, working directories, extra directories and images must "
        "lie inside one of these (symlinks and .. resolved). "
        "[CODEX_MCP_ALLOWED_ROOTS, separated by the path separator]",
    )
    p.add_argument(
        "--approval-policy",
        choices=APPROVAL_POLICIES,
        help="Default approval policy. Default: never. On the app-server backend Codex's "
        "requests reach the host (elicitation, or answer_approval); exec cannot ask anyone. "
        "[CODEX_MCP_APPROVAL_POLICY]",
    )
    p.add_argument(
        "--config",
        action="append",
        metavar="KEY=VALUE",
        help="Repeatable. A codex config override (VALUE is a TOML literal) passed to every "
        "turn, before the thread's own. [CODEX_MCP_CONFIG, one per line]",
    )
    p.add_argument(
        "--allow-config-key",
        action="append",
        metavar="PATTERN",
        help="Repeatable. Admit more keys in a thread's `config` (and in the profiles threads "
        "name) than the built-in safe ones: a glob on dotted keys, e.g. "
        "'model_provider' or 'features.*'. Each admits what a client can then do, such as run "
        "programs or send credentials elsewhere. "
        "[CODEX_MCP_ALLOW_CONFIG_KEYS, comma- or newline-separated]",
    )
    p.add_argument(
        "--trust-project-config",
        action="store_true",
        default=None,
        help="Let codex load the .codex/config.toml (hooks, rules) of projects trusted in "
        "$CODEX_HOME/config.toml, and mark the projects of workspace-write threads trusted, "
        "as codex does on its own. Then a command of a workspace-write thread can plant "
        "config that a later thread runs outside the sandbox. Default: off, every thread's "
        "tree is untrusted. [CODEX_MCP_TRUST_PROJECT_CONFIG=1]",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        metavar="SECONDS",
        help="Fail a turn when codex shows no progress for this long; 0 turns it off. "
        "Default: 1800. [CODEX_MCP_IDLE_TIMEOUT]",
    )
    p.add_argument(
        "--heartbeat-interval",
        type=float,
        metavar="SECONDS",
        help="Send a progress heartbeat when codex has been silent this long. Default: 10. "
        "[CODEX_MCP_HEARTBEAT_INTERVAL]",
    )
    p.add_argument(
        "--approval-timeout",
        type=float,
        metavar="SECONDS",
        help="Decline an approval Codex asked for (app-server backend) when nobody has "
        "answered it for this long, so that the turn goes on. Default: 300. "
        "[CODEX_MCP_APPROVAL_TIMEOUT]",
    )
    p.add_argument(
        "--max-concurrent-turns",
        type=int,
        metavar="N",
        help="Turns that run at once; more wait in a queue and start in order. Default: 4, "
        "what a laptop runs comfortably. [CODEX_MCP_MAX_CONCURRENT_TURNS]",
    )
    p.add_argument(
        "--tool-set",
        choices=get_args(ToolSet),
        help="default: start_thread, run_turn, ...; codex: the `codex` and `codex-reply` tools "
        "of the removed `codex mcp-server`; all: both. Default: default. [CODEX_MCP_TOOL_SET]",
    )
    p.add_argument(
        "--transport",
        choices=get_args(Transport),
        help="stdio, or streamable-http (served at http://HOST:PORT/mcp). Default: stdio. "
        "[CODEX_MCP_TRANSPORT]",
    )
    p.add_argument(
        "--host",
        help="Address to serve HTTP on. Default: 127.0.0.1. Any other than loopback requires "
        "CODEX_MCP_AUTH_TOKEN. [CODEX_MCP_HOST]",
    )
    p.add_argument("--port", type=int, help="HTTP port. Default: 8000. [CODEX_MCP_PORT]")
    p.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME[:PORT]",
        help="Another Host header to accept over HTTP, e.g. the public name of a reverse proxy "
        "in front of the server (repeatable). Without it, only the bind address is accepted: "
        "requests under other names get 421, so a web page cannot reach the server by "
        "rebinding its name to this machine. Requires CODEX_MCP_AUTH_TOKEN. "
        "[CODEX_MCP_ALLOWED_HOSTS, comma-separated]",
    )
    p.add_argument(
        "--version",
        action="store_true",
        help="Print this package's version and codex's (the one --codex-path names), and exit.",
    )
    p.add_argument(
        "--log-level",
        choices=get_args(LogLevel),
        type=str.upper,
        help="Logging on stderr. Default: INFO. [CODEX_MCP_LOG_LEVEL]",
    )
    return p


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags, then environment variables, then defaults.

    Exits with status 2 and a message on stderr (argparse's way) when a value is bad.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    # Flags whose value came from the environment: their errors name the variable instead,
    # since that is what the user has to fix.
    from_env: dict[str, str] = {}

    def fail(message: str) -> NoReturn:
        parser.error(_FLAG.sub(lambda m: from_env.get(m[0], m[0]), message))

    def pick(flag: object, name: str) -> str | None:
        if flag is not None:
            return str(flag)
        value = env.get(f"CODEX_MCP_{name}")
        if not value:
            return None
        from_env["--" + name.lower().replace("_", "-")] = f"CODEX_MCP_{name}"
        return value

    def choice(flag: object, name: str, allowed: Sequence[str]) -> str | None:
        value = pick(flag, name)
        if value is not None and value not in allowed:
            fail(f"CODEX_MCP_{name}={value!r}: expected one of {', '.join(allowed)}")
        return value

    def number(flag: object, name: str) -> float | None:
        value = pick(flag, name)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            fail(f"CODEX_MCP_{name}={value!r} is not a number")

    roots = args.allowed_root
    if roots is None and env.get("CODEX_MCP_ALLOWED_ROOTS"):
        roots = [r for r in env["CODEX_MCP_ALLOWED_ROOTS"].split(os.pathsep) if r]
        from_env["--allowed-root"] = "CODEX_MCP_ALLOWED_ROOTS"
    config = args.config
    if config is None and env.get("CODEX_MCP_CONFIG"):
        config = [c.strip() for c in env["CODEX_MCP_CONFIG"].splitlines() if c.strip()]
        from_env["--config"] = "CODEX_MCP_CONFIG"
    patterns = args.allow_config_key
    if patterns is None and env.get("CODEX_MCP_ALLOW_CONFIG_KEYS"):
        patterns = re.split(r"[,\n]", env["CODEX_MCP_ALLOW_CONFIG_KEYS"])
    patterns = [pattern.strip() for pattern in patterns or () if pattern.strip()]
    for entry in config or ():
        key, sep, value = entry.partition("=")
        if not sep or not key.strip() or not value.strip():
            fail(f'--config {entry!r}: expected KEY=VALUE, e.g. model_verbosity="low"')
        if problem := _toml_problem(key, value):
            fail(f"--config {entry!r}: the value is not a TOML literal ({problem})")

    if args.version:
        from .about import version_text  # It reads these settings' types: imported late.

        print(version_text(pick(args.codex_path, "CODEX_PATH")))
        parser.exit()

    values: dict[str, object] = {}
    if (trust := pick(args.trust_project_config, "TRUST_PROJECT_CONFIG")) is not None:
        if trust.lower() not in _BOOLEANS:
            parser.error(f"CODEX_MCP_TRUST_PROJECT_CONFIG={trust!r}: expected 1 or 0")
        values["trust_project_config"] = _BOOLEANS[trust.lower()]
    if (codex_path := pick(args.codex_path, "CODEX_PATH")) is not None:
        try:
            find_codex(codex_path)
        except CodexNotFoundError:
            # Checked here, not in Settings: a binary removed while serving is a turn's error.
            fail(f"--codex-path {codex_path}: no executable file there. {INSTALL_HINT}")
        values["codex_path"] = codex_path
    if (backend := choice(args.backend, "BACKEND", get_args(EngineName))) is not None:
        values["backend"] = backend
    if (cwd := pick(args.cwd, "CWD")) is not None:
        values["cwd"] = Path(cwd).expanduser().resolve()
    if (model := pick(args.default_model, "DEFAULT_MODEL")) is not None:
        values["default_model"] = model
    if (sandbox := choice(args.default_sandbox, "DEFAULT_SANDBOX", SANDBOX_MODES)) is not None:
        values["default_sandbox"] = sandbox
    if (ceiling := choice(args.max_sandbox, "MAX_SANDBOX", SANDBOX_MODES)) is not None:
        values["max_sandbox"] = ceiling
    if roots:
        values["allowed_roots"] = tuple(Path(r).expanduser().resolve() for r in roots)
    if (policy := choice(args.approval_policy, "APPROVAL_POLICY", APPROVAL_POLICIES)) is not None:
        values["approval_policy"] = policy
    if config:
        values["config"] = tuple(config)
    if patterns:
        values["allow_config_keys"] = tuple(patterns)
    if (idle := number(args.idle_timeout, "IDLE_TIMEOUT")) is not None:
        values["idle_timeout"] = idle
    if (beat := number(args.heartbeat_interval, "HEARTBEAT_INTERVAL")) is not None:
        values["heartbeat_interval"] = beat
    if (wait := number(args.approval_timeout, "APPROVAL_TIMEOUT")) is not None:
        values["approval_timeout"] = wait
    level = pick(args.log_level, "LOG_LEVEL")
    if level is not None:
        values["log_level"] = choice(level.upper(), "LOG_LEVEL", get_args(LogLevel))
    if (turns := number(args.max_concurrent_turns, "MAX_CONCURRENT_TURNS")) is not None:
        if turns != int(turns):
            fail("--max-concurrent-turns must be a whole number")
        values["max_concurrent_turns"] = int(turns)
    if (tool_set := choice(args.tool_set, "TOOL_SET", get_args(ToolSet))) is not None:
        values["tool_set"] = tool_set
    elif args.compat == "mcp-server":
        values["tool_set"] = "codex"
    if (transport := choice(args.transport, "TRANSPORT", get_args(Transport))) is not None:
        values["transport"] = transport
    if (host := pick(args.host, "HOST")) is not None:
        values["host"] = host
    if (port := number(args.port, "PORT")) is not None:
        values["port"] = int(port)
    hosts = args.allowed_host
    if hosts is None and env.get("CODEX_MCP_ALLOWED_HOSTS"):
        hosts = [h for h in env["CODEX_MCP_ALLOWED_HOSTS"].split(",") if h.strip()]
        from_env["--allowed-host"] = "CODEX_MCP_ALLOWED_HOSTS"
    if hosts:
        values["allowed_hosts"] = tuple(hosts)
    if token := env.get("CODEX_MCP_AUTH_TOKEN"):
        values["auth_token"] = token
    if "cwd" not in values:
        values["cwd"] = Path.cwd().resolve()
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except SettingsError as exc:
        fail(str(exc))


_FLAG = re.compile(r"--[a-z][a-z-]*")


def _toml_problem(key: str, value: str) -> str | None:
    """Why ``key = value`` is not valid TOML, or ``None``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        tomllib.loads(f"{key.strip()} = {value.strip()}")
    except tomllib.TOMLDecodeError as exc:
        return str(exc)
    return None
