"""A serving engine's settings against its model, checked without a device: the one check of
a job file's replicas (:func:`accelsim.llm.load.check_job`), the fleet's chatbot block, the
published LLM runs and the Python API's replica model
(:func:`accelsim.llm.perf.replica_model`). A module of its own, below both."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelsim.errors import Problem

if TYPE_CHECKING:
    from accelsim.llm.job import Engine
    from accelsim.transformer.model import TransformerModel


def pipeline_problem(pp: int, layers: int, dp: int = 1, role: str = "both") -> str | None:
    """Why ``pp`` pipeline stages cannot run (None: they can): the stages split the layers
    evenly (TensorRT-LLM's ``Mapping.pp_layers``, tensorrt_llm/mapping.py at b35ac1b6:
    num_layers // pp_size consecutive layers per stage), and the replica model has no
    pipeline with attention data parallelism or on one side of a disaggregated deployment."""
    if pp <= 1:
        return None
    if layers % pp:
        return (f"pp ({pp}) must divide the model's layers ({layers}): the stages split the "
                "layers evenly")
    if dp > 1:
        return f"pp {pp} with dp {dp} is not modelled; expected pp 1 or dp 1"
    if role != "both":
        return (f"pp {pp} on a {role} replica is not modelled; expected pp 1 or role 'both'")
    return None


def engine_problems(engine: Engine, model: TransformerModel, file: str, where: str,
                    tp: int | None = None, dp: int = 1, pp: int = 1,
                    role: str = "both") -> list[Problem]:
    """An engine's settings against its model (no device needed): multi-token prediction
    needs the model's MTP modules, expert placement, overlap and ``dp`` need experts,
    ``tp`` divides the heads and ``pp`` the layers (:func:`pipeline_problem`).
    The one check of a job's replicas, the fleet's chatbot block and
    the published LLM runs (``where``: the block holding the settings)."""
    probs = []
    if engine.mtp_tokens and not model.mtp_layers:
        probs.append(Problem(file, f"{where}.mtp_tokens", f"{model.name} has no multi-token "
                             "prediction modules (mtp_layers 0); expected mtp_tokens 0 or a "
                             "model with mtp_layers"))
    if model.moe is None:
        for key, on in (("redundant_experts", engine.redundant_experts > 0),
                        ("overlap_ep_comm", engine.overlap_ep_comm)):
            if on:
                probs.append(Problem(file, f"{where}.{key}", f"{model.name} is dense (no "
                                     f"moe block), so {key} has nothing to act on; expected "
                                     f"it left out or a mixture-of-experts model"))
    at = where.removesuffix(".engine")
    if model.moe is None and dp > 1:
        probs.append(Problem(file, f"{at}.dp", f"{model.name} is dense (no moe block): "
                             f"attention data parallelism (dp {dp}) spreads experts; expected "
                             "dp 1 (more replicas: count)"))
    if tp is not None and model.heads % tp:
        probs.append(Problem(file, f"{at}.tp", f"tp ({tp}) must divide the model's heads "
                             f"({model.heads})"))
    pp_problem = pipeline_problem(pp, model.layers, dp, role)
    if pp_problem:
        probs.append(Problem(file, f"{at}.pp", pp_problem))
    return probs
