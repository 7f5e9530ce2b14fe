# Run: bash scripts/setup_sglang_cpu.sh && pytest -m sglang
"""The teacher behind a real SGLang server (CPU build), checked against the in-process teacher."""

import dataclasses
import json
import socket
import subprocess
import threading
import urllib.request

import pytest
import torch
from hydra import compose, initialize_config_dir

from suite.config import load_config
from suite.data import train_rows
from suite.paths import REPO_ROOT, TOY_MODELS_DIR
from suite.training.rollout import sample_rollouts
from suite.serving.server import SGLangServer, is_healthy
from suite.training.teacher import HFTeacher, SGLangTeacher, TeacherServerError

SGLANG_PYTHON = REPO_ROOT / ".venv-sglang" / "bin" / "python"


def _sglang_env_ready() -> bool:
    if not SGLANG_PYTHON.exists():
        return False
    return subprocess.run([str(SGLANG_PYTHON), "-c", "import sglang"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.sglang,
    pytest.mark.xdist_group("sglang"),  # one worker, one module server (make test: --dist loadgroup)
    pytest.mark.skipif(not _sglang_env_ready(), reason="SGLang CPU env absent: run `bash scripts/setup_sglang_cpu.sh`"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        return load_config(compose(config_name="sweep", overrides=list(overrides)))


@pytest.fixture(scope="module")
def server():
    cfg = _cfg(f"serve.port={_free_port()}", "serve.device=cpu")
    srv = SGLangServer(cfg.teacher, cfg.serve)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def batch():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    student = AutoModelForCausalLM.from_pretrained(TOY_MODELS_DIR / "student")
    tok = AutoTokenizer.from_pretrained(TOY_MODELS_DIR / "student")
    torch.manual_seed(0)
    chats = [r["prompt"] for r in train_rows("toy_arith", "local")[:12]]
    return sample_rollouts(student, tok, chats, 1.0, max_new_tokens=40, enable_thinking=True)


def test_logprobs_equal_the_in_process_teacher(server, batch):
    lengths = batch.response_lengths_B.tolist()
    assert len(set(lengths)) > 3, "want responses of mixed lengths"
    sglang = SGLangTeacher(server.url, concurrency=4).score(batch)
    hf = HFTeacher(str(TOY_MODELS_DIR / "teacher")).score(batch)
    mask = batch.response_mask_B_T.bool()
    assert (sglang.logp_B_T[mask] - hf.logp_B_T[mask]).abs().max().item() < 1e-4
    assert (sglang.logp_B_T[~mask] == 0).all()


def test_topk_logprobs_match(server, batch):
    sglang = SGLangTeacher(server.url).score(batch, topk=4)
    hf = HFTeacher(str(TOY_MODELS_DIR / "teacher")).score(batch, topk=4)
    mask = batch.response_mask_B_T.bool()
    assert torch.equal(sglang.topk_ids_B_T_K[mask], hf.topk_ids_B_T_K[mask])
    assert (sglang.topk_logp_B_T_K[mask] - hf.topk_logp_B_T_K[mask]).abs().max().item() < 1e-4


def test_sglang_ignores_temperature_on_input_logprobs(server, batch):
    """Why the client always scores at T=1: SGLang returns the same input log-probs at any temperature."""
    ids = batch.input_ids_B_L[0][batch.attention_mask_B_L[0].bool()].tolist()
    out = {}
    for t in (1.0, 0.5):
        payload = {"input_ids": ids, "sampling_params": {"max_new_tokens": 0, "temperature": t},
                   "return_logprob": True, "logprob_start_len": 0}
        req = urllib.request.Request(f"{server.url}/generate", json.dumps(payload).encode(),
                                     {"Content-Type": "application/json"})
        out[t] = [e[0] for e in json.loads(urllib.request.urlopen(req, timeout=60).read())["meta_info"]["input_token_logprobs"][1:]]
    assert out[1.0] == pytest.approx(out[0.5], abs=1e-6)


def test_one_opd_step_matches_the_hf_backend(server, tmp_path):
    from suite.training.trainer import OPDTrainer, read_metrics

    common = ["trainer.num_rollout=1", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
              "trainer.global_batch_size=8", "trainer.opd_estimator=sampled", "trainer.progress_bar=false"]
    OPDTrainer(_cfg(*common), tmp_path / "hf").train()
    cfg = _cfg(*common, "trainer.teacher_backend=sglang", f"serve.url={server.url}")
    OPDTrainer(cfg, tmp_path / "sglang").train()
    [hf], [sg] = read_metrics(tmp_path / "hf"), read_metrics(tmp_path / "sglang")
    for key in ("reward", "response_len", "kl_sampled", "pg_loss", "grad_norm"):
        assert sg[key] == pytest.approx(hf[key], abs=1e-4), key


def test_attach_to_a_running_server(server):
    cfg = _cfg(f"serve.url={server.url}")
    attached = SGLangServer(cfg.teacher, dataclasses.replace(cfg.serve, startup_timeout_s=10))
    assert attached.start() == server.url and attached.proc is None
    attached.stop()  # attaching never stops someone else's server
    assert is_healthy(server.url)


def test_sweep_job_starts_its_own_server_and_trains_against_it(tmp_path):
    from suite.sweep import run_job

    cfg = _cfg("trainer.teacher_backend=sglang", "trainer.opd_estimator=sampled", f"serve.port={_free_port()}",
               "trainer.num_rollout=2", "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2",
               "trainer.global_batch_size=8", "trainer.kl_eval_prompts=8", "trainer.progress_bar=false",
               "task.limit=20", f"results_dir={tmp_path}/results", f"runs_dir={tmp_path}/runs")
    row = run_job(cfg, command="pytest sglang sweep")
    assert row["trainer"]["teacher_backend"] == "sglang" and row["paired_delta"]["n"] == 20
    assert row["heldout_reverse_kl"]["before"] > 0
    assert not is_healthy(f"http://127.0.0.1:{cfg.serve.port}")  # the job stopped the server it started


def test_lm_eval_through_sglang_equals_hf_on_the_teacher(server, tmp_path):
    """backend=sglang attached to the server already serving the teacher (serve.url): the model evaluated.
    (Starting a server for an evaluation is the same SGLangServer that test_sweep_job_starts_its_own... checks.)"""
    from suite.evaluation.harness import evaluate

    common = ["model=teacher", "task.limit=100", f"results_dir={tmp_path}"]
    hf = evaluate(_cfg(*common), command="hf")
    sg = evaluate(_cfg(*common, "backend=sglang", f"serve.url={server.url}"), command="sglang")
    assert sg["n"] == hf["n"] == 100 and sg["accuracy"] == hf["accuracy"]
    answers = {}
    for row in (hf, sg):
        samples = [json.loads(x) for x in (tmp_path / row["samples_file"]).read_text().splitlines()]
        answers[row["command"]] = [(s["id"], s["correct"], s["response"].split("Answer:")[-1]) for s in samples]
    assert answers["hf"] == answers["sglang"]  # same problems right, same final answers


def test_server_down_then_back_within_the_retry_window(server, batch, tmp_path, monkeypatch):
    """The server dies before step 2's scoring: a client with too few retries gives up, naming the attempts;
    the training run's client waits for the restarted server: no step lost, none duplicated, same numbers."""
    from suite.training.trainer import OPDTrainer, read_metrics

    cfg = _cfg("trainer.teacher_backend=sglang", "trainer.opd_estimator=sampled", f"serve.url={server.url}",
               "serve.retries=8", "serve.backoff_s=1.0", "trainer.num_rollout=3", "trainer.save_interval=1",
               "trainer.rollout_batch_size=4", "trainer.n_samples_per_prompt=2", "trainer.global_batch_size=8",
               "trainer.progress_bar=false")
    OPDTrainer(cfg, tmp_path / "reference").train()
    impatient = SGLangTeacher(server.url, retries=2, backoff_s=0.2)
    before = impatient.score(batch)

    calls, original, restart = [], SGLangTeacher.score, threading.Timer(2.0, server.start)

    def score_with_an_outage(self, batch, full=False, topk=0):
        calls.append(1)
        if len(calls) == 2:  # step 2: kill the server, bring it back while the client retries
            server.stop()
            with pytest.raises(TeacherServerError, match=r"gave up after 3 attempts"):
                original(impatient, batch)
            restart.start()
        return original(self, batch, full, topk)

    monkeypatch.setattr(SGLangTeacher, "score", score_with_an_outage)
    OPDTrainer(cfg, tmp_path / "outage").train()
    restart.join()  # the restarted server finished its warm-up
    assert len(calls) == 3 and is_healthy(server.url)
    assert torch.equal(original(impatient, batch).logp_B_T, before.logp_B_T)  # the restarted server scores the same
    from tests.test_trainer import TIMING as timing
    strip = lambda ms: [{k: v for k, v in m.items() if k not in timing} for m in ms]  # noqa: E731
    ref, got = strip(read_metrics(tmp_path / "reference")), strip(read_metrics(tmp_path / "outage"))
    assert [m["step"] for m in got] == [1, 2, 3] and got == ref
