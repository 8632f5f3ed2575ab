"""run, wait and rm: the commands that change or wait on jobs."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import click

from .. import durations, jobspec, names
from .. import status as st
from ..errors import INTERRUPTED, JOB_FAILED, NotFound, TenxError, TimedOut, UsageError
from ..escape import escape
from ..lines import LinePrinter
from ..main import State, cli, complete_job_names
from ..output import emit_document, is_tty, spinner, styled

if TYPE_CHECKING:
    from ..follow import JobEnd


def _resume_hint(name: str) -> str:
    return (f"stopped following; job {name} keeps running. Follow it again: tenx logs -f {name}  "
            f"wait for it: tenx wait {name}  delete it: tenx rm {name}")


def report_end(name: str, end: JobEnd, exit_code: bool) -> int:
    """Say how the job ended (stderr) and return the exit status: 0, 1 (failed or deleted), or with
    ``exit_code`` the first failed instance's own exit code."""
    if end.status == st.SUCCEEDED:
        click.echo(styled(f"job {name} succeeded", "green", sys.stderr), err=True)
        return 0
    if end.status == st.DELETED:
        click.echo(f"tenx: job {name} was deleted before it finished", err=True)
        return JOB_FAILED
    why = f": {escape(end.reason)}" if end.reason else ""
    click.echo(styled(f"job {name} failed{why}", "red", sys.stderr), err=True)
    for outcome in end.outcomes:
        click.echo(f"  {escape(st.exit_summary(outcome))}", err=True)
    code = end.first_exit_code() if exit_code else None
    return code if code is not None else JOB_FAILED


def _load_file(path: str) -> dict[str, Any]:
    if path == "-":
        return jobspec.read_spec(sys.stdin.read(), "standard input")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    return jobspec.read_spec(text, path)


@cli.command(context_settings={"show_default": False})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("-f", "--file", "file", metavar="JOB.JSON", help="job.json to send ('-': standard input); flags "
              "below change it (container flags its first container).")
@click.option("--image", help="The container's image.")
@click.option("-i", "image_short", hidden=True, help="Deprecated: --image (docker and kubectl mean stdin by -i).")
@click.option("--env", "-e", multiple=True, metavar="KEY=VALUE", help="An environment variable (repeatable).")
@click.option("--memory", "-m", metavar="QUANTITY", help="Memory limit, e.g. 512Mi.")
@click.option("--cpu", metavar="QUANTITY", help="CPU limit, e.g. 500m.")
@click.option("--volume", "-v", multiple=True, metavar="NAME:/PATH[:ro]",
              help="A host volume mounted at PATH (repeatable).")
@click.option("--port", multiple=True, metavar="PORT[/PROTO]", help="A container port (informational).")
@click.option("--pull-always/--no-pull-always", default=None, help="Always pull the image / only if missing.")
@click.option("--sync-timezone/--no-sync-timezone", default=None, help="Give the container the node's timezone.")
@click.option("--parallelism", type=click.IntRange(0), help="Pods running at once.")
@click.option("--completions", type=click.IntRange(1), help="Successful pods needed.")
@click.option("--backoff-limit", type=click.IntRange(0), help="Retries before the job fails.")
@click.option("--deadline", "active_deadline_seconds", type=click.IntRange(1), metavar="SECONDS",
              help="Wall-clock limit of the whole job.")
@click.option("--ttl", "ttl_seconds_after_finished", type=click.IntRange(0), metavar="SECONDS",
              help="Delete the finished job this long after it ends.")
@click.option("--follow/--no-follow", "-F/-d", default=None,
              help="Stream the logs and wait for the end (default: when stdout is a terminal).")
@click.option("--exit-code", is_flag=True, help="Exit with the first failed instance's exit code, not 1.")
@click.option("--rm", "remove", is_flag=True, help="Delete the job when it has ended (needs --follow).")
@click.option("--dry-run", is_flag=True, help="Print the job.json and send nothing.")
@click.option("--generate-name", is_flag=True,
              help="NAME is a prefix: the job is NAME-xxxxx, a fresh random suffix (argo's habit), printed.")
@click.option("--raw", is_flag=True, help="Followed lines exactly as the job wrote them, terminal control sequences "
              "included (by default they are shown escaped).")
@click.pass_obj
def run(state: State, name: str, command: tuple[str, ...], file: str | None, follow: bool | None, exit_code: bool,
        remove: bool, dry_run: bool, generate_name: bool, raw: bool, image_short: str | None, **flags: Any) -> int:
    """Create job NAME from -f job.json, or from --image and a command after --; follow it on a terminal.

    \b
    tenx run hello --image busybox -- sh -c 'echo hello; sleep 5'
    tenx run batch -f job.json --parallelism 4 --follow
    tenx run hello --generate-name --image busybox -- echo hi    a new job hello-x7k2p each time
    """
    if image_short is not None:
        click.echo("tenx: warning: -i is deprecated (docker and kubectl mean standard input by it) and will be "
                   "removed; use --image", err=True)
        flags["image"] = flags["image"] or image_short
    job_fields = {key: flags.pop(key) for key in jobspec.JOB_FIELDS}
    run_flags = jobspec.RunFlags(command=command, job=job_fields, volumes=flags.pop("volume"),
                                 ports=flags.pop("port"), **flags)
    spec = jobspec.build(run_flags, _load_file(file) if file else None)
    if dry_run:
        emit_document(spec, "json")
        return 0
    follow = is_tty(sys.stdout) if follow is None else follow
    if remove and not follow:
        raise UsageError("--rm needs --follow: the job is deleted once it has ended")
    client = state.client()
    name, created = _create(client, name, spec, generate_name)
    if not follow:
        click.echo(name)
        return 0
    click.echo(styled(f"job {name} created; following its logs (Ctrl-C stops following, the job keeps running)",
                      "dim", sys.stderr), err=True)
    end = follow_to_end(client, name, created, raw=raw)
    result = report_end(name, end, exit_code)
    if remove:
        client.delete_job(name)
        click.echo(f"job {name} deleted", err=True)
    return result


_GENERATE_ATTEMPTS = 3


def _create(client, name: str, spec: dict[str, Any], generate_name: bool) -> tuple[str, dict[str, Any]]:
    """Create the job: as NAME, or with ``generate_name`` as NAME-<random suffix> (another suffix if that one is
    taken). The name used, and the Job as created."""
    if not generate_name:
        return name, client.create_job(name, spec).get("job") or {}
    for attempt in range(_GENERATE_ATTEMPTS):
        candidate = names.generate(name)
        try:
            return candidate, client.create_job(candidate, spec).get("job") or {}
        except TenxError as exc:
            if exc.status != 409 or attempt == _GENERATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def follow_to_end(client, name: str, job: dict[str, Any], *, raw: bool = False) -> JobEnd:
    """The job's lines to stdout until it ends; Ctrl-C stops following (status 130) and says how to resume."""
    from ..follow import Follower  # requests is imported by the commands that call the gateway only
    spec = job.get("spec") or {}
    several = (spec.get("parallelism") or 1) > 1 or (spec.get("completions") or 1) > 1
    try:
        with spinner(f"waiting for job {name} to start") as update:
            printer = LinePrinter(prefix=several, on_first=lambda: update(f"job {name} running"), raw=raw)
            # the spinner (stderr) and lines (stdout) share the terminal: rich keeps the spinner below them
            return Follower(client, name).follow_job(printer)
    except KeyboardInterrupt:
        click.echo("", err=True)
        click.echo(f"tenx: {_resume_hint(name)}", err=True)
        raise SystemExit(INTERRUPTED) from None


@contextmanager
def _deadline(seconds: float | None, name: str) -> Iterator[None]:
    """SIGALRM interrupts whatever is blocking (a stream read, a sleep) once ``seconds`` have passed."""
    if not seconds:
        yield
        return

    def expire(_signum, _frame):
        raise TimedOut(f"job {name} did not end within {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@cli.command()
@click.argument("name", shell_complete=complete_job_names)
@click.option("--timeout", type=durations.DURATION, metavar="DURATION",
              help="Give up after this long (exit status 7): seconds, or 90s, 5m, 1h30m as kubectl wait takes it.")
@click.option("--exit-code", is_flag=True, help="Exit with the first failed instance's exit code, not 1.")
@click.pass_obj
def wait(state: State, name: str, timeout: float | None, exit_code: bool) -> int:
    """Wait until job NAME has succeeded (exit 0) or failed (exit 1)."""
    from ..follow import Follower
    client = state.client()
    with spinner(f"job {name}: waiting") as update:
        def on_status(summary: dict[str, Any]) -> None:
            update(f"job {name}: {summary.get('status')} ({summary.get('active', 0)} active, "
                   f"{summary.get('succeeded', 0)} succeeded, {summary.get('failed', 0)} failed)")
        with _deadline(timeout, name):
            end = Follower(client, name).wait(on_status)
    return report_end(name, end, exit_code)


@cli.command()
@click.argument("names", nargs=-1, required=True, shell_complete=complete_job_names)
@click.pass_obj
def rm(state: State, names: tuple[str, ...]) -> int:
    """Delete jobs (their pods go too; their logs stay in the archive)."""
    client = state.client()
    missing = 0
    for name in names:
        try:
            client.delete_job(name)
        except NotFound as exc:
            click.echo(f"tenx: {exc.message}", err=True)
            missing += 1
            continue
        click.echo(f"job {name} deleted")
    return NotFound.exit_code if missing else 0
