"""Static memory plan: every activation tensor gets a fixed offset in one arena.

Tensors whose lifetimes (first write .. last read, in layer order) overlap never share bytes, except
where a layer runs in place: its output takes its input's buffer when the input is read by no later
layer and the kernel supports it (element-wise LUT and ADD, RESHAPE, a 1x1 stride-1 CONV_2D pixel by
pixel, a DEPTHWISE_CONV_2D whose output rows only overwrite input rows already saved in a ring of
kernel_h rows (scratch); see bs_nn.h). Buffers are then placed greedily, largest first, at the lowest 16-byte aligned offset that
does not collide with a buffer alive at the same time (TFLite Micro's greedy strategy, on fewer, merged
buffers).
"""
from __future__ import annotations

ALIGN = 16
PATCH_MAX = 1024      # BS_NN_PATCH_MAX in bs_nn.c: widest output pixel of an in-place 1x1 conv
MAX_KERNEL_H = 16     # rows[] in bs_nn_depthwise_s8


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _in_place_candidates(graph, layer) -> list[int]:
    """Inputs whose buffer this layer's kernel can overwrite with its output."""
    ti, to = graph.tensors[layer.input], graph.tensors[layer.output]
    k = layer.ints
    if layer.op in ("RESHAPE", "LUT_S8"):
        return [layer.input]
    if layer.op == "ADD_S8":
        return [layer.input, layer.input2]
    if layer.op == "CONV_2D_S8" and k["kernel_h"] == k["kernel_w"] == 1 and k["stride_h"] == k["stride_w"] == 1 \
            and k["pad_top"] == k["pad_left"] == 0 and to.c <= PATCH_MAX:
        return [layer.input]
    if layer.op == "DEPTHWISE_CONV_2D_S8" and _depthwise_in_place_ok(layer, ti, to):
        return [layer.input]
    return []


def _depthwise_in_place_ok(layer, ti, to) -> bool:
    """Mirror of bs_nn_depthwise_in_place_ok in bs_nn.c."""
    k = layer.ints
    if k["depth_multiplier"] != 1 or k.get("dilation_h", 1) != 1 or ti.c != to.c \
            or not k["pad_top"] < k["kernel_h"] <= MAX_KERNEL_H:
        return False
    for oy in range(to.h):
        last = oy * k["stride_h"] - k["pad_top"] + k["kernel_h"] - 1
        copied = min(last, ti.h - 1) + 1
        if (oy + 1) * to.w * to.c > copied * ti.w * ti.c:
            return False
    return True


def _fusable(graph, i: int, readers: dict) -> bool:
    """A CONV_2D followed by the DEPTHWISE_CONV_2D that alone reads its output (bs_nn_fusion_ok)."""
    if i + 1 >= len(graph.layers):
        return False
    conv, dw = graph.layers[i], graph.layers[i + 1]
    return (conv.op == "CONV_2D_S8" and dw.op == "DEPTHWISE_CONV_2D_S8" and dw.input == conv.output
            and readers.get(conv.output) == [i + 1] and conv.output not in (graph.output_tensor, graph.input_tensor)
            and dw.ints["kernel_h"] <= MAX_KERNEL_H and dw.ints.get("dilation_h", 1) == 1)


def plan_arena(graph, in_place: bool = True, fuse: bool | None = None) -> int:
    """The static plan; fuse=None tries with and without fusion and keeps the smaller arena (fusion
    saves the intermediate tensor but keeps the convolution's input alive longer and forgoes an in-place
    depthwise, so it does not always win)."""
    if fuse is None:
        fused_bytes = _plan(graph, in_place, True)
        if _plan(graph, in_place, False) <= fused_bytes:
            return graph.arena_bytes
        return _plan(graph, in_place, True)
    return _plan(graph, in_place, fuse)


def _plan(graph, in_place: bool, fuse: bool) -> int:
    """Set every tensor's offset and graph.arena_bytes. fuse: run a CONV_2D inside the DEPTHWISE_CONV_2D
    after it (its output computed row by row into a ring, never stored whole); in_place: let layers write
    over their input where the kernel allows it."""
    from .lower import GTensor  # circular at import time

    # Drop scratch tensors of an earlier plan (re-planning must give the same result).
    for layer in graph.layers:
        layer.scratch = -1
        layer.fused = False
    graph.tensors[:] = [t for t in graph.tensors if t.source != -1]

    readers: dict[int, list[int]] = {}
    for i, layer in enumerate(graph.layers):
        for t in (layer.input, layer.input2):
            if t >= 0:
                readers.setdefault(t, []).append(i)
    streamed: set[int] = set()
    if fuse:
        for i in range(len(graph.layers) - 1):
            if not graph.layers[i].fused and _fusable(graph, i, readers):
                conv, dw = graph.layers[i], graph.layers[i + 1]
                conv.fused = True
                streamed.add(conv.output)
                mid = graph.tensors[conv.output]
                graph.tensors.append(GTensor(f"scratch of layer {i + 1} (rows of fused layer {i})",
                                             dw.ints["kernel_h"], mid.w, mid.c, 0, 1.0, -1))
                dw.scratch = len(graph.tensors) - 1

    n_layers = len(graph.layers)
    first: dict[int, int] = {graph.input_tensor: -1}
    last: dict[int, int] = {}
    for i, layer in enumerate(graph.layers):
        for t in (layer.input, layer.input2):
            if t >= 0:
                first.setdefault(t, i)
                last[t] = i
        first.setdefault(layer.output, i)
        last[layer.output] = max(last.get(layer.output, i), i)
        if layer.fused:  # its input is read while the next layer runs
            last[layer.input] = i + 1
    last[graph.output_tensor] = n_layers
    for t, layer in ((lay.scratch, i) for i, lay in enumerate(graph.layers) if lay.scratch >= 0):
        first[t] = last[t] = layer

    parent = list(range(len(graph.tensors)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if in_place:
        for i, layer in enumerate(graph.layers):
            if layer.fused or layer.input in streamed:
                continue
            for cand in _in_place_candidates(graph, layer):
                if last.get(cand) == i and cand != graph.output_tensor and find(cand) != find(layer.output):
                    parent[find(layer.output)] = find(cand)
                    if layer.op == "DEPTHWISE_CONV_2D_S8":
                        ti = graph.tensors[layer.input]
                        graph.tensors.append(GTensor(f"scratch of layer {i} (input rows)", layer.ints["kernel_h"],
                                                     ti.w, ti.c, 0, 1.0, -1))
                        parent.append(len(parent))
                        layer.scratch = len(graph.tensors) - 1
                        first[layer.scratch] = last[layer.scratch] = i
                    break

    groups: dict[int, dict] = {}
    for t in range(len(graph.tensors)):
        if t in streamed:
            graph.tensors[t].offset = 0  # never stored
            continue
        f, l_ = first.get(t, -1), last.get(t, first.get(t, -1))
        g = groups.setdefault(find(t), {"first": f, "last": l_, "size": 0, "members": []})
        g["first"] = min(g["first"], f)
        g["last"] = max(g["last"], l_)
        g["size"] = max(g["size"], graph.tensors[t].size)
        g["members"].append(t)

    placed: list[tuple[int, int, dict]] = []  # (offset, size, group)
    order = sorted(groups.values(), key=lambda g: (-g["size"], g["first"], g["members"][0]))
    for g in order:
        size = _align(g["size"])
        clashes = sorted((off, sz) for off, sz, other in placed
                         if not (other["last"] < g["first"] or g["last"] < other["first"]))
        offset = 0
        for off, sz in clashes:
            if offset + size <= off:
                break
            offset = max(offset, off + sz)
        placed.append((offset, size, g))
        for t in g["members"]:
            graph.tensors[t].offset = offset
    graph.arena_bytes = max((off + sz for off, sz, _ in placed), default=0)
    return graph.arena_bytes
