"""Teacher backends: score the student's responses under the teacher.

Every backend implements :class:`TeacherBackend`. ``hf`` runs the teacher in-process with
transformers (the embedded default, and one-GPU setups); ``sglang`` talks to an SGLang server
(:mod:`suite.serving.server`). A backend returns log-probs aligned to the batch's response tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from suite.training.lm_head import DEFAULT_CHUNK, TeacherDistribution, token_stats, topk_logprobs
from suite.training.policy import PolicyHead, dtype_of, load_causal_lm, output_weight, rows
from suite.training.rollout import RolloutBatch


@dataclass
class TeacherScores:
    """What the teacher returns: only what the estimator needs, never a (B, T, V) distribution.

    * always: ``logp_B_T``, log p_teacher of each sampled response token (0 on padding);
    * ``topk=K``: its top-K log-probs and ids at each response position, (B, T, K);
    * ``full=True`` (in-process teacher only): its final hidden states at the response positions
      and its LM head, from which :mod:`suite.training.lm_head` computes the exact KL chunk by chunk
      next to the student's logits.
    """

    logp_B_T: torch.Tensor
    hidden_B_T_H: torch.Tensor | None = None
    weight_V_H: torch.Tensor | None = None
    topk_ids_B_T_K: torch.Tensor | None = None
    topk_logp_B_T_K: torch.Tensor | None = None

    def distribution(self, lo: int, hi: int, mask_b_T: torch.Tensor, device) -> TeacherDistribution | None:
        """The teacher's distribution for sequences ``lo:hi`` at the response tokens ``mask_b_T`` selects."""
        width = mask_b_T.shape[1]
        keep = mask_b_T.bool()
        if self.hidden_B_T_H is not None:
            return TeacherDistribution(hidden_N_H=self.hidden_B_T_H[lo:hi, :width][keep.to(self.hidden_B_T_H.device)].to(device),
                                       weight_V_H=self.weight_V_H.to(device))
        if self.topk_ids_B_T_K is not None:
            return TeacherDistribution(topk_logp_N_K=self.topk_logp_B_T_K[lo:hi, :width][keep].to(device),
                                       topk_ids_N_K=self.topk_ids_B_T_K[lo:hi, :width][keep].to(device))
        return None


class TeacherBackend(Protocol):
    def score(self, batch: RolloutBatch, full: bool = False, topk: int = 0) -> TeacherScores:
        """Teacher log-probs of ``batch``'s response tokens; ``full``/``topk`` ask for more of the distribution."""
        ...


class HFTeacher:
    """The teacher in-process, at its own temperature of 1, micro-batched, on its own device if asked.

    Its forward runs the decoder only; the LM head is applied chunk by chunk to the response
    positions (:mod:`suite.training.lm_head`), so no (B, T, V) tensor is built.
    """

    def __init__(self, path: str, dtype: str = "float32", device: str = "cpu", micro_batch_size: int = 64,
                 chunk_size: int = DEFAULT_CHUNK, random_init: bool = False):
        self.device = torch.device(device)
        self.model = load_causal_lm(path, dtype_of(dtype), self.device, random_init)
        self.model.eval()
        self.head = PolicyHead(self.model, chunk_size, own_layers=True)  # never sharded: its own layers
        self.micro_batch_size, self.chunk_size = micro_batch_size, chunk_size
        self.compute = dtype_of(dtype)

    @torch.no_grad()
    def score(self, batch: RolloutBatch, full: bool = False, topk: int = 0) -> TeacherScores:
        B, T = batch.response_mask_B_T.shape
        dev = self.device
        logp_B_T = torch.zeros(B, T)
        hidden = torch.zeros(B, T, self.model.config.hidden_size, dtype=self.compute, device=dev) if full else None
        top_logp = torch.full((B, T, topk), -1e9) if topk else None
        top_ids = torch.zeros((B, T, topk), dtype=torch.long) if topk else None
        weight = output_weight(self.model)
        for lo in range(0, B, self.micro_batch_size):
            mb = rows(batch, lo, lo + self.micro_batch_size).to(dev)
            h_b_T_H = self.head.hidden(mb)  # as the student's: shared prompts on CPU, fused layers on GPU
            keep, width, hi = mb.response_mask_B_T.bool(), mb.response_mask_B_T.shape[1], lo + mb.input_ids_B_L.shape[0]
            h_N_H = h_b_T_H[keep]
            stats = token_stats(h_N_H, weight, mb.response_ids_B_T[keep], chunk_size=self.chunk_size)
            logp_B_T[lo:hi, :width][keep.cpu()] = stats.logp_N.cpu()
            if topk:
                vals, ids = topk_logprobs(h_N_H, weight, topk, self.chunk_size)
                top_logp[lo:hi, :width][keep.cpu()] = vals.cpu()
                top_ids[lo:hi, :width][keep.cpu()] = ids.cpu()
            if full:
                hidden[lo:hi, :width] = h_b_T_H.to(self.compute)
        return TeacherScores(logp_B_T, hidden, weight if full else None, top_ids, top_logp)


class TeacherServerError(RuntimeError):
    """The teacher server gave up or answered nonsense; the message names the URL, status and body."""


class SGLangTeacher:
    """The teacher behind SGLang's native ``/generate``, scored the way slime does it.

    One request per sequence: ``input_ids`` = prompt + response (no padding), ``max_new_tokens: 0``,
    ``return_logprob: true``, ``logprob_start_len: 0``. The reply's ``input_token_logprobs`` has one
    entry per input token, the first with no log-prob; the last ``response_length`` entries are the
    response tokens', and their token ids must equal the response's (checked).

    Temperature: SGLang does not temperature-scale *input* log-probs (slime PR 2319), so the suite
    always scores the teacher at T=1, its own distribution, and sends ``temperature: 1.0``
    (``serve.logprob_temperature``, which refuses any other value).
    """

    def __init__(self, url: str, concurrency: int = 8, timeout_s: float = 120.0, retries: int = 6,
                 backoff_s: float = 0.5):
        self.url, self.concurrency, self.timeout_s = url.rstrip("/"), concurrency, timeout_s
        self.retries, self.backoff_s = retries, backoff_s

    def _post(self, payload: dict) -> dict:
        import json
        import time
        import urllib.error
        import urllib.request

        endpoint, wait, last = f"{self.url}/generate", self.backoff_s, ""
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(endpoint, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as err:
                body = err.read()[:300].decode(errors="replace")
                if err.code < 500:  # the request is wrong: retrying will not help
                    raise TeacherServerError(f"POST {endpoint}: HTTP {err.code}: {body}") from None
                last = f"HTTP {err.code}: {body}"
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                last = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            if attempt < self.retries:
                time.sleep(wait)
                wait *= 2
        raise TeacherServerError(f"POST {endpoint}: gave up after {self.retries + 1} attempts; last error {last}")

    def _score_one(self, ids: list[int], n_response: int, topk: int) -> tuple[list[float], list | None]:
        payload = {"input_ids": ids, "sampling_params": {"max_new_tokens": 0, "temperature": 1.0},
                   "return_logprob": True, "logprob_start_len": 0}
        if topk:
            payload["top_logprobs_num"] = topk
        reply = self._post(payload)
        try:
            entries = reply["meta_info"]["input_token_logprobs"][1:][-n_response:]
            got_ids = [int(e[1]) for e in entries]
            logps = [float(e[0]) for e in entries]
            tops = reply["meta_info"]["input_top_logprobs"][1:][-n_response:] if topk else None
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise TeacherServerError(f"{self.url}/generate: malformed reply ({err!r}): {str(reply)[:300]}") from None
        if got_ids != ids[-n_response:]:
            raise TeacherServerError(f"{self.url}/generate: reply token ids {got_ids[:8]}... do not match the "
                                     f"response {ids[-n_response:][:8]}...; is the server running the teacher's tokenizer?")
        return logps, tops

    def score(self, batch: RolloutBatch, full: bool = False, topk: int = 0) -> TeacherScores:
        from concurrent.futures import ThreadPoolExecutor

        if full:
            raise ValueError("an SGLang teacher returns sampled-token or top-K log-probs, not its whole distribution: "
                             "use opd_estimator=sampled or topk (or trainer.teacher_backend=hf)")
        jobs = []
        for i in range(batch.input_ids_B_L.shape[0]):
            keep = batch.attention_mask_B_L[i].bool()
            jobs.append((batch.input_ids_B_L[i][keep].tolist(), int(batch.response_lengths_B[i])))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            replies = list(pool.map(lambda job: self._score_one(job[0], job[1], topk), jobs))
        logp_B_T = torch.zeros_like(batch.response_mask_B_T)
        scores = TeacherScores(logp_B_T)
        if topk:
            scores.topk_logp_B_T_K = torch.full((*logp_B_T.shape, topk), -1e9)
            scores.topk_ids_B_T_K = torch.zeros((*logp_B_T.shape, topk), dtype=torch.long)
        for i, (logps, tops) in enumerate(replies):
            logp_B_T[i, : len(logps)] = torch.tensor(logps)
            for t, entry in enumerate(tops or []):
                scores.topk_logp_B_T_K[i, t, : len(entry)] = torch.tensor([float(e[0]) for e in entry])
                scores.topk_ids_B_T_K[i, t, : len(entry)] = torch.tensor([int(e[1]) for e in entry])
        return scores
