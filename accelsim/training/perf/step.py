"""One optimizer step: layers into pipeline stages, the schedule's bubble, the data-parallel
gradient reduction and the optimizer.

  recompute   full: the layer's forward again in backward; selective: the attention core
              (free with flash, whose backward recomputes it); per module (norms, MLA
              up-projections, the MoE activation) on top; torchtitan's per-op policy
              (alternate_mm): every second matmul of a block in call order (K, output, up)
              and the norms and activation; MaxText's Q/K/V offload to host under full
              remat (qkv_offload): the layer but its QKV projection (the host copies run
              beside the layers, ~T n_qkv e bytes each way per layer); a stack whose
              checkpoint stops at the last saved tensor (``rc_early_stop``, PyTorch >= 2.1
              non-reentrant): a dense layer but its down projection, the residual add after
              it and the MLP's TP output collective (parallel layers: the attention output
              projection too, and the summed outputs' one collective)
  stages      L/p layers each (or the given first/last stage layers, the rest even), MoE
              layers spread evenly; the first stage adds the embedding, the last the LM head,
              cross-entropy and the MTP modules; p2p of one activation per chunk boundary
              (1/t of it per TP rank when the stack scatter-gathers, the whole otherwise)
  pipeline    m micro-batches of the slowest stage + the bubble: 1F1B / interleaved
              (p - 1)/v average stage times (Narayanan et al., SC'21); DualPipe
              (p/2 - 1) forward shares of one (DeepSeek-V3 Table 2); the slowest stage at
              the pace of the slowest of the job's devices under the SKU's spread,
              1 + cv z_devices (``device_cv``, :mod:`accelsim.training.perf.stragglers`)
  DP          ring all-reduce (or reduce-scatter + all-gather with ZeRO) of each rank's
              gradients, dense and expert groups apart, on the links they span; released
              per chunk in the cooldown and overlapped with the backward (Megatron's
              overlap_grad_reduce / overlap_param_gather); ZeRO-3 gathers weights every pass;
              a stack whose FSDP runs them per unit (``unit_ring``) pays a ring's latency
              for each layer's all-gather and reduce-scatter, (D - k) a_in + (k - 1) a_out
              over k domains (NCCL's ring, its only algorithm for them before 2.23),
              and with ``unit_edges`` the edges it cannot hide: one unit's all-gather per
              micro-batch and gather, one unit's reduce-scatter per step;
              at the stack's widths (``dp_grad_bytes``; ``dp_fp8_gather``: FP8 training's
              linear weights gathered at 1 B, the embedding, output layer and norms at the
              weight width); with FP8 parameters gathered (``dp_fp8_edge``: Megatron-Core's
              distributed data parallel), Megatron merges the non-FP8
              bucket into the last FP8 bucket group, so that group (the first stage's
              non-FP8 weights and layer 0's bucket) is reduced after the backward and
              gathered before the forward, exposed in full, the rest staged;
              a stack whose FSDP rate limiter syncs the CPU per unit (``unit_gap_s``) idles
              the GPU that long at each layer's all-gather: 2 per micro-batch with ZeRO-3
              (forward, backward), 1 with ZeRO-2 (the forward's); its gradient hook's
              memory-bound copies of each unit's unsharded gradient (``unit_grad_bytes``
              per parameter) every micro-batch with ZeRO-2 and 3, and (FSDP2) its copy of
              each all-gather's output into the unsharded parameters (``unit_gather_bytes``
              per parameter and all-gather)
  optimizer   OPTIMIZER_BYTES_PER_PARAM of HBM traffic per (sharded) parameter
  host sync   a stack's per-step host work on an idle GPU that grows with the job's ranks
              (``host_ops_rank`` launches per rank, kernel_overhead each: Composer's
              per-batch torchmetrics sync, a zeros_like and a copy-out per rank and state),
              and a stack's per-step host gap whatever the size (``step_gap_s``: the end of
              a step after its host synchronisation and the next step's prologue, queued
              from Python without CUDA graphs)
  head        a stack's training metrics over the logits (``metric_passes``, opt-in): a
              no-grad cross-entropy per metric and micro-batch, 3 e + 4 bytes per logit
  GC          a stack whose ranks run Python's automatic garbage collector unaligned
              (``gc_layer_s`` per layer and micro-batch on each rank) stalls every rank at
              the rendezvous after a pause: R T (1 - (1 - q/R)^p) over the job's p devices,
              ~p x a rank's collection time while rare (:mod:`accelsim.training.perf
              .gc_pauses`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import collectives as coll
from accelsim import xp
from accelsim.training.perf.gc_pauses import rendezvous_per_step, unaligned_gc_stall
from accelsim.training.perf.layer import Layer, Micro, exposed, gemm, mem, staged
from accelsim.training.perf.moe import MoELayer, host_excess
from accelsim.training.perf.recipes import FP8_PARAM_BUCKET, OPTIMIZER_BYTES_PER_PARAM
from accelsim.training.perf.stragglers import slowest_device_factor


@dataclass
class Stages:
    """Layers per stage and per-micro-batch stage times (seconds, whole stage, v chunks)."""

    Ls: Any  # layers per stage (even split)
    Ld: Any  # dense layers per stage
    Lm: Any  # MoE layers per stage
    k_first: Any  # first stage's layers over the even share
    k_mid: Any
    k_last: Any
    k_f0: Any  # the first virtual stage's layers over an even chunk's share
    k_fo: Any  # the first stage's other chunks'
    k_lo: Any  # the last stage's chunks but its last
    k_lf: Any  # the last virtual stage's
    base_f: Any  # the stage's layers, forward compute
    base_b: Any  # backward compute with recomputation
    tp_stage: Any  # TP/CP communication of the stage's layers
    ep_stage: Any  # exposed all-to-all of the stage's MoE layers
    re_dense: Any  # recomputation per dense layer
    re_moe: Any  # recomputation per MoE layer
    a2a_layer: Any  # a MoE layer's exposed all-to-all, forward and backward
    t_emb_f: Any
    t_emb_b: Any
    t_head_f: Any
    t_head_b: Any
    t_mtp: Any  # the MTP modules on the last stage, forward and backward
    c_pp: Any  # one pipeline send
    p2p: Any  # a stage's sends per micro-batch (exposed)
    first: Any  # first stage's time per micro-batch
    last: Any  # last stage's
    stage_max: Any  # the slowest stage, straggler included
    slow: Any  # straggler slowdown
    m: Any  # micro-batches per step
    bubble: Any
    pipeline: Any  # m stage_max + bubble


def recompute(f: dict[str, Any], u: Micro, ly: Layer, mo: MoELayer) -> tuple[Any, Any]:
    """Seconds recomputed in backward per dense and per MoE layer (module docstring)."""
    g, T, e, e_lin = u.g, u.T, u.e, u.e_lin
    rc, flash, t = f["recompute"], f["flash"], f["tp"]
    # full recomputation without the QKV projection when Q, K, V were offloaded to host
    qkv_off = xp.where(f["rc_qkv_off"] > 0, ly.t_qkv, 0.0)
    # a stack whose checkpoint stops at the layer's last saved tensor (PyTorch's non-reentrant
    # early stop): the down projection's inputs are saved before its GEMM runs, so neither
    # it, the residual add after it nor (TP) the MLP's output all-reduce / reduce-scatter
    # (1/2 / 1/4 of the forward's TP traffic) is recomputed
    # (parallel layers: the attention output projection too, both feeding the summed
    # output, and its one reduction, 1/2 / all of the forward's TP traffic)
    es = f["rc_early_stop"] > 0
    par = f["parallel"]
    tail = 0.0 if xp.never(es) else xp.where(
        es, ly.t_down + par * ly.t_out + mem(3 * T * g.h * e / u.sp_div, f)
        + ly.t_tp_f * xp.where(f["sequence_parallel"] > 0, 0.25, 0.5) * (1.0 + par), 0.0)
    re_dense = xp.where(rc == 2, ly.t_f + ly.comm_f - qkv_off - tail,
                        xp.where(rc == 1, (1 - flash) * ly.t_att_f, 0.0))
    re_moe = xp.where(rc == 2, mo.t_f + ly.comm_f + mo.t_a2a - qkv_off,
                      xp.where(rc == 1, (1 - flash) * ly.t_att_f, 0.0))
    rc_norm = f["rc_norm"] > 0
    rc_norm_t = 0.0 if xp.never(rc_norm) else xp.where(
        rc_norm, mem(2 * T * g.h * (e + e_lin) / u.sp_div, f), 0.0)
    on = (f["rc_mla_up"] > 0) & g.mla
    rc_mla_t = xp.where(on, ly.t_qkv - gemm(T, g.h, g.r_q, f) * (g.r_q > 0)
                        - gemm(T, g.h, g.r_kv + g.d_r, f), 0.0) \
        if (on if type(on) is bool else np.any(on)) else 0.0
    rc_act = f["rc_moe_act"] > 0
    rc_act_t = 0.0 if xp.never(rc_act) else xp.where(
        rc_act, mem(T * (f["moe_top_k"] + f["moe_shared"]) * f["moe_ffn_hidden"]
                    * (e * g.up + e_lin) / t, f), 0.0)
    # torchtitan's per-op selective checkpointing: of the matmuls Q, K, V, output, gate, up,
    # down (call order) the 2nd, 4th and 6th again, and the non-matmul ops: the two norms
    # and the gated activation (read gate and up, write its output)
    alt = f["rc_alt_mm"] > 0
    rc_alt_t = 0.0 if xp.never(alt) else xp.where(
        alt, gemm(T, g.h, g.k_w / t, f) + gemm(T, g.o_w / t, g.h, f)
        + gemm(T, g.h, f["ffn_hidden"] / t, f)
        + mem(2 * T * g.h * 2 * e / u.sp_div, f)
        + mem(T * f["ffn_hidden"] * e * (g.up + 1) / t, f), 0.0)
    # MaxText's save_dot_except_mlpwi (mlp_in): the saved names are the Q, K, V, output and
    # MLP output projections' dots, so the MLP input projection (gate and up), its activation
    # (read its inputs, write its output), the two norms (unless rc_norm counts them) and the
    # attention kernel's forward (its output, 'context', is not a saved name) run again
    mi = f["rc_mlp_in"] > 0
    rc_mi_t = 0.0 if xp.never(mi) else xp.where(
        mi, ly.t_up + flash * ly.t_att_f
        + mem(T * f["ffn_hidden"] * (e * g.up + e_lin) / t, f)
        + xp.where(rc_norm, 0.0, mem(2 * T * g.h * (e + e_lin) / u.sp_div, f)), 0.0)
    re_dense = re_dense + xp.where(rc == 2, 0.0, rc_norm_t + rc_mla_t + rc_alt_t + rc_mi_t)
    re_moe = re_moe + xp.where(rc == 2, 0.0, rc_norm_t + rc_mla_t + rc_act_t + rc_alt_t)
    return re_dense, re_moe


def stages(f: dict[str, Any], u: Micro, ly: Layer, mo: MoELayer) -> Stages:
    T, e, h, V = u.T, u.e, u.g.h, f["vocab"]
    L, n_moe = f["layers"], f["moe_layers"]
    t, p, d, cp, v = f["tp"], f["pp"], f["dp"], f["cp"], f["virtual_stages"]
    kern = f["kernel_overhead_s"]
    re_dense, re_moe = recompute(f, u, ly, mo)
    # layers per stage; uneven stages (Megatron-core's decoder-first/last-pipeline-num-
    # layers): the first and/or last stage hold the given layers, the others the rest evenly
    Ls = L / p
    fL, lL = f["pp_first_layers"], f["pp_last_layers"]
    uneven = (fL > 0) | (lL > 0)
    if xp.never(uneven):
        L_mid = Ls
    else:
        n_rest = xp.maximum(p - (fL > 0) - (lL > 0), 1.0)
        L_mid = xp.where(uneven, (L - fL - lL) / n_rest, Ls)
    k_first = xp.where(fL > 0, fL, L_mid) / Ls
    k_mid = L_mid / Ls
    k_last = xp.where(lL > 0, lL, L_mid) / Ls
    # Megatron-Core's account_for_embedding/loss_in_pipeline_split: layers + 1 (+ 1) over the
    # p v virtual stages; the first virtual stage holds one layer fewer beside the embedding,
    # the last one fewer beside the head and loss (transformer_block.get_num_layers_to_build).
    # The layers of the first stage's first virtual stage and of the last stage's last one,
    # over an even virtual stage's share (Ls / v): Megatron-Core splits a stage's layers
    # evenly over its chunks, but for the layer the embedding / loss stands in for
    # (account_for_*) or as a pipeline layout places them (first/last_chunk_layers)
    ae, al = f["pp_acc_emb"], f["pp_acc_loss"]
    fc, lc = f["pp_first_chunk"], f["pp_last_chunk"]
    acc = (ae > 0) | (al > 0)
    if not xp.never(acc):
        Lr = (L + ae + al) / p  # a stage's share, the embedding and loss counted as layers
        one = acc & (p > 1)  # (a single stage holds every layer)
        k_first = xp.where(one, (Lr - ae) / Ls, k_first)
        k_mid = xp.where(one, Lr / Ls, k_mid)
        k_last = xp.where(one, (Lr - al) / Ls, k_last)
        fc = xp.where(one & (ae > 0), Lr / v - 1.0, fc)
        lc = xp.where(one & (al > 0), Lr / v - 1.0, lc)
    k_f0, k_fo, k_lo, k_lf = k_first, k_first, k_last, k_last
    vm1 = xp.maximum(v - 1, 1.0)
    if not xp.never(fc >= 0):
        k_f0 = xp.where(fc >= 0, fc * v / Ls, k_first)
        k_fo = xp.where((fc >= 0) & (v > 1), (k_first * v - k_f0) / vm1, k_first)
    if not xp.never(lc >= 0):
        k_lf = xp.where(lc >= 0, lc * v / Ls, k_last)
        k_lo = xp.where((lc >= 0) & (v > 1), (k_last * v - k_lf) / vm1, k_last)
    Lm = n_moe / p
    Ld = Ls - Lm
    base_f = Ld * ly.t_f + Lm * mo.t_f
    base_b = Ld * (ly.t_b + re_dense) + Lm * (mo.t_b + re_moe)
    comm_f, comm_b = ly.comm_f, ly.comm_b
    tp_stage = (Ld + Lm) * (comm_f + comm_b)
    # the all-to-all of one micro-batch hidden behind another's compute (DualPipe's
    # forward-backward pairs, Megatron's EP-overlap with 1F1B): the part that sticks out
    ov_ep = (f["overlap_ep"] > 0) | (f["dualpipe"] > 0)
    a2a_layer = xp.where(ov_ep, exposed(2 * mo.t_a2a, mo.t_f + mo.t_b), 2 * mo.t_a2a)
    # a dropless MoE layer's host synchronisation (moe_host_op_s): the forward and the
    # backward of each MoE layer wait on the host when it issues them slower than the GPU
    # runs them (the layer's compute, TP collectives and exposed all-to-all)
    host_moe = host_excess(f, mo.t_f + comm_f + 0.5 * a2a_layer,
                           mo.t_b + re_moe + comm_b + 0.5 * a2a_layer)
    ep_stage = Lm * (a2a_layer + host_moe)

    # embedding (first stage) and LM head + cross-entropy (last stage)
    t_head_gemm = gemm(T, h, V / t, f, linear=False)
    t_head_f = t_head_gemm + mem(3 * T * V * 4 / t, f) + 3 * kern
    # training metrics over the logits (metric_passes: Composer's train metrics, each a no-grad
    # torch cross-entropy under autocast: log_softmax at the logits' width (read and write e),
    # then nll_loss, on autocast's fp32 list, copies the log-probabilities to fp32 (read e,
    # write 4); a lower bound, the softmax kernel's re-reads of a row taken as L2 hits
    n_met = f["metric_passes"]
    if not xp.never(n_met > 0):
        t_head_f = t_head_f + n_met * (mem(T * V * (3 * e + 4) / t, f) + 3 * kern)
    t_head_b = 2 * t_head_gemm + mem(2 * T * V * 4 / t, f) + 3 * kern
    t_emb_f = mem(2 * T * h * e / u.sp_div, f) + kern
    t_emb_b = mem(3 * T * h * e / u.sp_div, f) + kern + xp.where(t > 1, ly.t_tp_once / 4, 0.0)

    # pipeline point-to-point: one activation per chunk boundary, scattered over TP ranks
    # (or whole from every TP rank when the stack does not scatter-gather)
    M_pp = T * h * e / xp.where(f["pp_scatter"] > 0, t, 1.0)
    pp_cross = (t * cp * d * p) > f["scaleup_domain"]
    c_pp = coll.p2p(M_pp, xp.where(pp_cross, u.bw_out, u.bw_in),
                    xp.where(pp_cross, u.a_out, u.a_in))
    c_pp = xp.where(p > 1, c_pp, 0.0)

    # per micro-batch time of the first, middle and last stage (v chunks each)
    layers_part = base_f + base_b + tp_stage + ep_stage
    # DualPipe overlaps the pipeline sends with the paired forward-backward chunk
    dual = f["dualpipe"] > 0
    p2p = 2 * v * c_pp if xp.never(dual) else xp.where(
        dual, exposed(2 * v * c_pp, base_f + base_b), 2 * v * c_pp)
    first = k_first * layers_part + p2p + t_emb_f + t_emb_b
    # multi-token prediction (DeepSeek-V3 section 2.2): each of the mtp modules on the last
    # stage is a projection of [h; embedding] (2h -> h), one transformer layer (MoE when the
    # model has experts) and the shared LM head again
    n_mtp = f["mtp"]
    if n_mtp > 0 if type(n_mtp) is float else (n_mtp > 0).any():
        mtp_layer = xp.where(n_moe > 0, mo.t_f + mo.t_b + re_moe + a2a_layer + host_moe,
                             ly.t_f + ly.t_b + re_dense) + comm_f + comm_b
        t_mtp = n_mtp * (mtp_layer + 3 * gemm(T, 2 * h, h / t, f) + t_head_f + t_head_b)
    else:  # no MTP module in any row: 0 x (finite seconds), without evaluating them
        t_mtp = 0.0
    last = k_last * layers_part + p2p + t_head_f + t_head_b + t_mtp
    single = layers_part + p2p + t_emb_f + t_emb_b + t_head_f + t_head_b + t_mtp
    first = xp.where(p > 1, first, single)
    last = xp.where(p > 1, last, single)
    middle = k_mid * layers_part + p2p
    # the steady state at the slowest virtual stage: in (interleaved) 1F1B every rank runs
    # one forward and one backward chunk per round, in lockstep with its neighbours, so a
    # round takes its slowest rank's chunk, and the v - 1 rounds of a micro-batch's plain
    # chunks and the one of its edge chunk (the first virtual stage with the embedding, or
    # the last with the head, loss and MTP: the slower of the two; each sits in one chunk,
    # which the rest of its rank's chunks do not offset when they are lighter) sum the
    # slowest rank's; >= the slowest rank's whole stage, equal to it when the edge ranks'
    # plain chunks are no lighter than the middle ranks' (v = 1 included). The des engine
    # gives it within 1-2 % (tests/training/test_pipeline.py)
    chunk = layers_part / v  # an even share's chunk
    c_mid = xp.where(p > 2, k_mid * chunk, 0.0)
    c_plain = xp.maximum(xp.maximum(k_fo * chunk, c_mid), k_lo * chunk)
    c_edge = xp.maximum(xp.maximum(k_f0 * chunk + t_emb_f + t_emb_b, c_mid),
                        xp.maximum(k_lf * chunk + t_head_f + t_head_b + t_mtp,
                                   xp.maximum(k_fo, k_lo) * chunk))
    rounds = (v - 1) * c_plain + c_edge + p2p
    # the job's given straggler and the slowest of its p devices under the SKU's spread
    slow = f["straggler"] * slowest_device_factor(t * p * d * cp, f["device_cv"])
    stage_max = xp.maximum(xp.maximum(first, last), xp.where(p > 2, middle, 0.0))
    if xp.never(dual):
        stage_max = xp.where(p > 1, xp.maximum(stage_max, rounds), stage_max) * slow
    else:  # DualPipe pairs chunks of two micro-batches: its ranks' whole stages
        stage_max = xp.where((p > 1) & (f["dualpipe"] <= 0), xp.maximum(stage_max, rounds),
                             stage_max) * slow
    n_mid = xp.maximum(p - 2, 0.0)
    stage_avg = xp.where(p > 1, (first + last + n_mid * middle) / xp.maximum(p, 1.0), single)
    m = f["global_batch"] / (d * f["micro_batch"])
    # 1F1B / interleaved: (p - 1)/v average stage times (Narayanan et al. 2021; exact for
    # equal stages. With a slow last stage, the head's, 1F1B's fill and drain run the other
    # stages once, m T_s + sum of the others' T_i (tests/training/test_pipeline.py): that
    # form, (p avg - max)/v, was measured and not adopted, docs/_notes/pipeline-head-stage.md).
    # DualPipe (DeepSeek-V3 Table 2): (p/2 - 1) (F&B + B - 3W) with F&B = F + B + W (a paired
    # chunk) and B = W = half the backward: (p/2 - 1) F, the forward share of a stage time
    fill = (p - 1) / v * stage_avg
    if xp.never(dual):
        bubble = fill
    else:
        f_share = base_f / xp.maximum(base_f + base_b, 1e-30)
        bubble = xp.where(dual, xp.maximum(p / 2 - 1, 0.0) * stage_avg * f_share, fill)
    return Stages(
        Ls=Ls, Ld=Ld, Lm=Lm, k_first=k_first, k_mid=k_mid, k_last=k_last, k_f0=k_f0,
        k_fo=k_fo, k_lo=k_lo, k_lf=k_lf, base_f=base_f,
        base_b=base_b, tp_stage=tp_stage, ep_stage=ep_stage, re_dense=re_dense, re_moe=re_moe,
        a2a_layer=a2a_layer, t_emb_f=t_emb_f, t_emb_b=t_emb_b, t_head_f=t_head_f,
        t_head_b=t_head_b, t_mtp=t_mtp, c_pp=c_pp, p2p=p2p, first=first, last=last,
        stage_max=stage_max,
        slow=slow, m=m, bubble=bubble, pipeline=m * stage_max + bubble)


@dataclass
class RankParams:
    """Parameters held per rank (the first stage, with the embedding, and a middle one)."""

    layers: Any  # a stage's non-expert layer weights (even share)
    layers_expert: Any  # a stage's routed-expert weights (even share)
    emb: Any  # the embedding matrix
    first_dense: Any
    mid_dense: Any
    dense: Any  # the larger of first and middle (what DP reduces)
    expert: Any
    non_fp8: Any = 0.0  # of ``dense``: the weights FP8 training keeps at the weight width
    edge_non: Any = 0.0  # the first stage's non-FP8 weights (the last bucket group's)
    edge_last: Any = 0.0  # the first stage's last FP8 bucket (layer 0's)

    @property
    def total(self) -> Any:
        return self.dense + self.expert


def rank_params(f: dict[str, Any], u: Micro, st: Stages) -> RankParams:
    g = u.g
    t, p = f["tp"], f["pp"]
    P_emb = f["vocab"] * g.h
    untied_or_split = xp.where((f["tied_embeddings"] > 0) & (p == 1), 0.0, 1.0)
    P_layers = ((st.Ls * g.attn_split + st.Ld * g.dense_mlp
                 + st.Lm * (f["moe_shared"] * g.expert + g.h * g.experts)) / t
                + st.Ls * g.attn_rep)
    P_emb_rank = (P_emb + xp.where(p == 1, untied_or_split * P_emb, 0.0)) / t
    P_layers_expert = st.Lm * (g.experts / f["ep"]) * g.expert / t
    P_first_dense = st.k_first * P_layers + P_emb_rank
    P_mid_dense = st.k_mid * P_layers
    dense = xp.maximum(P_first_dense, P_mid_dense)
    if xp.never(f["dp_fp8_gather"] > 0):
        return RankParams(layers=P_layers, layers_expert=P_layers_expert, emb=P_emb,
                          first_dense=P_first_dense, mid_dense=P_mid_dense, dense=dense,
                          expert=xp.maximum(st.k_first, st.k_mid) * P_layers_expert)
    # the weights FP8 training keeps out of its GEMMs, from the model's shape: the embedding
    # and (untied, or on the last stage) the output layer, each layer's two norms, the MoE
    # routers, the final norm (one stage); of the stage DP reduces (the larger)
    norms = 2 * g.h
    P_layers_non = st.Ls * norms + st.Lm * g.h * g.experts / t
    non_first = st.k_first * P_layers_non + P_emb_rank + xp.where(p == 1, g.h, 0.0)
    non_mid = st.k_mid * P_layers_non
    non = xp.where(P_first_dense >= P_mid_dense, non_first, non_mid)
    # Megatron's last FP8 bucket (reverse-order fill: layer 0's attention weights, at most a
    # bucket), merged with the non-FP8 buffer into the last bucket group; the first stage's
    # (its backward ends the step, its forward starts the next)
    last = xp.minimum(FP8_PARAM_BUCKET, g.attn_split / t + g.attn_rep - norms)
    return RankParams(layers=P_layers, layers_expert=P_layers_expert, emb=P_emb,
                      first_dense=P_first_dense, mid_dense=P_mid_dense, dense=dense,
                      expert=xp.maximum(st.k_first, st.k_mid) * P_layers_expert,
                      non_fp8=non, edge_non=non_first, edge_last=last)


@dataclass
class DataParallel:
    """The data-parallel groups and what their reduction and the optimizer cost."""

    D: Any  # dense gradient group: dp x cp ranks
    De: Any  # expert gradient group: D / ep
    copies: Any  # parameter copies per rank (DualPipe: 2)
    rs_s: Any  # a step's gradient reduce-scatter (ZeRO), before any overlap
    ag_s: Any  # a step's parameter all-gather (ZeRO), before any overlap
    exposed_s: Any  # gradient reduction (and parameter gather) not hidden
    zero3_s: Any  # ZeRO-3's per-pass weight gathers (and the stack's FSDP unit gaps)
    optimizer_s: Any
    host_s: Any  # a stack's per-step host work on an idle GPU (``host_ops_rank``, ``step_gap_s``)


def grad_width(f: dict[str, Any]) -> Any:
    """Bytes per gradient element as reduced and as held: the stack's reduction width
    (``dp_grad_bytes``; 0: the precision's ``grad_bytes``). Megatron-Core allocates its
    gradient buffers in it (distributed_data_parallel.py: grad_dtype = torch.float if
    grad_reduce_in_fp32 else param.dtype; Apex DistributedFusedAdam: buckets in
    grad_sync_dtype), so :func:`data_parallel` and the memory model read the same width."""
    dgb, gb = f["dp_grad_bytes"], f["grad_bytes"]
    return gb if xp.never(dgb > 0) else xp.where(dgb > 0, dgb, gb)


def data_parallel(f: dict[str, Any], u: Micro, st: Stages, pr: RankParams) -> DataParallel:
    t, p, cp, ep, v = f["tp"], f["pp"], f["cp"], f["ep"], f["virtual_stages"]
    zero, m = f["zero"], st.m
    dom = f["scaleup_domain"]
    D = f["dp"] * cp
    De = xp.maximum(D / ep, 1.0)
    wb, gb = f["weight_bytes"], grad_width(f)
    # FP8 parameters gathered (dp_fp8_gather): fp8 jobs with the distributed optimizer
    fp8g = (f["dp_fp8_gather"] > 0) & (f["fp8"] > 0) & (zero > 0)
    # DualPipe holds two stages' parameters per rank (DeepSeek-V3 Table 2: 2x parameters)
    copies = xp.where(f["dualpipe"] > 0, 2.0, 1.0)
    # the dense and the expert gradients' all-reduces; without expert parallelism in any
    # row (ep 1, every D >= 1) both run over the same group, whose terms are computed once
    dense = coll.GroupTerms(D, t, dom, u.a_in, u.a_out)
    same = type(ep) is float and ep == 1.0 and (
        D >= 1.0 if type(D) is float else bool(np.all(D >= 1.0)))
    expert = dense if same else coll.GroupTerms(De, t * ep, dom, u.a_in, u.a_out)
    # inside one domain NCCL's all-reduce (collectives.nccl_allreduce): ring or NVLS
    bw_red = f["scaleup_bw_Bps"] * f["eff_reduction"]
    lat_red = f["reduction_latency_s"]
    ar_d = coll.group_allreduce_terms(copies * pr.dense * gb, dense, u.bw_in, u.bw_out,
                                      bw_red, lat_red)
    ar_e = coll.group_allreduce_terms(copies * pr.expert * gb, expert, u.bw_in, u.bw_out,
                                      bw_red, lat_red)
    # ring RS/AG move half of an all-reduce each
    rs = 0.5 * (ar_d + ar_e)
    ag = 0.5 * (ar_d + ar_e) * wb / gb
    if not xp.never(fp8g):
        # FP8 linear weights at 1 B, the non-FP8 ones at the weight width (experts all FP8)
        dense_P = xp.maximum(copies * pr.dense, 1.0)
        w_dense = (copies * (pr.dense - pr.non_fp8) + wb * copies * pr.non_fp8) / dense_P
        ag = xp.where(fp8g, 0.5 * (ar_d * w_dense + ar_e) / gb, ag)
        # the last bucket group's share (the non-FP8 buffer and the last FP8 bucket):
        # its reduce-scatter after the backward, its all-gather before the forward
        edge = fp8g & (f["dp_fp8_edge"] > 0)
        rs_edge = xp.where(edge, xp.minimum(
            0.5 * ar_d * (pr.edge_non + pr.edge_last) / dense_P, rs), 0.0)
        ag_edge = xp.where(edge, xp.minimum(
            0.5 * ar_d * (wb * pr.edge_non + pr.edge_last) / (gb * dense_P), ag), 0.0)
    else:
        rs_edge = ag_edge = 0.0
    # a stack whose FSDP runs them per unit (unit_ring): each of a stage's L layers' all-gather
    # and reduce-scatter is a ring over the D ranks (NCCL's only algorithm for them before
    # 2.23, src/graph/tuning.cc): D - k steps inside the k domains it spans, k - 1 across
    # (NCCL's nInterSteps), in place of the one aggregated collective's latency
    unit = f["unit_ring"] > 0
    if not xp.never(unit):
        lat = coll.ring_latency(D, xp.floor(dom / t), u.a_in, u.a_out)
        bw_only = coll.GroupTerms(D, t, dom, 0.0, 0.0)
        ar_bw = (coll.group_allreduce_terms(copies * pr.dense * gb, bw_only, u.bw_in, u.bw_out)
                 + coll.group_allreduce_terms(copies * pr.expert * gb, bw_only, u.bw_in,
                                              u.bw_out))
        per_unit = st.Ls * lat
        rs = xp.where(unit, 0.5 * ar_bw + per_unit, rs)
        ag = xp.where(unit, 0.5 * ar_bw * wb / gb + per_unit, ag)
    # overlap: a chunk's gradients are final after its last backward; in the cooldown the v
    # chunks finish min(m, p) chunk-backwards apart, so their reductions are released `gap`
    # apart and queue on the link; the last one also hides behind its own chunk's backward
    # (layer buckets). Parameter all-gathers mirror this over the next step's warm-up
    # forwards.
    ov = f["overlap_dp"]
    ov_ag = ov * f["overlap_ag"]  # overlap_param_gather (0: the all-gather after the step)
    gap_b = ov * xp.minimum(m, p) * st.base_b / v
    gap_f = ov_ag * xp.minimum(m, p) * st.base_f / v
    # with FP8 parameters gathered the last bucket group (rs_edge, ag_edge) has nothing to
    # hide behind: exposed in full, the rest staged
    out = xp.where(
        zero > 0,
        staged(rs - rs_edge, v, gap_b, ov * st.base_b / v) + rs_edge
        + staged(ag - ag_edge, v, gap_f, ov_ag * st.base_f / v) + ag_edge,
        staged(ar_d + ar_e, v, gap_b, ov * st.base_b / v),
    )
    out = xp.where(D > 1, out, 0.0)
    z3 = xp.where((zero == 3) & (D > 1), m * exposed(2 * ag, st.base_f + st.base_b), 0.0)
    gathers = xp.where(zero == 3, 2.0, xp.where(zero == 2, 1.0, 0.0))
    z3 = z3 + xp.where(D > 1, m * st.Ls * gathers * f["unit_gap_s"], 0.0)
    # per-unit FSDP's edges (unit_edges): each micro-batch's first all-gather per pass has
    # nothing before it to hide behind, the step's last reduce-scatter nothing after it
    edge = m * gathers * ag / xp.maximum(st.Ls, 1.0) + rs / xp.maximum(st.Ls, 1.0)
    z3 = z3 + xp.where((D > 1) & (zero >= 2) & (f["unit_ring"] * f["unit_edges"] > 0),
                       edge, 0.0)
    # the stack's FSDP gradient hook (cat into the flat gradient, cast, pre-divide) per
    # micro-batch over every unsharded parameter of the rank's units, and its copy-out of
    # each all-gather's buffer into the unsharded parameters (FSDP2), memory-bound
    z3 = z3 + xp.where((D > 1) & (zero >= 2), mem(m * pr.dense * (
        f["unit_grad_bytes"] + gathers * f["unit_gather_bytes"]), f), 0.0)
    shard = xp.where(zero >= 1, D, 1.0)
    t_opt = mem(copies * pr.total * OPTIMIZER_BYTES_PER_PARAM / shard, f)
    # per-step host work that grows with the job's ranks, on an idle GPU (host_ops_rank:
    # torchmetrics' per-rank zeros_like and all_gather copy-outs of each metric state)
    hop = f["host_ops_rank"]
    host = (0.0 if xp.never(hop > 0)
            else hop * f["dp"] * cp * t * p * f["kernel_overhead_s"])
    # the stack's per-step host gap (step_gap_s): the GPU idle between the step's host
    # synchronisation and the next step's first queued work, whatever the job's size
    host = host + f["step_gap_s"]
    return DataParallel(D=D, De=De, copies=copies, rs_s=rs, ag_s=ag, exposed_s=out, zero3_s=z3,
                        optimizer_s=t_opt, host_s=host)


def gc_stall(f: dict[str, Any], st: Stages, devices: Any) -> Any:
    """Seconds a step waits for the ranks' unaligned garbage collections (0 for a stack that
    aligns them): each rank collects ``gc_layer_s`` per layer of its stage and micro-batch,
    in pauses of ``gc_pause_s``, and every rendezvous waits for a collecting rank."""
    g = f["gc_layer_s"]
    if type(g) is float and g == 0.0:
        return 0.0
    w = g * st.Ls * st.m
    return xp.where(g > 0, unaligned_gc_stall(devices, w, f["gc_pause_s"],
                                              rendezvous_per_step(st.Ls, st.m)), 0.0)
