# Run: SLIME_DIR=/root/slime pytest tests/test_slime_source.py   (also MEGATRON_DIR, SGLANG_DIR: see below)
"""Every flag the suite maps, checked against slime's source itself, where it is present (a slime machine or a
checkout): slime's own flags in $SLIME_DIR, Megatron-LM's in $MEGATRON_DIR (default /root/Megatron-LM, slime's
docker layout), SGLang's in $SGLANG_DIR (default: the installed sglang). Each check is skipped, with the
reason, where its source is absent; suite/slime/slime_flags.txt is the checked-in list the other tests use."""

import importlib.util
import os
import re
from pathlib import Path

import pytest

from suite.slime.flags import (SLIME_ARGUMENT_FILES, TO_HF, TRAIN, _skipped_sglang_dests, read_flag_list,
                               scan_argparse, scan_megatron, scan_sglang_server)
from suite.slime.mapping import TABLE


def _slime_dir() -> Path:
    if not os.environ.get("SLIME_DIR"):
        pytest.skip("SLIME_DIR is not set: no slime source to read here (set it to a slime checkout)")
    path = Path(os.environ["SLIME_DIR"])
    if not (path / SLIME_ARGUMENT_FILES[0]).is_file():
        pytest.skip(f"SLIME_DIR={path} has no {SLIME_ARGUMENT_FILES[0]} (not a slime checkout; the test stand-in?)")
    return path


def _megatron_dir() -> Path:
    path = Path(os.environ.get("MEGATRON_DIR", "/root/Megatron-LM"))
    if not (path / "megatron" / "training" / "arguments.py").is_file():
        pytest.skip(f"no Megatron-LM source at {path} (set MEGATRON_DIR)")
    return path


def _sglang_dir() -> Path:
    if os.environ.get("SGLANG_DIR"):
        path = Path(os.environ["SGLANG_DIR"])
    else:
        spec = importlib.util.find_spec("sglang")
        if spec is None or spec.origin is None:
            pytest.skip("sglang is not installed here and SGLANG_DIR is not set")
        path = Path(spec.origin).parent
    if not (path / "srt" / "server_args.py").is_file():
        pytest.skip(f"{path} has no srt/server_args.py (set SGLANG_DIR to the sglang package directory)")
    # The flags are SGLang's at the version slime pins; another version lays its arguments out otherwise
    # (0.5.23, the CPU build here, moved them to srt/arg_groups/), so it proves nothing either way.
    found = re.search(r"__version__ = version = '([^']+)'", (path / "_version.py").read_text()
                      if (path / "_version.py").is_file() else "")
    pinned = read_flag_list().refs["sglang"]
    if found is None or found.group(1) not in pinned.split():
        pytest.skip(f"SGLang at {path} is {found.group(1) if found else 'of unknown version'}; slime pins "
                    f"{pinned!r}: set SGLANG_DIR to that version's sglang package directory")
    return path


def _live_flags(origin: str) -> set[str]:
    if origin == "slime":
        return set().union(*(scan_argparse(_slime_dir() / f) for f in SLIME_ARGUMENT_FILES))
    if origin == "megatron":
        return scan_megatron(_megatron_dir())
    skipped = _skipped_sglang_dests(_slime_dir())
    return {f"--sglang-{o.lstrip('-')}" for dest, opts in scan_sglang_server(_sglang_dir() / "srt" / "server_args.py")
            if dest not in skipped for o in opts}


@pytest.mark.parametrize("origin", ["slime", "megatron", "sglang"])
def test_mapped_flags_are_in_the_source(origin):
    listed = read_flag_list().commands[TRAIN]
    mapped = {f for entry in TABLE for f in entry.flags if listed.get(f) == origin}
    assert mapped, f"no mapped flag comes from {origin}"
    missing = sorted(mapped - _live_flags(origin))
    assert not missing, (f"mapped flags not in {origin}'s source: {missing}; fix suite/slime/mapping.py and "
                         "regenerate suite/slime/slime_flags.txt (python -m suite.slime.flags)")


def test_every_mapped_flag_has_an_origin_in_the_list():
    listed = read_flag_list().commands[TRAIN]
    assert {f for entry in TABLE for f in entry.flags if f != "$MODEL_ARGS"} <= set(listed)


def test_converter_flags_are_in_slimes_converter():
    live = scan_argparse(_slime_dir() / TO_HF)
    assert {"--input-dir", "--output-dir", "--origin-hf-dir"} <= live
    assert set(read_flag_list().commands[TO_HF]) == live, "slime's converter changed: regenerate slime_flags.txt"
