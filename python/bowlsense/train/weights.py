"""Where the teacher's pretrained weights come from, and loaders for each form they come in.

    --yamnet SOURCE  or  $BOWLSENSE_YAMNET  or  ../shared/yamnet (when present)

SOURCE is one of
  (a) a YAMNet TFLite file (int8 or float; int8 weights are dequantized with their per-channel scales),
      or a folder holding yamnet_int8_logmel_in.tflite;
  (b) a TF Hub handle or a SavedModel folder, loaded with tensorflow_hub (offline it loads a local path,
      or a handle whose SavedModel is cached in $TFHUB_CACHE_DIR/<sha1 of the handle>/);
  (c) Google's yamnet.h5 Keras weights file.
Each loader returns folded float32 weights (yamnet.YamnetWeights) and checks them against YAMNet's
architecture, so a file of the wrong kind or shape stops with a message naming the problem.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from .. import paths
from .yamnet import ConvSpec, YamnetWeights, conv_specs

ENV_VAR = "BOWLSENSE_YAMNET"
CORAL_TFLITE = "yamnet_int8_logmel_in.tflite"
BATCHNORM_EPSILON = 1e-4  # YAMNet's params.py

HOW_TO = (
    "provide YAMNet weights with --yamnet SOURCE or the BOWLSENSE_YAMNET environment variable, where SOURCE "
    "is a YAMNet .tflite file (e.g. ../shared/yamnet/yamnet_int8_logmel_in.tflite), Google's yamnet.h5, "
    "a SavedModel folder, or a TF Hub handle cached in $TFHUB_CACHE_DIR"
)


class YamnetWeightsError(RuntimeError):
    """Weights missing, unreachable, or not YAMNet's."""


def resolve_source(option: str | None = None) -> str:
    """The weights source to use: the option, else $BOWLSENSE_YAMNET, else ../shared/yamnet's TFLite file."""
    source = option or os.environ.get(ENV_VAR)
    if source:
        return source
    default = paths.shared_yamnet_dir() / CORAL_TFLITE
    if default.exists():
        return str(default)
    raise YamnetWeightsError(f"no YAMNet weights found (looked for {default}): {HOW_TO}")


CLASS_MAP = "yamnet_class_map.csv"


def class_names(source: str | None = None) -> list[str] | None:
    """YAMNet's 521 AudioSet class names from yamnet_class_map.csv beside the weights (or in
    ../shared/yamnet); None when there is no such file."""
    try:
        path = pathlib.Path(resolve_source(source)).expanduser()
    except YamnetWeightsError:
        return None
    for folder in (path if path.is_dir() else path.parent, paths.shared_yamnet_dir()):
        if (folder / CLASS_MAP).is_file():
            from .yamnet import load_class_names
            return load_class_names(folder / CLASS_MAP)
    return None


def load(source: str | None = None) -> YamnetWeights:
    """Load folded YAMNet weights from any supported source (see the module doc)."""
    source = resolve_source(source)
    path = pathlib.Path(source).expanduser()
    is_handle = "://" in source
    if not is_handle and not path.exists():
        raise YamnetWeightsError(f"YAMNet weights {source}: no such file or folder; {HOW_TO}")
    if is_handle or (path / "saved_model.pb").exists():
        return load_hub(source)
    if path.is_dir():
        if (path / CORAL_TFLITE).exists():
            return load_tflite(path / CORAL_TFLITE)
        raise YamnetWeightsError(
            f"YAMNet weights {source}: a folder without saved_model.pb or {CORAL_TFLITE}; {HOW_TO}")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return load_tflite(path)
    if suffix in (".h5", ".hdf5", ".keras"):
        return load_h5(path)
    raise YamnetWeightsError(f"YAMNet weights {source}: unknown kind of file ({suffix or 'no suffix'}); {HOW_TO}")


def _checked(weights: YamnetWeights) -> YamnetWeights:
    try:
        weights.check()
    except ValueError as e:
        raise YamnetWeightsError(f"{e}; {HOW_TO}") from None
    return weights


# -- (a) TFLite ------------------------------------------------------------------------------------------

def _dequantize(interp, detail) -> np.ndarray:
    data = interp.get_tensor(detail["index"])
    q = detail["quantization_parameters"]
    scales = np.asarray(q["scales"], dtype=np.float64)
    if data.dtype in (np.float32, np.float16, np.float64) or scales.size == 0:
        return np.asarray(data, dtype=np.float32)
    zps = np.asarray(q["zero_points"], dtype=np.float64)
    shape = [1] * data.ndim
    if scales.size > 1:
        shape[q["quantized_dimension"]] = scales.size
    return ((data.astype(np.float64) - zps.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


def load_tflite(path) -> YamnetWeights:
    """Dequantize a YAMNet TFLite file's convolution and classifier weights (batch norm is folded there).

    The layers are found by op sequence (CONV_2D, 13 x (DEPTHWISE_CONV_2D, CONV_2D), FULLY_CONNECTED), so
    any YAMNet conversion works, whatever its tensor names and whatever front end ops come before."""
    import warnings

    import tensorflow as tf
    path = pathlib.Path(path)
    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore", UserWarning)
            interp = tf.lite.Interpreter(
                model_path=str(path), experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
        ops = interp._get_ops_details()
    except Exception as e:  # the TFLite runtime raises bare RuntimeError/ValueError on a bad flatbuffer
        raise YamnetWeightsError(f"{path}: not a readable TFLite file ({e}); {HOW_TO}") from None
    details = {d["index"]: d for d in interp.get_tensor_details()}
    wanted = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    layer_ops = [op for op in ops if op["op_name"] in wanted]
    specs = conv_specs()
    expected = [{"conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D", "pointwise": "CONV_2D",
                 "dense": "FULLY_CONNECTED"}[s.kind] for s in specs]
    found = [op["op_name"] for op in layer_ops]
    if found != expected:
        raise YamnetWeightsError(
            f"{path}: not a YAMNet network: expected {len(expected)} layers (CONV_2D, 13 x DEPTHWISE_CONV_2D + "
            f"CONV_2D, FULLY_CONNECTED), found {len(found)}: {found[:6]}...; {HOW_TO}")
    kernels, biases = {}, {}
    relu6 = False
    for spec, op in zip(specs, layer_ops):
        w = _dequantize(interp, details[op["inputs"][1]])
        b = _dequantize(interp, details[op["inputs"][2]]) if len(op["inputs"]) > 2 and op["inputs"][2] >= 0 \
            else np.zeros(w.shape[0] if spec.kind != "depthwise" else w.shape[-1], np.float32)
        kernels[spec.name] = _tflite_to_keras(spec, w, path)
        biases[spec.name] = b
        out = details[op["outputs"][0]]
        relu6 |= "relu6" in out["name"].lower() or _clamped_at_six(out)
    return _checked(YamnetWeights(kernels, biases, "relu6" if relu6 else "relu", f"{path}"))


def _clamped_at_six(detail) -> bool:
    """An int8 activation whose range is exactly [0, 6] comes from a fused ReLU6."""
    q = detail["quantization_parameters"]
    if detail["dtype"] != np.int8 or np.size(q["scales"]) != 1:
        return False
    scale, zp = float(q["scales"][0]), int(q["zero_points"][0])
    return zp == -128 and abs(scale * 255 - 6.0) < 1e-3


def _tflite_to_keras(spec: ConvSpec, w: np.ndarray, path) -> np.ndarray:
    """TFLite layouts (OHWI conv, 1HWC depthwise, OI dense) -> Keras (HWIO, HWC1, IO)."""
    if spec.kind in ("conv", "pointwise") and w.ndim == 4:
        return np.transpose(w, (1, 2, 3, 0))
    if spec.kind == "depthwise" and w.ndim == 4:
        return np.transpose(w, (1, 2, 3, 0))
    if spec.kind == "dense" and w.ndim == 2:
        return np.transpose(w, (1, 0))
    raise YamnetWeightsError(f"{path}: YAMNet layer {spec.yamnet_name} has weights of shape {w.shape}; {HOW_TO}")


# -- (b) and (c): unfolded weights with YAMNet's variable names -----------------------------------------

def _fold(named: dict[str, np.ndarray], source: str) -> YamnetWeights:
    """Fold YAMNet's batch norms (center, no scale, eps 1e-4) into its bias-free convolutions.

    `named` maps variable paths (anything ending in e.g. 'layer2/depthwise_conv/depthwise_kernel') to arrays."""
    clean = {k.split(":")[0].strip("/"): v for k, v in named.items()}

    def find(suffix: str, required: bool = True):
        hits = [v for k, v in clean.items() if k == suffix or k.endswith("/" + suffix)]
        if len(hits) > 1:
            raise YamnetWeightsError(f"{source}: {len(hits)} variables named {suffix}; expected one")
        if not hits:
            if required:
                raise YamnetWeightsError(f"{source}: no variable {suffix}: not YAMNet's weights; {HOW_TO}")
            return None
        return np.asarray(hits[0], dtype=np.float64)

    kernels, biases = {}, {}
    for spec in conv_specs():
        if spec.kind == "dense":
            kernels[spec.name] = find("logits/kernel").astype(np.float32)
            biases[spec.name] = find("logits/bias").astype(np.float32)
            continue
        kernel = find(spec.yamnet_name + ("/depthwise_kernel" if spec.kind == "depthwise" else "/kernel"))
        bn = spec.yamnet_name + "/bn/"
        beta, mean, var = find(bn + "beta"), find(bn + "moving_mean"), find(bn + "moving_variance")
        gamma = find(bn + "gamma", required=False)
        if gamma is None:
            gamma = np.ones_like(beta)
        if kernel.ndim != 4 or not (beta.shape == mean.shape == var.shape == gamma.shape):
            raise YamnetWeightsError(f"{source}: YAMNet layer {spec.yamnet_name} has inconsistent shapes "
                                     f"(kernel {kernel.shape}, batch norm {beta.shape}); {HOW_TO}")
        factor = gamma / np.sqrt(var + BATCHNORM_EPSILON)
        # Output channels: the last axis of a conv kernel (HWIO), the input-channel axis of a depthwise one.
        if spec.kind == "depthwise":
            kernel = kernel * factor[None, None, :, None] if kernel.shape[2] == factor.size else kernel
        else:
            kernel = kernel * factor[None, None, None, :] if kernel.shape[3] == factor.size else kernel
        kernels[spec.name] = kernel.astype(np.float32)
        biases[spec.name] = (beta - mean * factor).astype(np.float32)
    return _checked(YamnetWeights(kernels, biases, "relu", source))


def load_h5(path) -> YamnetWeights:
    """Google's yamnet.h5 (Keras 2 weights: groups named like layer1/conv/layer1/conv/kernel:0)."""
    import h5py
    path = pathlib.Path(path)
    named = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    named[name] = obj[()]
            f.visititems(visit)
    except OSError as e:
        raise YamnetWeightsError(f"{path}: not a readable HDF5 weights file ({e}); {HOW_TO}") from None
    if not named:
        raise YamnetWeightsError(f"{path}: an HDF5 file with no weights in it; {HOW_TO}")
    return _fold(named, str(path))


def load_hub(handle: str) -> YamnetWeights:
    """A TF Hub handle or SavedModel folder, through tensorflow_hub (offline: local path or $TFHUB_CACHE_DIR)."""
    import tensorflow_hub as hub
    try:
        obj = hub.load(handle)
    except Exception as e:  # hub raises many kinds (network, parse, missing cache)
        cache = os.environ.get("TFHUB_CACHE_DIR", "(TFHUB_CACHE_DIR not set)")
        raise YamnetWeightsError(
            f"YAMNet weights {handle}: tensorflow_hub could not load it ({type(e).__name__}: {str(e)[:200]}); "
            f"offline, a handle must be cached under {cache}; {HOW_TO}") from None
    variables = _all_variables(obj)
    if not variables:
        raise YamnetWeightsError(f"YAMNet weights {handle}: the SavedModel exposes no variables; {HOW_TO}")
    return _fold({v.name: v.numpy() for v in variables}, handle)


def _all_variables(obj) -> list:
    """Every tf.Variable reachable from a loaded SavedModel object (tf.Module exports have no .variables)."""
    import tensorflow as tf
    found = {}
    for v in list(getattr(obj, "variables", None) or []):
        found[id(v)] = v
    for child in tf.train.TrackableView(obj).descendants():
        if isinstance(child, tf.Variable):
            found[id(child)] = child
    return list(found.values())
