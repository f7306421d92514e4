"""Log capture: print and logging inside a function become that call's log lines."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest

import convex_notebook as cn


def entries(app, path):
    return [e for e in app.logs if e.path == path]


def test_print_and_logging_become_log_lines(app):
    log = logging.getLogger("convex_notebook.tests.user")

    @app.mutation
    def chatty(ctx, x):
        print("hello", x)
        print("a", "b", sep="-")
        print("problem", file=sys.stderr)
        logging.warning("warned %s", "here")
        log.error("an error")
        return x

    assert app.mutation("chatty", {"x": "X"}) == "X"
    (entry,) = entries(app, "chatty")
    assert entry.kind == "mutation"
    assert entry.ok and entry.error is None
    assert entry.lines == ["[LOG] hello X", "[LOG] a-b", "[ERROR] problem", "[WARN] warned here", "[ERROR] an error"]


def test_logger_levels_are_respected(app):
    log = logging.getLogger("convex_notebook.tests.levels")
    log.setLevel(logging.DEBUG)
    try:
        @app.query
        def levels(ctx):
            log.debug("d")
            log.info("i")
            return None

        app.query("levels")
        assert entries(app, "levels")[0].lines == ["[DEBUG] d", "[INFO] i"]
    finally:
        log.setLevel(logging.NOTSET)


@pytest.mark.parametrize("kind", ["query", "mutation", "action"])
def test_each_call_gets_its_own_entry(app, kind):
    def handler(ctx, n):
        print("call", n)
        return n

    getattr(app, kind)(name="f")(handler)
    getattr(app, kind)("f", {"n": "1"})
    getattr(app, kind)("f", {"n": "2"})
    got = entries(app, "f")
    assert [e.lines for e in got] == [["[LOG] call 1"], ["[LOG] call 2"]]
    assert all(e.kind == kind for e in got)


def test_failed_call_keeps_its_lines_and_error(app):
    @app.mutation
    def fails(ctx):
        print("before failing")
        raise RuntimeError("bad thing")

    with pytest.raises(cn.ConvexFunctionError):
        app.mutation("fails")
    (entry,) = entries(app, "fails")
    assert entry.lines == ["[LOG] before failing"]
    assert not entry.ok and "bad thing" in entry.error


def test_async_action_logs(app):
    @app.internal_mutation
    def inner(ctx):
        print("inner mutation")

    @app.action
    async def act(ctx):
        print("start")
        await ctx.run_mutation("inner")
        await asyncio.sleep(0)
        print("end")

    app.action("act")
    (entry,) = entries(app, "act")
    assert entry.lines == ["[LOG] start", "[LOG] inner mutation", "[LOG] end"]


def test_inline_run_logs(app):
    def body(ctx):
        print("inline line")

    app.run(body)
    assert app.logs.tail(1)[0].lines == ["[LOG] inline line"]


def test_print_outside_functions_is_untouched(app, capsys):
    @app.query
    def q(ctx):
        return 1

    app.query("q")
    print("ordinary output")
    assert "ordinary output" in capsys.readouterr().out


def test_print_to_a_file_is_not_captured(app, tmp_path):
    target = tmp_path / "out.txt"

    @app.action
    def writes_file(ctx):
        with open(target, "w") as fh:
            print("to the file", file=fh)

    app.action("writes_file")
    assert target.read_text() == "to the file\n"
    assert entries(app, "writes_file")[0].lines == []


def test_long_lines_truncated(app):
    @app.query
    def long(ctx):
        print("x" * 10_000)

    app.query("long")
    (line,) = entries(app, "long")[0].lines
    assert len(line) < 5_000 and line.endswith("(truncated)")


def test_parallel_threads_do_not_mix_lines():
    app = cn.Backend(echo_logs=False)
    rounds = 50
    barrier = threading.Barrier(2, timeout=30)

    @app.action
    def talk(ctx, tag):
        for i in range(rounds):
            print(tag, i)
            logging.warning("%s warn %d", tag, i)
            if i % 10 == 0:
                barrier.wait()  # both actions are in the middle of printing together
        return tag

    @app.mutation
    def write(ctx, tag):
        print(tag, "mutation")

    errors: list[BaseException] = []

    def worker(tag: str) -> None:
        try:
            app.action("talk", {"tag": tag})
            app.mutation("write", {"tag": tag})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    talk_entries = entries(app, "talk")
    assert len(talk_entries) == 2
    for entry in talk_entries:
        tags = {line.split()[1] for line in entry.lines}
        assert len(tags) == 1, entry.lines
        assert len(entry.lines) == 2 * rounds
    assert {tuple(e.lines) for e in entries(app, "write")} == {("[LOG] A mutation",), ("[LOG] B mutation",)}
    app.close()


def test_concurrent_async_actions_do_not_mix_lines(app):
    @app.action
    async def talk(ctx, tag):
        for i in range(20):
            print(tag, i)
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(app.action_async("talk", {"tag": t}) for t in "ABC"))

    asyncio.run(main())
    got = entries(app, "talk")
    assert len(got) == 3
    for entry in got:
        assert len({line.split()[1] for line in entry.lines}) == 1
        assert len(entry.lines) == 20


def test_echo_logs(capsys):
    loud = cn.Backend(echo_logs=True)
    quiet = cn.Backend(echo_logs=False)
    try:
        for app in (loud, quiet):
            @app.mutation
            def speak(ctx):
                print("spoken")
                logging.warning("warned")

        capsys.readouterr()
        quiet.mutation("speak")
        captured = capsys.readouterr()
        assert "spoken" not in captured.out + captured.err
        assert "warned" not in captured.out + captured.err
        assert quiet.logs.tail(1)[0].lines == ["[LOG] spoken", "[WARN] warned"]

        loud.mutation("speak")
        out = capsys.readouterr().out
        assert "[LOG] spoken" in out and "[WARN] warned" in out
    finally:
        loud.close()
        quiet.close()


def test_echo_only_once_for_nested_calls(capsys):
    app = cn.Backend(echo_logs=True)
    try:
        @app.internal_mutation
        def inner(ctx):
            print("inner line")

        @app.action
        def outer(ctx):
            ctx.run_mutation("inner")
            print("outer line")

        capsys.readouterr()
        app.action("outer")
        out = capsys.readouterr().out
        assert out.count("inner line") == 1
        assert out.count("outer line") == 1
    finally:
        app.close()


def test_backend_leaves_print_and_stdout_alone():
    import builtins

    before = builtins.print, sys.stdout, sys.stderr
    app = cn.Backend(echo_logs=False)
    try:
        @app.mutation
        def speaks(ctx):
            print("inside")

        app.mutation("speaks")
        assert (builtins.print, sys.stdout, sys.stderr) == before
        assert app.logs.tail(1)[0].lines == ["[LOG] inside"]
    finally:
        app.close()


def _helper_that_prints(n):
    print("helper says", n)


def test_print_in_a_helper_of_the_functions_module_is_captured(app):
    @app.query
    def uses_helper(ctx):
        _helper_that_prints(7)

    app.query("uses_helper")
    assert entries(app, "uses_helper")[0].lines == ["[LOG] helper says 7"]


def test_other_threads_print_normally_while_a_call_runs(app, capsys):
    started, printed = threading.Event(), threading.Event()

    @app.action
    def waits(ctx):
        print("from the call")
        started.set()
        assert printed.wait(10)

    def bystander():
        assert started.wait(10)
        print("from a bystander thread")
        printed.set()

    thread = threading.Thread(target=bystander)
    thread.start()
    app.action("waits")
    thread.join(10)
    assert entries(app, "waits")[0].lines == ["[LOG] from the call"]
    assert "from a bystander thread" in capsys.readouterr().out


def test_a_module_with_its_own_print_keeps_it(app):
    seen = []
    namespace = {"seen": seen, "print": lambda *a, **k: seen.append(a)}
    exec("def own(ctx):\n    print('mine')\n", namespace)
    app.query(name="own")(namespace["own"])
    app.query("own")
    assert seen == [("mine",)]
    assert entries(app, "own")[0].lines == []


def test_the_root_logger_is_left_alone_between_calls(app):
    """logging.basicConfig() in a cell after the backend exists still configures logging:
    the capture handler is on the root logger only while a call runs."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    seen: list[str] = []

    @app.mutation
    def logs_a_warning(ctx):
        seen.append(f"{len(root.handlers)} handler(s) during the call")
        logging.warning("inside the call")

    try:
        root.handlers.clear()  # as in a fresh kernel (pytest attaches its own handlers)
        app.mutation("logs_a_warning")
        assert root.handlers == []
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        assert len(root.handlers) == 1 and root.level == logging.INFO  # it took effect
        app.mutation("logs_a_warning")
        assert seen == ["1 handler(s) during the call", "2 handler(s) during the call"]
        assert len(root.handlers) == 1
        # Both calls captured their record.
        assert [e.lines for e in entries(app, "logs_a_warning")] == [["[WARN] inside the call"]] * 2
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
