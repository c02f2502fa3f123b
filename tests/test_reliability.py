"""Bad input ends in one line naming the field or option, exit status 2, no traceback, in
bounded time and memory; and a fuzz of configurations and command lines that never ends in a
traceback. (The host link's faults are in test_boards: they need the RTL.)"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsegate.cli import main

CI_EXAMPLES = 25
SLOW_EXAMPLES = 400


def refused(capsys, argv: list[str], field: str, status: int = 2) -> str:
    """Run the command line; it must exit with ``status`` and one stderr line naming
    ``field``. Returns the line."""
    assert main(argv) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pulsegate: error: "), err[:500]
    assert field in err, err
    assert "Traceback" not in err
    assert len(err) < 400, f"{len(err)} characters"
    return err


def config_file(tmp_path: Path, content: str | bytes, name: str = "c.json") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


# -- configuration files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b'{"layers": [2, 4, 1], "output": "\xff\xfe"}', "'<file>': "),
        ('{"seed": 1' + "9" * 5000 + "}", "'<root>': not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "'<root>'"),
        (" " * (1 << 20) + "{}", "larger than 1,048,576 bytes"),
        ('{"layers": [3]}', "'layers': the xor circuit needs"),
        ('{"layers": [3, 4, 1]}', "'layers[0]': the xor task has 2 inputs"),
        ('{"layers": [2, 4, 2]}', "'layers[2]': the xor task has 1 output"),
        ('{"layers": ' + json.dumps([2] * 100_000) + "}", "at most 16 layers, got 100,000"),
        ('{"layers": [2, 4096, 4096, 1]}', "weights, at most 1,048,576"),
        ('{"bias_init": 1e300}', "'bias_init': must be within the weight format's range"),
        ('{"bias_init": -9.0}', "'bias_init'"),
        (
            '{"current_width": 24, "current_frac": 22, "weight_frac": 0, '
            '"learning_rate_shift": 30}',
            "'learning_rate_shift': 2*current_frac + learning_rate_shift - weight_frac = 74",
        ),
        ('{"rounding": "stochastic", "learning_rate_shift": 30}', "= 42 > 32"),
        ('{"ticks_per_window": 1024, "leak_shift": 1}', "'ticks_per_window': the exact gain"),
        ('{"output": "' + "x" * 500_000 + '"}', "(500,002 characters)"),
        ('{"' + "k" * 100_000 + '": 1}', "unknown key"),
    ],
    ids=[
        "not-utf8",
        "huge-int",
        "deep-nesting",
        "over-1MB",
        "one-entry",
        "xor-inputs",
        "xor-outputs",
        "100k-layers",
        "too-many-weights",
        "bias-huge",
        "bias-over-format",
        "update-shift-74",
        "stochastic-shift-42",
        "gain-overflow",
        "long-string",
        "long-key",
    ],
)
def test_a_bad_configuration_file_is_one_line(capsys, tmp_path, content, field):
    refused(capsys, ["golden", "xor", "--config", config_file(tmp_path, content)], field)


@pytest.mark.parametrize(
    ("dataset", "layers", "field"),
    [
        ("iris", [5, 8, 3], "'layers[0]': the iris task has 4 inputs"),
        ("iris", [4, 8, 2], "'layers[2]': the iris task has 3 output(s)"),
        ("digits", [64, 32, 9], "'layers[2]': the digits task has 10 output(s)"),
        ("digits", [64], "'layers': the digits circuit needs 2 to 16 entries"),
    ],
)
def test_a_network_of_the_wrong_shape_for_its_task_names_layers(
    capsys, tmp_path, dataset, layers, field
):
    path = config_file(tmp_path, json.dumps({"layers": layers}))
    refused(capsys, ["train", dataset, "--config", path], field)


def test_a_one_layer_network_stays_valid(capsys, tmp_path):
    path = config_file(tmp_path, '{"layers": [4, 3]}')
    assert main(["schedule", "--config", path]) == 0
    assert "learn" in capsys.readouterr().out


def test_an_endless_file_is_refused_quickly_and_in_little_memory(tmp_path):
    """``--config /dev/zero`` was read whole (9 GB); now one byte past the cap."""

    def limit_memory() -> None:  # 2 GB of address space is far below the old 9 GB
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    code = "import sys; from pulsegate.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "schedule", "--config", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "larger than 1,048,576 bytes" in proc.stderr


# -- command lines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["golden", "ar2", "--samples", "0"], "--samples: must be a whole number >= 3"),
        (["sim", "ar2", "--samples", "2"], "--samples: must be a whole number >= 3"),
        (["golden", "xor", "--max-samples", "0"], "--max-samples"),
        (["sim", "xor", "--max-samples", "-4"], "--max-samples"),
        (["bench", "rtl", "--samples", "0"], "--samples"),
        (["bench", "roofline", "--epochs", "0"], "--epochs"),
        (["bench", "golden", "--seconds", "nan"], "--seconds"),
        (["host", "info", "--port", "/nonexistent", "--baud", "-1"], "--baud"),
        (["host", "info", "--port", "/nonexistent", "--timeout", "-1"], "--timeout"),
        (["host", "info", "--port", "/nonexistent", "--deadline", "0"], "--deadline"),
        (["build", "--board", "icebreaker", "--time-limit", "inf"], "--time-limit"),
        (["train", "iris", "--threads", "0"], "--threads"),
        (["golden", "xor", "--lanes", "2"], "unrecognized arguments"),
        (["sim", "xor", "--core", "memory", "--lanes", "W1=2,W2=1"], "--core: memory"),
    ],
)
def test_a_bad_option_value_is_one_line(capsys, argv, field):
    refused(capsys, argv, field)


def test_lanes_past_the_largest_matrix_are_refused_before_any_work(capsys, tmp_path):
    err = refused(
        capsys, ["generate", "--lanes", "1000000", "--out", str(tmp_path / "v")], "--lanes"
    )
    assert "more than the largest matrix's 24 weights" in err  # 2-8-1: W1 is 8 x (2 + 1)
    assert not (tmp_path / "v").exists()
    # As many lanes as the largest matrix has weights are still allowed.
    assert main(["generate", "--lanes", "24", "--out", str(tmp_path / "v")]) == 0


def test_no_lane_plan_that_fits_is_one_line_naming_what_the_smallest_needs(capsys, tmp_path):
    path = config_file(tmp_path, '{"layers": [400, 400, 10]}')
    err = refused(
        capsys,
        ["logic", "--board", "icebreaker", "--config", path, "--lanes", "auto"],
        "no lane plan fits iCE40UP5K",
        status=1,
    )
    assert "block RAMs at one lane" in err


@pytest.mark.parametrize("where", ["no-permission", "file-for-folder", "folder-for-file"])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(capsys, tmp_path, where):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    if where == "no-permission":
        if os.geteuid() == 0:  # root writes anywhere but in /sys
            argv, field = ["generate", "--out", "/sys/pulsegate-out"], "--out: cannot create"
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            argv, field = ["generate", "--out", str(locked / "v")], "--out: cannot create"
    elif where == "file-for-folder":
        argv, field = ["generate", "--out", str(a_file)], "--out: "
    else:
        argv, field = ["golden", "xor", "--json", str(tmp_path)], "--json: "
    refused(capsys, argv, field)
    assert a_file.read_text() == "keep me"


# -- fuzz: any configuration, any argument vector, never a traceback ------------------------

KEYS = {
    "layers": st.lists(st.integers(-2, 70), min_size=0, max_size=5)
    | st.lists(st.integers(1, 3), min_size=15, max_size=20)
    | st.sampled_from([[2, 4, 1], [2, 3, 1], [4, 3], [2], [400, 400, 10]]),
    "output": st.sampled_from(["linear", "relu", "sigmoid", "", 3]),
    "ticks_per_window": st.integers(-1, 1100),
    "leak_shift": st.integers(-1, 20),
    "current_width": st.integers(0, 30),
    "current_frac": st.integers(-1, 30),
    "weight_width": st.integers(0, 30),
    "weight_frac": st.integers(-1, 30),
    "gain_frac": st.integers(-1, 25),
    "learning_rate_shift": st.integers(-1, 40),
    "rounding": st.sampled_from(["nearest", "stochastic", "up", None]),
    "bias_init": st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    "seed": st.integers(-5, 2**33),
}
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
DOCUMENTS = st.fixed_dictionaries({}, optional=KEYS) | JUNK


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def run_quietly(argv: list[str], capsys) -> int:
    status = main(argv)
    captured = capsys.readouterr()
    assert status in (0, 1, 2), (argv, status)
    assert "Traceback" not in captured.err, (argv, captured.err[-2000:])
    if status == 2:
        assert captured.err.startswith("pulsegate: error: "), (argv, captured.err[-500:])
    return status


def fuzz_configurations(tmp_path: Path, capsys, document) -> None:
    path = config_file(tmp_path, json.dumps(document, allow_nan=True))
    for argv in (
        ["schedule", "--config", path],
        ["golden", "xor", "--config", path, "--max-samples", "2"],
        ["golden", "ar2", "--config", path, "--samples", "3"],
        ["train", "iris", "--config", path, "--samples", "2", "--epochs", "1"],
    ):
        run_quietly(argv, capsys)


@fuzz_settings(CI_EXAMPLES)
@given(document=DOCUMENTS)
def test_fuzzed_configurations_end_in_0_1_or_2_never_a_traceback(tmp_path, capsys, document):
    fuzz_configurations(tmp_path, capsys, document)


@pytest.mark.slow
@fuzz_settings(SLOW_EXAMPLES)
@given(document=DOCUMENTS)
def test_fuzzed_configurations_at_length(tmp_path, capsys, document):
    fuzz_configurations(tmp_path, capsys, document)


WORDS = st.sampled_from(
    [
        "golden", "xor", "ar2", "schedule", "train", "iris", "generate", "host", "info",
        "status", "abort", "weights", "--samples", "--max-samples", "--epochs", "--seed",
        "--lanes", "--config", "--float", "--inference", "--port", "--baud", "--timeout",
        "--out", "--json", "0", "1", "2", "-1", "3", "W1=2", "W1=2,W2=1,pool=core", "auto",
        "nan", "/nonexistent", "", "x" * 300,
    ]
)  # fmt: skip
SAFE = {"golden", "schedule", "train", "generate", "host"}


def fuzz_argv(tmp_path: Path, capsys, monkeypatch, words: list[str]) -> None:
    import boards.host

    class NoPort:  # a port that opens and never answers
        def __init__(self, *args, **kwargs) -> None: ...
        def write(self, data: bytes) -> None: ...
        def read(self, count: int) -> bytes:
            return b""

        def close(self) -> None: ...

    monkeypatch.setattr(boards.host, "SerialTransport", NoPort)
    monkeypatch.chdir(tmp_path)
    if not words or words[0] not in SAFE:
        words = ["schedule", *words]
    argv = list(words)
    # Long runs are not the point: budgets stay small, outputs stay in tmp_path.
    if argv[0] == "golden":
        argv += ["--max-samples", "2"] if "xor" in argv else ["--samples", "3"]
    if argv[0] == "train":
        argv += ["--samples", "2", "--epochs", "1"]
        if "--rtl" in argv:
            return
    run_quietly(argv, capsys)


@fuzz_settings(CI_EXAMPLES)
@given(words=st.lists(WORDS, max_size=6))
def test_fuzzed_command_lines_end_in_0_1_or_2_never_a_traceback(
    tmp_path, capsys, monkeypatch, words
):
    fuzz_argv(tmp_path, capsys, monkeypatch, words)


@pytest.mark.slow
@fuzz_settings(SLOW_EXAMPLES)
@given(words=st.lists(WORDS, max_size=8))
def test_fuzzed_command_lines_at_length(tmp_path, capsys, monkeypatch, words):
    fuzz_argv(tmp_path, capsys, monkeypatch, words)


def test_a_port_that_fails_mid_run_is_one_line_naming_it(capsys, monkeypatch):
    import boards.host

    class DyingPort:  # opens, then the device goes away (a USB adapter pulled out)
        def __init__(self, *args, **kwargs) -> None: ...
        def write(self, data: bytes) -> None:
            raise OSError(5, "Input/output error")

        def read(self, count: int) -> bytes:
            return b""

        def close(self) -> None: ...

    monkeypatch.setattr(boards.host, "SerialTransport", DyingPort)
    refused(capsys, ["host", "status", "--port", "/dev/ttyUSB9"], "--port /dev/ttyUSB9", 1)


def test_a_build_leaves_the_calling_process_environment_alone(monkeypatch, tmp_path):
    """The tools' environment (PATH, TMPDIR, DFU_SUFFIX, ...) goes to the build's subprocess
    only; before, every build() grew PATH and left TMPDIR pointing into its folder."""
    import boards.pnr as pnr
    from boards.catalogue import board_config

    seen = {}

    def fake_run_script(plan, out, time_limit, progress=None, poll=60.0, env=None):
        seen.update(env)
        report = {"fmax": {"clk": {"achieved": 30.0}}, "utilization": {}}
        (out / "report.json").write_text(json.dumps(report))

    monkeypatch.setattr(pnr, "run_script", fake_run_script)
    before = dict(os.environ)
    result = pnr.build("icebreaker", board_config(), tmp_path / "b")
    assert dict(os.environ) == before
    assert seen["TMPDIR"] == str((tmp_path / "b").resolve()) and seen["DFU_SUFFIX"] == "true"
    assert result["fmax_mhz"] == 30.0
