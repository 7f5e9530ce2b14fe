"""slime's launch plan for one sweep point: a shell script a slime user runs unchanged.

``outputs/runs/<run>/slime/`` gets

* ``train.jsonl``: the task's **train** split (``suite.data.train_rows``: eval rows excluded) in slime's
  prompt/label format (``{"prompt": [chat messages], "label": "34", "metadata": {"id": ...}}``);
* ``plan.sh``: (1) a check that the data is there, (2) the student's HF checkpoint (a hub id resolved to
  its snapshot; slime loads HF weights into Megatron itself, so ``--ref-load`` is that directory unless
  ``trainer.slime.ref_load`` names a torch_dist checkpoint) and its Megatron architecture (slime's
  ``scripts/models/*.sh``), (3) the teacher's SGLang server (the command
  ``suite.serving.server.launch_command`` builds from the teacher's config; or ``serve.url``) and
  ``ray start --head``, (4) ``ray job submit ... -- python3 train.py <flags>`` with the flags of
  :mod:`suite.slime.mapping` and the reward hook's environment;
* ``plan.json``: the same commands as data, with the slime commit the flags were checked against.

slime saves Megatron iterations under ``slime/torch_dist`` (``iter_0000004/``, ...); :mod:`suite.slime.runner`
converts them with slime's ``tools/convert_torch_dist_to_hf.py`` and scores them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from suite.config import ConfigError, SuiteConfig, config_hash
from suite.data import train_rows
from suite.paths import REPO_ROOT
from suite.results import write_jsonl_atomic
from suite.serving.server import launch_command
from suite.slime.flags import SGLANG_SERVER, TO_HF, TRAIN, read_flag_list
from suite.slime.mapping import MODEL_ARGS, Paths, hook_environment, model_args_script, train_args

ASSUMED_SLIME_DIR = "/root/slime"  # slime's docker image layout, used in a plan written where slime is absent
HF_CHECKPOINT_WORD = '"$HF_CHECKPOINT"'  # a hub id is resolved to its local snapshot by the plan
SLIME_SUBDIR = "slime"


class SlimeNotFound(SystemExit):
    """trainer.slime.dry_run=false where slime is not installed: the run stops with this one message (what to
    install and where), no traceback."""


def find_slime(cfg: SuiteConfig) -> Path | None:
    """slime's checkout: ``trainer.slime.slime_dir``, else ``$SLIME_DIR``, else the installed ``slime`` package's."""
    configured = cfg.trainer.slime.slime_dir or os.environ.get("SLIME_DIR")
    if configured:
        path = Path(configured).expanduser()
        if not (path / "train.py").is_file():
            where = "trainer.slime.slime_dir" if cfg.trainer.slime.slime_dir else "SLIME_DIR"
            raise ConfigError(f"bad config value {where}={configured!r}: no train.py there; point it at a slime "
                              "checkout (git clone https://github.com/THUDM/slime)")
        return path.resolve()
    spec = importlib.util.find_spec("slime")
    if spec and spec.origin and (Path(spec.origin).parent.parent / "train.py").is_file():
        return Path(spec.origin).parent.parent  # an editable install of the checkout
    return None


def is_dry_run(cfg: SuiteConfig, slime_dir: Path | None) -> bool:
    return cfg.trainer.slime.dry_run if cfg.trainer.slime.dry_run is not None else slime_dir is None


def not_found_message(plan_file: Path) -> str:
    return ("trainer.slime.dry_run=false needs slime, which is not installed here: install it from source "
            "(git clone https://github.com/THUDM/slime && pip install -e slime, or use its docker image "
            "slimerl/slime), then point the suite at it with SLIME_DIR=/path/to/slime (or "
            f"trainer.slime.slime_dir, or the installed package). The plan is written: {plan_file}")


@dataclass
class SlimePlan:
    run_dir: Path
    slime_dir: Path
    slime_found: bool
    paths: Paths
    train_argv: list[str]  # train.py's arguments
    job_env: dict[str, str]  # the Ray job's environment (--runtime-env-json env_vars)
    teacher_argv: list[str] | None  # None: attach to serve.url
    script: str = ""

    @property
    def dir(self) -> Path:
        return self.run_dir / SLIME_SUBDIR


def teacher_command(cfg: SuiteConfig) -> list[str]:
    """The teacher's ``sglang.launch_server`` command on the slime machine (GPU flags, the slime interpreter)."""
    serve = dataclasses.replace(cfg.serve, url=None, device="cuda")
    return [cfg.trainer.slime.python, *launch_command(cfg.teacher, serve)[1:]]


def teacher_url(cfg: SuiteConfig) -> str:
    return (cfg.serve.url or f"http://{cfg.serve.host}:{cfg.serve.port}").rstrip("/")


def build_plan(cfg: SuiteConfig, run_dir: Path, slime_dir: Path | None) -> SlimePlan:
    """The plan for ``cfg`` (nothing written yet)."""
    slime = cfg.trainer.slime
    local_student = Path(cfg.student.path).is_dir()
    out = run_dir / SLIME_SUBDIR
    hf_checkpoint = str(Path(cfg.student.path).resolve()) if local_student else HF_CHECKPOINT_WORD
    paths = Paths(prompt_data=str(out / "train.jsonl"), save=str(out / "torch_dist"),
                  ref_load=slime.ref_load or hf_checkpoint, hf_checkpoint=hf_checkpoint,
                  rm_url=f"{teacher_url(cfg)}/generate", tensorboard=str(out / "tensorboard"))
    job_env = {"PYTHONPATH": ":".join([slime.megatron_dir, str(slime_dir or ASSUMED_SLIME_DIR), str(REPO_ROOT)]),
               "CUDA_DEVICE_MAX_CONNECTIONS": "1", "PYTHONUNBUFFERED": "1", **hook_environment(cfg)}
    plan = SlimePlan(run_dir=run_dir, slime_dir=slime_dir or Path(ASSUMED_SLIME_DIR), slime_found=slime_dir is not None,
                     paths=paths, train_argv=train_args(cfg, paths), job_env=job_env,
                     teacher_argv=None if cfg.serve.url else teacher_command(cfg))
    plan.script = render_script(cfg, plan)
    return plan


def _sh(argv: list[str]) -> str:
    """One command, a flag (and its values) per line; the plan's own words (``"$HF_CHECKPOINT"``, MODEL_ARGS)
    unquoted, everything else quoted for the shell."""
    lines: list[list[str]] = [[]]
    for raw in argv:
        if lines[-1] and (raw.startswith("--") or raw == MODEL_ARGS):
            lines.append([])
        lines[-1].append(raw if raw in (MODEL_ARGS, HF_CHECKPOINT_WORD) else shlex.quote(raw))
    return " \\\n    ".join(" ".join(line) for line in lines)


def render_script(cfg: SuiteConfig, plan: SlimePlan) -> str:
    """``plan.sh``: everything between the suite's data and slime's saved iterations."""
    s, p, out = cfg.trainer.slime, plan.paths, plan.dir
    slime_ref = read_flag_list().refs.get("slime", "?")
    py, sd = shlex.quote(s.python), shlex.quote(str(plan.slime_dir))
    lines = [
        "#!/usr/bin/env bash",
        f"# slime launch plan for run {plan.run_dir.name} (config {config_hash(cfg)}), written by the suite.",
        f"# Its flags were checked against slime's argument list at {slime_ref} (suite/slime/slime_flags.txt).",
    ]
    if not plan.slime_found:
        lines.append(f"# slime was not found where this was written: {ASSUMED_SLIME_DIR} assumed (SLIME_DIR sets it).")
    lines += ["set -euo pipefail", f"RUN={shlex.quote(str(out))}", "",
              f"# 1. data: {cfg.task.name}'s train split (eval rows excluded), written by the suite",
              'test -s "$RUN/train.jsonl"', "",
              "# 2. the student: its HF checkpoint, and its architecture for Megatron"]
    if p.hf_checkpoint == HF_CHECKPOINT_WORD:
        lines.append(f"HF_CHECKPOINT=$({py} -c 'import sys; from huggingface_hub import snapshot_download; "
                     f"print(snapshot_download(sys.argv[1]))' {shlex.quote(cfg.student.path)})")
        lines.append('echo "$HF_CHECKPOINT" > "$RUN/hf_checkpoint.txt"')
    script = model_args_script(cfg)
    lines += [f"source {shlex.quote(script) if Path(script).is_absolute() else sd + '/' + shlex.quote(script)}", ""]
    lines += _teacher_lines(cfg, plan)
    submit = ["ray", "job", "submit", f"--address={s.ray_address}",
              f"--runtime-env-json={json.dumps({'env_vars': plan.job_env}, sort_keys=True)}", "--",
              s.python, f"{plan.slime_dir}/{TRAIN}", *plan.train_argv]
    lines += ["# 4. train: the actor and its rollout engines on "
              f"{s.actor_num_nodes * s.actor_num_gpus_per_node} GPU(s)" + (" (colocated)" if s.colocate else ""),
              "TRAIN_START=$SECONDS", _sh(submit), 'echo "$((SECONDS - TRAIN_START))" > "$RUN/train_seconds.txt"', "",
              "# 5. back in the suite: `python -m suite.sweep <the same overrides> trainer.slime.dry_run=false` (it skips",
              "#    1-4 once the last iteration is saved) converts each saved iteration with slime's converter,",
              "#    " + " ".join(converter_command(cfg, plan, "$RUN/torch_dist/iter_N", "<run>/checkpoints/step_N+1",
                                                  "<student HF dir>")),
              "#    then scores it through lm-eval and appends the run row to results/runs.jsonl.", ""]
    return "\n".join(lines)


def _teacher_lines(cfg: SuiteConfig, plan: SlimePlan) -> list[str]:
    s, url = cfg.trainer.slime, teacher_url(cfg)
    stop = ["cleanup() {", '  if [ -n "${TEACHER_PID:-}" ]; then kill "$TEACHER_PID" 2>/dev/null || true; fi']
    if s.start_ray:
        stop.append("  ray stop --force >/dev/null 2>&1 || true")
    lines = stop + ["}", "trap cleanup EXIT", ""]
    if plan.teacher_argv is None:
        lines.append(f"# 3. the teacher: attached at {url} (serve.url)")
    else:
        gpu = s.teacher_gpu
        lines += [f"# 3. the teacher: {cfg.teacher.path} behind SGLang on GPU {gpu}",
                  f'if command -v nvidia-smi >/dev/null && [ "$(nvidia-smi -L | wc -l)" -le {gpu} ]; then',
                  f'  echo "the teacher needs GPU {gpu} (trainer.slime.teacher_gpu) and this host has fewer; serve it '
                  'elsewhere and set serve.url=http://HOST:PORT" >&2; exit 1',
                  "fi",
                  f"CUDA_VISIBLE_DEVICES={gpu} " + _sh(plan.teacher_argv) + ' > "$RUN/teacher.log" 2>&1 &',
                  "TEACHER_PID=$!"]
    probe = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)"
    lines += [f"until {shlex.quote(s.python)} -c {shlex.quote(probe)} {shlex.quote(url + '/health')} 2>/dev/null; do",
              '  if [ -n "${TEACHER_PID:-}" ] && ! kill -0 "$TEACHER_PID" 2>/dev/null; then',
              '    echo "the teacher server exited; its log: $RUN/teacher.log" >&2; tail -n 20 "$RUN/teacher.log" >&2; '
              "exit 1",
              "  fi",
              "  sleep 5",
              "done", ""]
    if s.start_ray:
        gpus = s.actor_num_gpus_per_node + (0 if s.colocate else s.rollout_num_gpus)
        ids = [i for i in range(gpus + 1) if plan.teacher_argv is None or i != s.teacher_gpu][:gpus]
        lines += [f"# Ray: {gpus} GPU(s) for the actor and the rollout engines",
                  f"CUDA_VISIBLE_DEVICES={','.join(map(str, ids))} ray start --head --num-gpus {gpus} "
                  "--disable-usage-stats", ""]
    return lines


def write_prompt_data(cfg: SuiteConfig, path: Path) -> int:
    """The task's train split as slime's prompt data; returns the number of rows."""
    rows = [{"prompt": r["prompt"], "label": r["label"], "metadata": {"id": r["id"]}}
            for r in train_rows(cfg.task.name, cfg.task.source, cfg.task.on_bad_rows)]
    write_jsonl_atomic(path, rows)
    return len(rows)


def write_plan(cfg: SuiteConfig, plan: SlimePlan) -> dict:
    """Write the prompt data, ``plan.sh`` and ``plan.json``; returns plan.json's content."""
    plan.dir.mkdir(parents=True, exist_ok=True)
    rows = write_prompt_data(cfg, Path(plan.paths.prompt_data))
    script = plan.dir / "plan.sh"
    script.write_text(plan.script)
    script.chmod(0o755)
    flag_list = read_flag_list()
    info = {
        "run": plan.run_dir.name, "config_hash": config_hash(cfg), "checked_against": flag_list.refs,
        "slime_dir": str(plan.slime_dir), "slime_found": plan.slime_found,
        "data": {"path": plan.paths.prompt_data, "rows": rows, "task": cfg.task.name, "split": "train"},
        "teacher": {"argv": plan.teacher_argv, "gpu": cfg.trainer.slime.teacher_gpu if plan.teacher_argv else None,
                    "url": teacher_url(cfg)},
        "train": {"env": plan.job_env, "argv": plan.train_argv, "save": plan.paths.save},
        "convert": converter_command(cfg, plan, "<iter_dir>", "<hf_dir>", "<origin_hf_dir>"),
    }
    (plan.dir / "plan.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def converter_command(cfg: SuiteConfig, plan: SlimePlan, iter_dir: str, out_dir: str, origin_hf_dir: str) -> list[str]:
    """slime's torch_dist -> HF converter for one saved iteration (tokenizer and config from the student's HF dir)."""
    return [cfg.trainer.slime.python, f"{plan.slime_dir}/{TO_HF}", "--input-dir", iter_dir, "--output-dir", out_dir,
            "--origin-hf-dir", origin_hf_dir]


def check_flags(plan: SlimePlan, cfg: SuiteConfig) -> None:
    """Every flag the plan renders (train.py's, the teacher server's, the converter's) is in slime's argument
    list, else ConfigError naming the flags."""
    flag_list = read_flag_list()
    unknown = (flag_list.unknown(TRAIN, plan.train_argv) + flag_list.unknown(SGLANG_SERVER, plan.teacher_argv or [])
               + flag_list.unknown(TO_HF, converter_command(cfg, plan, "i", "o", "h")))
    if unknown:
        raise ConfigError(f"flags not in slime's argument list ({flag_list.refs.get('slime')}): {', '.join(unknown)}; "
                          "fix suite/slime/mapping.py or regenerate suite/slime/slime_flags.txt")
