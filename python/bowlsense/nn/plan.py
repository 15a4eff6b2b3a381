"""Static memory plan: every activation tensor gets a fixed offset in one arena.

Tensors whose lifetimes (first write .. last read, in layer order) overlap never share bytes. An
element-wise layer (lookup table) or a reshape whose input dies at that layer writes in place: its
output takes the input's buffer. Buffers are then placed greedily, largest first, at the lowest
16-byte aligned offset that does not collide with a buffer alive at the same time (the same greedy
strategy as TFLite Micro's planner, on fewer, merged buffers).
"""
from __future__ import annotations

ALIGN = 16
IN_PLACE_OPS = ("RESHAPE", "LUT_S8")


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_arena(graph) -> int:
    n = len(graph.tensors)
    first = [None] * n
    last = [None] * n
    first[graph.input_tensor] = -1
    for i, layer in enumerate(graph.layers):
        for t in (layer.input, layer.input2):
            if t >= 0:
                last[t] = i if last[t] is None else max(last[t], i)
                if first[t] is None:
                    first[t] = i
        if first[layer.output] is None:
            first[layer.output] = i
        last[layer.output] = max(last[layer.output] or i, i)
    end = len(graph.layers)
    last[graph.output_tensor] = end

    # Merge in-place pairs into one buffer (union-find).
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, layer in enumerate(graph.layers):
        if layer.op in IN_PLACE_OPS and last[layer.input] == i and layer.input != graph.output_tensor:
            parent[find(layer.output)] = find(layer.input)

    groups: dict[int, dict] = {}
    for t in range(n):
        if first[t] is None:
            first[t], last[t] = -1, -1  # unused tensor: still gets a (shared) slot
        g = groups.setdefault(find(t), {"first": first[t], "last": last[t], "size": 0, "members": []})
        g["first"] = min(g["first"], first[t])
        g["last"] = max(g["last"], last[t])
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
