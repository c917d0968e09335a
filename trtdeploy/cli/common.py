"""What every command shares: logging setup, error-to-exit-code mapping, progress bars."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from trtdeploy.errors import TrtDeployError, UsageError
from trtdeploy.log import LOGGER_NAME

console = Console(stderr=True)


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [RichHandler(console=console, show_path=False, show_time=False)]
    logger.setLevel(level)
    logger.propagate = False
    # TensorFlow and tf2onnx are chatty; keep them at warnings unless -vv. TensorFlow's C++
    # start-up lines (cpu_feature_guard, grappler) obey only this variable, read when it loads.
    if verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for noisy in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose > 1 else logging.ERROR)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn our errors into one readable line and an exit code; never a traceback."""
    try:
        yield
    except TrtDeployError as exc:
        # escape: messages contain [brackets] (extras, shapes) that rich would take as markup
        _error_line(str(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        # Drop the interrupted frames now: a generator suspended in them (e.g. one that keeps an
        # ONNX Runtime run going in a helper thread) is closed here, its thread pool joined, before
        # the interpreter exits; left to interpreter teardown, a native thread still running aborts
        # the process ("terminate called without an active exception", exit 134). Outputs are
        # written atomically, so nothing partial is left.
        traceback.clear_frames(exc.__traceback__)
        del exc
        console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # a bug in trtdeploy: still one line, traceback only with -v
        if logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG):
            console.print_exception()
        console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} (re-run with -v for the traceback "
            "and please report it)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def check_range(
    option: str,
    value: float | None,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
) -> None:
    """Refuse an option value outside its range (UsageError, exit 2); None means "not given".
    NaN is outside every range."""
    if value is None:
        return
    ok = value == value  # NaN is never in range
    if minimum is not None:
        ok = ok and value >= minimum
    if above is not None:
        ok = ok and value > above
    if maximum is not None:
        ok = ok and value <= maximum
    if not ok:
        low = f">= {minimum:g}" if minimum is not None else (f"> {above:g}" if above is not None else "")
        high = f"<= {maximum:g}" if maximum is not None else ""
        raise UsageError(f"{option} {value:g} is out of range: it must be {' and '.join(x for x in (low, high) if x)}")


def progress() -> Progress:
    """A progress bar on stderr, hidden when stderr is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not sys.stderr.isatty(),
    )


VerboseOpt = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-vv for TensorFlow's too).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Only warnings and errors.")


def _error_line(message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run_app(app: typer.Typer, args: Sequence[str] | None = None) -> None:
    """The console-script entry point: run the typer app and exit with its code.

    typer/click's own usage errors (unknown option, missing or invalid value) become one
    ``error:`` line and exit 2 like ours, instead of a usage box; Ctrl-C exits 130.
    """
    from typer._click import exceptions as click_errors

    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="trtdeploy", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        code = 2
    except click_errors.UsageError as exc:
        # the message is click's; where a command is known, say how to get its help
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error_line(" ".join(exc.format_message().split()) + where)
        code = 2
    except click_errors.ClickException as exc:
        _error_line(" ".join(exc.format_message().split()))
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C outside a command's user_errors()
        console.print("[bold red]interrupted[/]")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
