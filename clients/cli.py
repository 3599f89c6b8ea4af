"""The `alphaavatar` command: serve servers, debug them as an MCP client, configure hosts."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import __version__


class _App(typer.Typer):
    """Configuration errors are printed as one clear line, not a traceback."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        from mcp_servers.core.errors import StoreLocked
        from mcp_servers.core.transports import RefusedToStart

        try:
            return super().__call__(*args, **kwargs)
        except (RefusedToStart, StoreLocked) as exc:
            typer.echo(f"alphaavatar: {exc}", err=True)
            raise SystemExit(2) from None


app = _App(no_args_is_help=True, add_completion=False, help="AlphaAvatar MCP: memory, persona, character and research servers.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alphaavatar {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """AlphaAvatar MCP."""
    from mcp_servers.core import heap
    from mcp_servers.core.settings import get_settings

    heap.limit_arenas()  # before any thread starts: they then share two malloc arenas

    # The agent and every server started from here share the data root that core settings resolve.
    os.environ["ALPHAAVATAR_HOME"] = str(get_settings().home)


@app.command()
def serve(
    server: Annotated[str, typer.Argument(help="memory | persona | character | research")],
    transport: Annotated[str, typer.Option(help="stdio | sse | http")] = "stdio",
    host: Annotated[str, typer.Option(help="Bind address for sse/http (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for sse/http.")] = 8765,
) -> None:
    """Serve one MCP server."""
    from mcp_servers.core.logs import setup_logging
    from mcp_servers.core.settings import get_settings
    from mcp_servers.core.transports import serve as run

    from .registry import create

    if transport not in ("stdio", "sse", "http"):
        raise typer.BadParameter("transport must be stdio, sse or http")
    settings = get_settings()
    setup_logging(server, settings.log_level)
    run([create(server, settings)], transport, host, port, settings)  # type: ignore[arg-type]


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Bind address (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Serve every server in one process on one port: /memory/mcp, /persona/mcp, ... and /healthz."""
    from mcp_servers.core.logs import setup_logging
    from mcp_servers.core.settings import get_settings
    from mcp_servers.core.transports import serve

    from .console.app import routes as console_routes
    from .console.app import upload_dir
    from .registry import available, create

    settings = get_settings()
    setup_logging("up", settings.log_level)
    # the console hands uploaded documents to corpus_add as files, which it reads only under allowed roots
    settings.allowed_roots.append(upload_dir(settings))
    specs = [create(name, settings) for name in available()]
    for spec in specs:
        typer.echo(f"{spec.name:>10}: http://{host}:{port}/{spec.name}/mcp", err=True)
    typer.echo(f"{'console':>10}: http://{host}:{port}/", err=True)
    near = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else f"[{host}]" if ":" in host else host
    own = f"http://{near}:{port}"  # the console's MCP sessions go to this very process
    serve(specs, "http", host, port, settings, prefixed=True, extra=console_routes(own, settings))


@app.command()
def console(
    host: Annotated[str, typer.Option(help="Where `alphaavatar up` listens.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Its port.")] = 8765,
) -> None:
    """Open the console of a running `alphaavatar up` in the browser (sign in there with your token)."""
    import webbrowser

    url = f"http://{host}:{port}/"
    typer.echo(url)
    webbrowser.open(url)


def _server_params(server: str) -> object:
    from mcp import StdioServerParameters

    exe = shutil.which("alphaavatar") or sys.argv[0]
    return StdioServerParameters(command=exe, args=["serve", server, "--transport", "stdio"], env=dict(os.environ))


async def _with_session(target: str, action: object) -> object:
    """`target` is a server name (launched over stdio) or an http(s) URL of an MCP endpoint."""
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client

    if target.startswith(("http://", "https://")):
        import httpx2

        token = os.environ.get("ALPHAAVATAR_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with httpx2.AsyncClient(headers=headers, timeout=120) as http, streamable_http_client(
            target, http_client=http
        ) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return await action(session)  # type: ignore[operator]
    async with stdio_client(_server_params(target)) as (read, write), ClientSession(read, write) as session:  # type: ignore[arg-type]
        await session.initialize()
        return await action(session)  # type: ignore[operator]


@app.command()
def tools(server: Annotated[str, typer.Argument(help="A server name or an MCP URL.")]) -> None:
    """List a server's tools with their descriptions."""

    async def action(session: object) -> None:
        listed = await session.list_tools()  # type: ignore[attr-defined]
        for tool in listed.tools:
            typer.echo(f"{tool.name}: {(tool.description or '').strip().splitlines()[0] if tool.description else ''}")

    asyncio.run(_with_session(server, action))  # type: ignore[arg-type]


@app.command()
def call(
    server: Annotated[str, typer.Argument(help="A server name or an MCP URL.")],
    tool: Annotated[str, typer.Argument(help="Tool name.")],
    arguments: Annotated[str, typer.Argument(help="Tool arguments as JSON.")] = "{}",
) -> None:
    """Call one tool and print its structured result (exit status 1 on a tool error)."""
    try:
        args = json.loads(arguments)
    except ValueError as exc:
        raise typer.BadParameter(f"arguments are not JSON: {exc}") from exc

    async def action(session: object) -> bool:
        from mcp.shared.exceptions import MCPError

        try:
            res = await session.call_tool(tool, args)  # type: ignore[attr-defined]
        except MCPError as exc:  # an unknown tool, or arguments the protocol refuses
            typer.echo(exc.error.message, err=True)
            return True
        if res.structured_content is not None and not res.is_error:
            typer.echo(json.dumps(res.structured_content, indent=2, ensure_ascii=False))
        else:
            for c in res.content:
                typer.echo(getattr(c, "text", c))
        return bool(res.is_error)

    if asyncio.run(_with_session(server, action)):  # type: ignore[arg-type]
        raise typer.Exit(1)


@app.command("claude-config")
def claude_config() -> None:
    """Print the `mcpServers` JSON that adds every server to Claude Desktop."""
    from .claude import claude_desktop_config

    typer.echo(json.dumps(claude_desktop_config(), indent=2))


@app.command()
def doctor() -> None:
    """What is configured, what is missing, and what each missing part disables."""
    from .doctor import report

    ok = report()
    raise typer.Exit(0 if ok else 1)


ConfigArg = Annotated[Path, typer.Argument(help="A pipeline YAML (see clients/examples/).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: --set llm.model=gpt-4o-mini")]


@app.command()
def chat(
    config: ConfigArg,
    user: Annotated[str | None, typer.Option(help="Who is typing (a user id; default: your login).")] = None,
    set_: SetOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log to stderr (else to $ALPHAAVATAR_HOME/agent/logs/).")] = False,
) -> None:
    """Chat with the agent in the terminal (no LiveKit needed); one turn per line when piped."""
    from .chat import main as chat_main

    raise typer.Exit(chat_main(config, user, set_ or [], verbose))


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=_PASSTHROUGH)
def agent(
    ctx: typer.Context,
    mode: Annotated[str, typer.Argument(help="dev | start | console | connect (the livekit-agents worker CLI), "
                                              "or replay (CONFIG RECORDING.wav [MORE.wav…: one per participant] [--out FILE.jsonl])")],
    config: ConfigArg,
    set_: SetOpt = None,
) -> None:
    """Run the voice agent as a LiveKit worker (extra options go to the livekit-agents CLI), or
    replay a recorded conversation through it: one JSON line per utterance heard."""
    if mode == "replay":
        from agent.replay import main as replay_main

        raise typer.Exit(replay_main(config, set_ or [], list(ctx.args)))
    from agent.worker import run

    run(mode, config, set_ or [], list(ctx.args))


@app.command(context_settings=_PASSTHROUGH)
def dev(ctx: typer.Context, config: ConfigArg, set_: SetOpt = None) -> None:
    """Shorthand for `alphaavatar agent dev CONFIG.yaml`."""
    from agent.worker import run

    run("dev", config, set_ or [], list(ctx.args))


character_app = typer.Typer(no_args_is_help=True, help="The character protocol (renderer authors start here).")
app.add_typer(character_app, name="character")


@character_app.command("schema")
def character_schema() -> None:
    """Print the JSON Schema of the character event envelope (all kinds)."""
    from character_bridge.protocol import schema_json

    typer.echo(schema_json())


@app.command("download-files")
def download_files(
    models: Annotated[list[str] | None, typer.Argument(
        help="text (memory, research) and/or wespeaker (persona, optional); by default those the installed servers use.",
    )] = None,
    url: Annotated[list[str] | None, typer.Option(help="Fetch the wespeaker model from this URL instead (repeatable).")]
    = None,
) -> None:
    """Fetch model files for offline starts: the text model (unless it is here already), the wespeaker model."""
    from mcp_servers.core import text_weights
    from mcp_servers.core.settings import get_settings

    from .download import WESPEAKER_URLS, DownloadError, download_wespeaker
    from .registry import available

    if unknown := set(models or ()) - {"text", "wespeaker"}:
        raise typer.BadParameter(f"{', '.join(sorted(unknown))}: choose text or wespeaker")
    servers = set(available())
    wanted = set(models or ()) or {name for name, users in (("text", {"memory", "research"}), ("wespeaker", {"persona"}))
                                   if servers & users}
    settings = get_settings()
    failed = False
    if "text" in wanted:
        try:
            typer.echo(f"text model (memory, research): {text_weights.locate(text_weights.named_folder(settings))}")
        except text_weights.WeightsMissing as exc:
            typer.echo(str(exc), err=True)
            failed = True
    if "wespeaker" in wanted:
        try:
            path = download_wespeaker(settings.home, tuple(url) if url else WESPEAKER_URLS)
            typer.echo(f"wespeaker model: {path}\nUse it with ALPHAAVATAR_PERSONA_VOICE_MODEL=wespeaker.")
        except DownloadError as exc:
            typer.echo(str(exc), err=True)
            failed = True
    if failed:
        raise typer.Exit(1)
