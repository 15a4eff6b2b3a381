"""Write the C the firmware links for one model: bs_model.h, bs_model_graph.c, bs_model_tflite.c.

The graph is the same lowered bowlsense.nn Graph the host Engine runs, so the device computes what
`bowlsense predict` computes (and both equal TFLite Micro). See firmware/nn/README.md.
"""
from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from ..manifest import Manifest
from ..nn.lower import ARRAY_FIELDS, INT_FIELDS, Graph, device_arrays
from .cgen import banner, c_array_body, c_comment, c_float, c_string, hex_bytes_body

C_TYPES = {np.int8: "int8_t", np.int16: "int16_t", np.int32: "int32_t"}
GRAPH_VERSION = 2  # BS_NN_GRAPH_VERSION


def threshold_q(probability: float, scale: float, zero_point: int) -> int:
    """Smallest int8-domain output value q with scale * (q - zero_point) >= probability. Kept in int16:
    a threshold of 1.0 can lie above 127 (never reached)."""
    q = math.ceil(probability / scale + zero_point - 1e-9)
    while scale * (q - 1 - zero_point) >= probability:  # guard against float noise at exact multiples
        q -= 1
    while scale * (q - zero_point) < probability:
        q += 1
    return max(-129, min(q, 32767))


def threshold_sum(probability: float, scale: float, zero_point: int, windows: int) -> int:
    """Smallest sum S of `windows` int8 outputs whose mean probability scale * (S / windows - zero_point)
    reaches `probability`: model.json's rule on the moving average, decided exactly in integers (rounding
    the per-window threshold first and multiplying by N would shift it by up to N - 1 LSB of the sum)."""
    s = math.ceil(windows * (probability / scale + zero_point) - 1e-9)
    while scale * ((s - 1) / windows - zero_point) >= probability:  # float noise at exact multiples
        s -= 1
    while scale * (s / windows - zero_point) < probability:
        s += 1
    return max(-129 * windows, min(s, 128 * windows))


def header(manifest: Manifest, graph: Graph, tflite_len: int, inputs) -> str:
    n = len(manifest.labels)
    lines = [banner("bs_model.h", inputs), "#ifndef BS_MODEL_H", "#define BS_MODEL_H", "",
             "#include <stdint.h>", "", '#include "bs_nn.h"', "",
             "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
             f"/* Model {c_comment(manifest.name)}: {n} labels, {graph.macs()} MACs, {len(graph.layers)} layers. */",
             "enum {",
             f"    BS_MODEL_ARENA_BYTES = {graph.arena_bytes}, /* peak activation RAM of the static plan */",
             f"    BS_MODEL_INPUT_SIZE = {graph.input.size},   /* int8 values: {graph.input.h}x{graph.input.w}x{graph.input.c} */",
             f"    BS_MODEL_OUTPUT_SIZE = {graph.output.size},",
             f"    BS_MODEL_NUM_LABELS = {n},",
             f"    BS_MODEL_INPUT_ZERO_POINT = {graph.input.zero_point},",
             f"    BS_MODEL_OUTPUT_ZERO_POINT = {graph.output.zero_point},",
             f"    BS_MODEL_SMOOTHING_WINDOWS = {manifest.smoothing.windows},",
             f"    BS_MODEL_MIN_EVENT_WINDOWS = {manifest.smoothing.min_event_windows},",
             f"    BS_MODEL_MACS = {graph.macs()},",
             f"    BS_MODEL_TFLITE_LEN = {tflite_len}",
             "};", "",
             "/* Quantization of the int8 input (front end log-mel in nats: q = round(x / scale) + zero point)",
             " * and of the int8 output (probability = scale * (q - zero point)). */",
             "extern const float bs_model_input_scale;",
             "extern const float bs_model_output_scale;", "",
             "/* Labels in output order; privacy[i] is 1 for labels whose presence blocks audio export. */",
             "extern const char *const bs_model_labels[BS_MODEL_NUM_LABELS];",
             "extern const uint8_t bs_model_privacy[BS_MODEL_NUM_LABELS];", "",
             "/* Hysteresis thresholds in the int8 output domain (int16: 1.0 may lie above 127): on_q / off_q are",
             " * the smallest single outputs reaching model.json's on / off probabilities (the privacy gate uses",
             " * off_q on each raw score); on_sum / off_sum are the smallest sums of SMOOTHING_WINDOWS outputs whose",
             " * mean reaches them: an event starts when the sum is >= on_sum and ends when it falls below off_sum. */",
             "extern const int16_t bs_model_threshold_on_q[BS_MODEL_NUM_LABELS];",
             "extern const int16_t bs_model_threshold_off_q[BS_MODEL_NUM_LABELS];",
             "extern const int32_t bs_model_threshold_on_sum[BS_MODEL_NUM_LABELS];",
             "extern const int32_t bs_model_threshold_off_sum[BS_MODEL_NUM_LABELS];", "",
             "/* Front end configuration hash the model was trained with (must equal bs_frontend's), and the",
             " * sha256 of model.tflite (hex). */",
             f"#define BS_MODEL_FRONTEND_HASH {c_string(manifest.frontend_hash)}",
             f"#define BS_MODEL_TFLITE_SHA256 {c_string(graph.tflite_sha256)}",
             "extern const char bs_model_frontend_hash[];", "",
             "/* The model for bs_nn_invoke(). */",
             "extern const bs_nn_graph bs_model_graph;", "",
             "/* The .tflite flatbuffer (16-byte aligned) for a build that links TFLite Micro instead. */",
             "const uint8_t *bs_model_tflite_data(void);",
             "uint32_t bs_model_tflite_len(void);",
             "const char *bs_model_tflite_sha256(void);", "",
             "#ifdef __cplusplus", "}", "#endif", "", "#endif /* BS_MODEL_H */", ""]
    return "\n".join(lines)


def graph_c(manifest: Manifest, graph: Graph, inputs, progress: bool = True) -> str:
    n = len(manifest.labels)
    out = graph.output
    on = [threshold_q(manifest.thresholds[lab].on, out.scale, out.zero_point) for lab in manifest.labels]
    off = [threshold_q(manifest.thresholds[lab].off, out.scale, out.zero_point) for lab in manifest.labels]
    windows = manifest.smoothing.windows
    on_sum = [threshold_sum(manifest.thresholds[lab].on, out.scale, out.zero_point, windows) for lab in manifest.labels]
    off_sum = [threshold_sum(manifest.thresholds[lab].off, out.scale, out.zero_point, windows) for lab in manifest.labels]
    parts = [banner("bs_model_graph.c", inputs), '#include "bs_model.h"', "",
             "#if defined(__GNUC__)", "#define BS_MODEL_ALIGN4 __attribute__((aligned(4)))", "#else",
             "#define BS_MODEL_ALIGN4", "#endif", "",
             f"const float bs_model_input_scale = {c_float(graph.input.scale)};",
             f"const float bs_model_output_scale = {c_float(graph.output.scale)};",
             "const char *const bs_model_labels[BS_MODEL_NUM_LABELS] = {"
             + ", ".join(c_string(lab) for lab in manifest.labels) + "};",
             "const uint8_t bs_model_privacy[BS_MODEL_NUM_LABELS] = {"
             + ", ".join("1" if lab in manifest.privacy_labels else "0" for lab in manifest.labels) + "};",
             "const int16_t bs_model_threshold_on_q[BS_MODEL_NUM_LABELS] = {" + ", ".join(map(str, on)) + "};",
             "const int16_t bs_model_threshold_off_q[BS_MODEL_NUM_LABELS] = {" + ", ".join(map(str, off)) + "};",
             "const int32_t bs_model_threshold_on_sum[BS_MODEL_NUM_LABELS] = {" + ", ".join(map(str, on_sum)) + "};",
             "const int32_t bs_model_threshold_off_sum[BS_MODEL_NUM_LABELS] = {" + ", ".join(map(str, off_sum)) + "};",
             "const char bs_model_frontend_hash[] = BS_MODEL_FRONTEND_HASH;", ""]
    assert n == len(on)
    array_names: list[dict] = []
    layers = tqdm(graph.layers, desc="export: weights", unit="layer", disable=not progress, leave=False)
    for i, layer in enumerate(layers):
        names = {}
        arrays = device_arrays(layer)
        for field, dtype in ARRAY_FIELDS.items():
            if field not in arrays:
                continue
            arr = np.asarray(arrays[field])
            name = f"bs_model_l{i}_{field}"
            names[field] = name
            parts.append(f"/* layer {i} ({layer.source_op}, operator {layer.source_index}): {field} */")
            parts.append(f"static const {C_TYPES[dtype]} {name}[{max(arr.size, 1)}] BS_MODEL_ALIGN4 = {{")
            parts.append(c_array_body(arr.astype(dtype)))
            parts.append("};")
        array_names.append(names)
    parts.append("")
    parts.append(f"static const bs_nn_tensor bs_model_tensors[{len(graph.tensors)}] = {{")
    for t in graph.tensors:
        parts.append(f"    {{{t.offset}u, {t.h}, {t.w}, {t.c}, {t.zero_point}}}, /* {c_comment(t.name)} */")
    parts.append("};")
    parts.append("")
    parts.append(f"static const bs_nn_layer bs_model_layers[{len(graph.layers)}] = {{")
    for i, layer in enumerate(graph.layers):
        fields = [f".op = BS_NN_OP_{layer.op}", f".input = {layer.input}", f".input2 = {layer.input2}",
                  f".output = {layer.output}", f".source_index = {layer.source_index}",
                  f".scratch = {layer.scratch}", f".fused = {int(layer.fused)}"]
        ints = {"dilation_h": 1, "dilation_w": 1, "depth_multiplier": 1, **layer.ints}
        fields += [f".{k} = {int(ints[k])}" for k in INT_FIELDS if k in ints]
        fields += [f".{k} = {v}" for k, v in array_names[i].items()]
        parts.append(f"    {{ /* {i}: {layer.source_op} */")
        parts.append("        " + ",\n        ".join(fields))
        parts.append("    },")
    parts.append("};")
    parts.append("")
    parts += ["const bs_nn_graph bs_model_graph = {",
              f"    .version = {GRAPH_VERSION},",
              "    .arena_bytes = BS_MODEL_ARENA_BYTES,",
              f"    .num_tensors = {len(graph.tensors)},",
              "    .tensors = bs_model_tensors,",
              f"    .num_layers = {len(graph.layers)},",
              "    .layers = bs_model_layers,",
              f"    .input_tensor = {graph.input_tensor},",
              f"    .output_tensor = {graph.output_tensor},",
              "};", ""]
    return "\n".join(parts)


def tflite_c(data: bytes, sha256: str, inputs) -> str:
    return "\n".join([
        banner("bs_model_tflite.c", inputs), '#include "bs_model.h"', "",
        "#if defined(__GNUC__)", "#define BS_MODEL_ALIGN16 __attribute__((aligned(16)))", "#else",
        "#error \"bs_model_tflite.c needs a way to align the flatbuffer to 16 bytes on this compiler\"", "#endif", "",
        f"static const uint8_t bs_model_tflite[{len(data)}] BS_MODEL_ALIGN16 = {{",
        hex_bytes_body(data),
        "};", "",
        "const uint8_t *bs_model_tflite_data(void) { return bs_model_tflite; }",
        "uint32_t bs_model_tflite_len(void) { return (uint32_t)sizeof bs_model_tflite; }",
        f"const char *bs_model_tflite_sha256(void) {{ return {c_string(sha256)}; }}", ""])
