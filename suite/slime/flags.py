"""slime's argument list: the flags train.py and slime's checkpoint tools accept, and where each comes from.

slime parses train.py's command line with Megatron-LM's parser plus slime's own arguments, and SGLang's
server arguments prefixed ``--sglang-`` (``slime/utils/arguments.py``: ``parse_args``), with
``ignore_unknown_args=True``: a misspelled flag is silently ignored. So every flag the suite renders is
checked against ``slime_flags.txt`` (tests/test_slime_plan.py), which lists them with the commits they
were read from. Regenerate it from the sources when slime moves::

    python -m suite.slime.flags --slime-dir SLIME --megatron-dir MEGATRON --sglang-dir SITE/sglang \\
        --slime-ref THUDM/slime@COMMIT --megatron-ref ... --sglang-ref ... > suite/slime/slime_flags.txt

Everything is read statically, from the AST: ``add_argument`` / ``reset_arg`` calls, the dataclass fields
Megatron-LM turns into flags (``ArgumentGroupFactory``) and those SGLang does (``Arg`` annotations).
Megatron-LM and SGLang are read at the versions slime's docker image pins, with slime's patches applied.
"""

from __future__ import annotations

import argparse
import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

FLAG_LIST = Path(__file__).with_name("slime_flags.txt")
TRAIN = "train.py"
TO_HF = "tools/convert_torch_dist_to_hf.py"
SGLANG_SERVER = "sglang.launch_server"
# slime's own argument definitions for train.py (the megatron *server* mode has a parser of its own).
SLIME_ARGUMENT_FILES = ("slime/utils/arguments.py", "slime/backends/sglang_utils/arguments.py")
SGLANG_PREFIX_FILE = "slime/backends/sglang_utils/arguments.py"  # holds `skipped_args`: not re-exported


@dataclass(frozen=True)
class FlagList:
    """``commands[command][flag] = origin`` (slime, megatron, sglang, tool), and the refs they were read at."""

    refs: dict[str, str]
    commands: dict[str, dict[str, str]]

    def unknown(self, command: str, argv: list[str]) -> list[str]:
        """The ``--flags`` in ``argv`` that ``command`` does not accept."""
        known = self.commands[command]
        return [tok.split("=", 1)[0] for tok in argv if tok.startswith("--") and tok.split("=", 1)[0] not in known]


@functools.cache  # the plan reads it three times per point; the file only changes with a regeneration
def read_flag_list(path: Path = FLAG_LIST) -> FlagList:
    """Parse ``slime_flags.txt``: ``# ref ORIGIN TEXT`` lines, ``[command]`` sections, ``--flag origin`` lines."""
    refs: dict[str, str] = {}
    commands: dict[str, dict[str, str]] = {}
    section = None
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# ref "):
            origin, _, text = line[len("# ref "):].partition(" ")
            refs[origin] = text
        elif not line.strip() or line.startswith("#"):
            continue
        elif line.startswith("[") and line.endswith("]"):
            section = commands.setdefault(line[1:-1], {})
        elif section is not None and line.startswith("--") and len(line.split()) == 2:
            flag, origin = line.split()
            section[flag] = origin
        else:
            raise ValueError(f"{path}:{lineno}: expected '[command]', '--flag origin' or a comment, got {line!r}; "
                             "regenerate the file with `python -m suite.slime.flags` (see its docstring)")
    return FlagList(refs, commands)


# ------------------------------------------------------------------------------------- static reading
def _literal_flags(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            and a.value.startswith("--")]


def scan_argparse(path: Path) -> set[str]:
    """Every literal ``--flag`` passed to ``add_argument(...)`` or slime's ``reset_arg(parser, ...)`` in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in ("add_argument", "reset_arg"):
            found.update(_literal_flags(node))
    return found


def _class_index(root: Path) -> dict[str, ast.ClassDef]:
    index: dict[str, ast.ClassDef] = {}
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                index.setdefault(node.name, node)
    return index


def _fields(cls: ast.ClassDef, index: dict[str, ast.ClassDef]) -> dict[str, ast.AnnAssign]:
    """A dataclass's annotated fields, base classes first (as ``dataclasses.fields`` orders them)."""
    out: dict[str, ast.AnnAssign] = {}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in index:
            out.update(_fields(index[base.id], index))
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and "ClassVar" not in ast.unparse(node.annotation):
            out[node.target.id] = node
    return out


def _field_flags(name: str, node: ast.AnnAssign) -> list[str]:
    """The flags Megatron's ``ArgumentGroupFactory`` makes of one field (megatron/training/argument_utils.py)."""
    default: ast.expr | None = node.value
    if isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "field":
        kw = {k.arg: k.value for k in node.value.keywords}
        if isinstance(kw.get("init"), ast.Constant) and kw["init"].value is False:
            return []
        meta = kw.get("metadata")
        if isinstance(meta, ast.Dict):
            for key, value in zip(meta.keys, meta.values):
                if isinstance(key, ast.Constant) and key.value == "argparse_meta" and isinstance(value, ast.Dict):
                    for k2, v2 in zip(value.keys, value.values):
                        if isinstance(k2, ast.Constant) and k2.value == "arg_names" and isinstance(v2, ast.List):
                            return [e.value for e in v2.elts if isinstance(e, ast.Constant)]
        default = kw.get("default")
    stem = name.replace("_", "-")
    annotation = ast.unparse(node.annotation).replace(" ", "")
    if annotation in ("bool", "Optional[bool]", "bool|None", "None|bool") and not (
            isinstance(default, ast.Constant) and default.value is False):
        return [f"--no-{stem}", f"--disable-{stem}"]  # a store_false flag
    return [f"--{stem}"]


def _exclude_list(arg: ast.expr | None, scope: ast.AST) -> set[str]:
    if isinstance(arg, ast.Name):  # `exclude = [...]` earlier in the same function
        name = arg.id
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                arg = node.value
    if isinstance(arg, ast.List):
        return {e.value for e in arg.elts if isinstance(e, ast.Constant)}
    return set()


def scan_megatron(megatron_dir: Path) -> set[str]:
    """Megatron-LM's training flags: literal ``add_argument`` calls in megatron/training/arguments.py plus the
    fields of each dataclass it hands to ``ArgumentGroupFactory``."""
    arguments = megatron_dir / "megatron" / "training" / "arguments.py"
    flags = scan_argparse(arguments)
    index = _class_index(megatron_dir / "megatron")
    for func in ast.walk(ast.parse(arguments.read_text())):
        if not isinstance(func, ast.FunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ArgumentGroupFactory" and node.args:
                cls = index[getattr(node.args[0], "id")]
                exclude = _exclude_list(next((k.value for k in node.keywords if k.arg == "exclude"), None), func)
                for name, field_node in _fields(cls, index).items():
                    if name not in exclude:
                        flags.update(_field_flags(name, field_node))
    return flags


def _skipped_sglang_dests(slime_dir: Path) -> set[str]:
    for node in ast.walk(ast.parse((slime_dir / SGLANG_PREFIX_FILE).read_text())):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "skipped_args" for t in node.targets):
            return {e.value for e in node.value.elts}  # type: ignore[attr-defined]
    raise ValueError(f"{slime_dir / SGLANG_PREFIX_FILE}: no `skipped_args` list; update suite/slime/flags.py")


def _annotated_arg(annotation: ast.expr) -> ast.expr | None:
    """The metadata of ``A[T, Arg(...)]`` / ``A[T, "help"]`` (SGLang's ``Annotated`` alias), else None."""
    if isinstance(annotation, ast.Subscript) and getattr(annotation.value, "id", None) in ("A", "Annotated") \
            and isinstance(annotation.slice, ast.Tuple) and len(annotation.slice.elts) > 1:
        return annotation.slice.elts[1]
    return None


def scan_sglang_server(server_args: Path) -> list[tuple[str, list[str]]]:
    """``[(dest, flags)]`` of SGLang's server: the ``ServerArgs`` fields annotated with ``Arg`` (or a help string)
    that ``add_cli_args_from_dataclass`` turns into flags, plus the literal ``add_argument`` calls of
    ``ServerArgs.add_cli_args`` (sglang/srt/server_args.py, sglang/srt/arg_groups/arg_utils.py)."""
    cls = next(n for n in ast.parse(server_args.read_text()).body
               if isinstance(n, ast.ClassDef) and n.name == "ServerArgs")
    out: list[tuple[str, list[str]]] = []
    for node in cls.body:
        meta = _annotated_arg(node.annotation) if isinstance(node, ast.AnnAssign) else None
        if meta is None or not isinstance(node.target, ast.Name):  # type: ignore[union-attr]
            continue
        name, kw = node.target.id, {}  # type: ignore[union-attr]
        if isinstance(meta, ast.Call):
            kw = {k.arg: k.value for k in meta.keywords}
            if isinstance(kw.get("no_cli"), ast.Constant) and kw["no_cli"].value is True:
                continue
        cli = kw["cli_name"].value if isinstance(kw.get("cli_name"), ast.Constant) else "--" + name.replace("_", "-")
        aliases = [e.value for e in kw["aliases"].elts] if isinstance(kw.get("aliases"), ast.List) else []
        out.append((name, [cli, *aliases]))
    add_cli = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "add_cli_args")
    for node in ast.walk(add_cli):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            flags = _literal_flags(node)
            dest = next((k.value.value for k in node.keywords if k.arg == "dest" and isinstance(k.value, ast.Constant)),
                        flags[0][2:].replace("-", "_") if flags else None)
            if flags:
                out.append((dest, flags))
    return out


def generate(slime_dir: Path, megatron_dir: Path, sglang_dir: Path, refs: dict[str, str]) -> str:
    """The text of ``slime_flags.txt`` from the three source trees (``sglang_dir``: the ``sglang`` package)."""
    slime = set().union(*(scan_argparse(slime_dir / f) for f in SLIME_ARGUMENT_FILES))
    megatron = scan_megatron(megatron_dir)
    actions = scan_sglang_server(sglang_dir / "srt" / "server_args.py")
    skipped = _skipped_sglang_dests(slime_dir)
    server = {o for _, opts in actions for o in opts if o.startswith("--")}
    prefixed = {f"--sglang-{o.lstrip('-')}" for dest, opts in actions if dest not in skipped for o in opts}
    train = {**{f: "sglang" for f in prefixed}, **{f: "megatron" for f in megatron}, **{f: "slime" for f in slime}}
    sections = {TRAIN: train, TO_HF: {f: "tool" for f in scan_argparse(slime_dir / TO_HF)},
                SGLANG_SERVER: {f: "sglang" for f in server}}
    lines = [
        "# slime's argument list: the flags each command accepts, and where each flag is defined.",
        "# Generated by `python -m suite.slime.flags` (suite/slime/flags.py says how); do not edit by hand.",
        "# train.py = slime's own arguments + Megatron-LM's (the commit slime's docker/Dockerfile pins, with",
        "# slime's docker/patch/latest/megatron.patch applied) + SGLang's server arguments as --sglang-*",
        "# (less slime's skipped_args). SGLang's router flags (--router-*) are not listed.",
        *(f"# ref {origin} {text}" for origin, text in refs.items()),
    ]
    for command, flags in sections.items():
        lines += ["", f"[{command}]"] + [f"{flag} {flags[flag]}" for flag in sorted(flags)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slime-dir", type=Path, required=True)
    parser.add_argument("--megatron-dir", type=Path, required=True)
    parser.add_argument("--sglang-dir", type=Path, required=True, help="the `sglang` package directory")
    for origin in ("slime", "megatron", "sglang"):
        parser.add_argument(f"--{origin}-ref", required=True, help="where it was read, e.g. OWNER/REPO@COMMIT (DATE)")
    args = parser.parse_args(argv)
    refs = {o: getattr(args, f"{o}_ref") for o in ("slime", "megatron", "sglang")}
    sys.stdout.write(generate(args.slime_dir, args.megatron_dir, args.sglang_dir, refs))


if __name__ == "__main__":
    main()
