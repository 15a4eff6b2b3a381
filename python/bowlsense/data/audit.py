"""`bowlsense data audit`: one self-contained HTML page to listen to and look at every clip.

Each clip shows its label(s), verified state and who verified it, duration, original sample rate, a
log-mel image computed by our C front end (what the model sees; colour scale fixed at -7..+5 nats for
every clip, so loudness compares across clips), and an audio player with the 16 kHz mono audio the
model trains on (FLAC, lossless, first `max_audio_s` seconds). Images and audio are embedded as base64,
so the page opens from disk with no server. A class-balance chart (inline SVG) sits at the top; within
each label, unreadable clips come first, then unverified, rejected and verified ones.

With a scorer (a callable: int16 PCM at 16 kHz -> {label: probability}), each clip also shows the
model's scores, and clips are sorted by disagreement: max over labels of |target - score|, where the
target is 1 for the clip's labels and 0 for the others. The clips a person should listen to first come
first. `model_scorer(model_dir)` builds such a callable from a trained model directory. A model scores
the clips it trained on as their labels, so it can only point at clips it did not learn. Window scores
computed elsewhere, keyed by clip sha256 (`clip_scores`: a cross-validation's held-out scores, each clip
scored by the fold's model that never heard its recording), rank every clip that run validated: by the
same disagreement of the clip's most confident window, ties (a clip's window at 0 or 1 where it should be
the other) broken by the share of its windows on the wrong side of 0.5.
"""
from __future__ import annotations

import base64
import hashlib
import collections
import dataclasses
import html
import io
import os
import pathlib
import struct
import time
import zlib
from typing import Callable, Mapping

import numpy as np

from .audio import AudioError, decode_pcm16, read_bytes
from .dataset import REJECTED, VERIFIED, Clip, Dataset
from .labels import BACKGROUND, events, format_labels

Scorer = Callable[[np.ndarray], Mapping[str, float]]
NATS_RANGE = (-7.0, 5.0)
MAX_IMAGE_WIDTH = 1200  # frames; longer clips are max-pooled in time
WRONG = 0.5  # a score this far from its target (1 for the clip's labels, else 0) is on the wrong side


class ScorerUnavailable(RuntimeError):
    """--model was asked for but the model predictor cannot be used; the message says why."""


def model_scorer(model_dir) -> tuple[Scorer, list[str]]:
    """(scorer, labels) for a trained model directory (model.json + model.tflite), through the
    training engineer's integer predictor (bowlsense.train.predict), imported only when asked for."""
    try:
        from ..train.features import pcm_patches
        from ..train.predict import load_model
    except ImportError as e:
        raise ScorerUnavailable(
            f"--model needs bowlsense.train.predict (load_model) and bowlsense.train.features "
            f"(pcm_patches), which this build cannot import ({e}); run the audit without --model") from None
    manifest, model = load_model(model_dir)

    def score(pcm: np.ndarray) -> dict[str, float]:
        # A clip's score is its most confident window: an event anywhere in the clip counts.
        scores = np.asarray(model(pcm_patches(pcm)))
        if scores.ndim != 2 or len(scores) == 0:
            return {l: 0.0 for l in manifest.labels}
        return {l: float(v) for l, v in zip(manifest.labels, scores.max(axis=0))}

    return score, list(manifest.labels)


# -- PNG without matplotlib per image (hundreds of clips in seconds) -------------------------------

def _colormap() -> np.ndarray:
    try:
        from matplotlib import colormaps
        return (colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    except Exception:  # grey ramp if matplotlib is unavailable
        ramp = np.arange(256, dtype=np.uint8)
        return np.stack([ramp] * 3, axis=1)


def png_bytes(index: np.ndarray, palette: np.ndarray) -> bytes:
    """(h, w) uint8 colour indices + (256, 3) uint8 palette -> indexed-colour PNG. A third of the bytes
    of RGB to compress, which is most of the report's time."""
    h, w = index.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), index.astype(np.uint8)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def spectrogram_png(nats: np.ndarray, lut: np.ndarray) -> bytes:
    """(frames, mel) float nats -> PNG, low frequencies at the bottom, 2 px per mel band."""
    x = np.asarray(nats, dtype=np.float32)
    if len(x) == 0:
        x = np.full((1, nats.shape[1] if nats.ndim == 2 else 64), NATS_RANGE[0], np.float32)
    if len(x) > MAX_IMAGE_WIDTH:
        k = -(-len(x) // MAX_IMAGE_WIDTH)
        pad = (-len(x)) % k
        x = np.concatenate([x, np.full((pad, x.shape[1]), NATS_RANGE[0], np.float32)])
        x = x.reshape(-1, k, x.shape[1]).max(axis=1)
    lo, hi = NATS_RANGE
    idx = np.clip((x - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8).T[::-1]
    return png_bytes(np.repeat(idx, 2, axis=0), lut)


def flac_bytes(pcm: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(pcm, np.int16), 16000, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


# -- page -----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Row:
    clip: Clip
    duration_s: float = 0.0
    rate: int = 0
    error: str = ""
    png: str = ""
    audio: str = ""
    scores: dict | None = None
    disagreement: float = -1.0
    wrong_windows: tuple[int, int] | None = None  # (windows on the wrong side, of), from clip_scores
    note: str = ""
    width: int = 0                # display width in px: 2 px per 10 ms frame, capped


def _disagreement(clip: Clip, scores: Mapping[str, float]) -> float:
    active = set(events(clip.labels))
    return max((abs((1.0 if l in active else 0.0) - float(s)) for l, s in scores.items()), default=0.0)


def _balance_svg(dataset: Dataset) -> str:
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for c in dataset.clips:
        for l in c.labels or ("(none)",):
            counts[l][c.status] += 1
    names = sorted(counts)
    top = max((sum(v.values()) for v in counts.values()), default=1)
    bar_h, gap, left, width = 22, 6, 110, 420
    h = len(names) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" height="{h}" role="img" '
             f'aria-label="clips per label">']
    for i, name in enumerate(names):
        y = i * (bar_h + gap)
        x = left
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end">{html.escape(name)}</text>')
        for status, colour in ((VERIFIED, "#2e7d32"), ("no", "#f9a825"), (REJECTED, "#c62828")):
            n = counts[name][status]
            if n:
                w = max(1.0, width * n / top)
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                             f'<title>{name}: {n} {status}</title></rect>')
                x += w
        v, u, r = counts[name][VERIFIED], counts[name]["no"], counts[name][REJECTED]
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{v} verified, {u} unverified'
                     f'{f", {r} rejected" if r else ""}</text>')
    y = len(names) * (bar_h + gap) + 16
    parts.append(f'<text x="{left}" y="{y}" class="legend"><tspan fill="#2e7d32">■ verified</tspan> '
                 f'<tspan fill="#f9a825">■ unverified</tspan> <tspan fill="#c62828">■ rejected</tspan></text>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%} td,th{padding:6px 8px;border-bottom:1px solid #eee;vertical-align:top;text-align:left}
th{position:sticky;top:0;background:#fafafa}
.path{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;max-width:320px}
.yes{color:#2e7d32;font-weight:600}.no{color:#b26a00;font-weight:600}.rejected{color:#c62828;font-weight:600}
.err{color:#c62828} img{image-rendering:pixelated;height:128px;display:block}
.score{font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}
.hi{background:#ffe0b2}.note{color:#666;font-size:12px} svg text{font-size:12px}
"""


def _row_html(r: Row, labels_order: list[str] | None) -> str:
    c = r.clip
    who = f"<br><span class=note>by {html.escape(c.verified_by)}{' at ' + html.escape(c.verified_at) if c.verified_at else ''}</span>" \
        if c.verified_by else ""
    cells = [
        f"<td>{html.escape(format_labels(c.labels) or '(none)')}</td>",
        f"<td class=path>{html.escape(c.path)}<br><span class=note>{html.escape(c.source)}"
        f"{' - ' + html.escape(c.note) if c.note else ''}</span></td>",
        f"<td><span class={html.escape(c.status)}>{html.escape(c.status)}</span>{who}</td>",
        f"<td>{r.duration_s:.2f} s<br><span class=note>{r.rate / 1000:g} kHz</span></td>" if not r.error
        else "<td></td>",
    ]
    if r.error:
        cells.append(f"<td colspan=2 class=err>{html.escape(r.error)}</td>")
    else:
        cells.append(f'<td><img alt="log-mel of {html.escape(c.path)}" width="{r.width}" src="data:image/png;base64,{r.png}"></td>')
        cells.append(f'<td><audio controls preload="none" src="data:audio/flac;base64,{r.audio}"></audio>'
                     f'{r.note}</td>')
    if labels_order is not None:
        if r.scores:
            active = set(events(c.labels))
            lines = []
            for l in labels_order:
                s = r.scores.get(l, 0.0)
                wrong = abs((1.0 if l in active else 0.0) - s) >= WRONG
                lines.append(f'<span class="{"hi" if wrong else ""}">{html.escape(l)} {s:.2f}</span>')
            wrong = (f"<br>wrong in {r.wrong_windows[0]} of {r.wrong_windows[1]} windows" if r.wrong_windows
                     else "")
            cells.append(f"<td class=score>{'<br>'.join(lines)}<br><b>disagreement {r.disagreement:.2f}</b>"
                         f"{wrong}</td>")
        else:
            cells.append("<td><span class=note>no score</span></td>")
    return "<tr>" + "".join(cells) + "</tr>"


def write_audit(root: str | os.PathLike, out: str | os.PathLike, scorer: Scorer | None = None,
                model_labels: list[str] | None = None, model_name: str = "", max_audio_s: float = 10.0,
                progress: bool = False, clip_scores: Mapping[str, np.ndarray] | None = None) -> dict:
    """Write the report; returns a few numbers (clips, errors, scored clips, seconds) for the caller to print.
    clip_scores ({clip sha256: (windows, model_labels) scores}) stands in for a scorer; clips without an
    entry go last."""
    if clip_scores is not None and not model_labels:
        raise ValueError("clip_scores needs model_labels: the label of each score column")
    from ..frontend import Frontend

    t0 = time.perf_counter()
    ds = Dataset.load(root)
    fe = Frontend()
    lut = _colormap()
    rows: list[Row] = []
    clips = ds.clips
    if progress:
        from tqdm import tqdm
        clips = tqdm(clips, desc="audit", unit="clip")
    max_samples = int(max_audio_s * 16000)
    for clip in clips:
        row = Row(clip)
        try:
            data = read_bytes(clip.abspath)
            if clip.sha256 and hashlib.sha256(data).hexdigest() != clip.sha256:
                raise AudioError(clip.abspath, "sha256 mismatch: the file changed after it was labelled")
            pcm, info = decode_pcm16(clip.abspath, data)
        except AudioError as e:
            row.error = e.reason
            rows.append(row)
            continue
        row.duration_s, row.rate = len(pcm) / 16000, info.sample_rate
        frames = fe.process(pcm)
        row.width = int(min(max(2 * len(frames), 40), 1000))
        row.png = base64.b64encode(spectrogram_png(fe.to_float(frames), lut)).decode()
        row.audio = base64.b64encode(flac_bytes(pcm[:max_samples])).decode()
        if len(pcm) > max_samples:
            row.note = f"<br><span class=note>first {max_audio_s:g} s of {row.duration_s:.0f} s</span>"
        if scorer is not None:
            row.scores = {k: float(v) for k, v in scorer(pcm).items()}
        elif clip_scores is not None and clip.sha256 in clip_scores:
            windows = np.asarray(clip_scores[clip.sha256], np.float64)
            row.scores = dict(zip(model_labels, windows.max(axis=0).tolist()))
            active = set(events(clip.labels))
            target = np.array([1.0 if l in active else 0.0 for l in model_labels])
            row.wrong_windows = (int((np.abs(windows - target) >= WRONG).any(axis=1).sum()), len(windows))
        if row.scores is not None:
            row.disagreement = _disagreement(clip, row.scores)
        rows.append(row)

    errors = sum(1 for r in rows if r.error)
    gate = ds.verified()
    head = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>bowlsense audit: "
            f"{html.escape(str(ds.root))}</title><style>{CSS}</style></head><body>",
            f"<h1>Audit of {html.escape(str(ds.root))}</h1>",
            f"<p>{len(rows)} clips: {len(gate.clips)} verified, {gate.left_out} not verified "
            f"(training uses verified clips only){f', <span class=err>{errors} unreadable</span>' if errors else ''}."
            f" Spectrograms: bowlsense front end, log-mel 64 bands 125-7500 Hz, colour fixed at "
            f"{NATS_RANGE[0]:g}..{NATS_RANGE[1]:g} nats.</p>",
            _balance_svg(ds)]
    header = "<tr><th>label</th><th>file</th><th>verified</th><th>length</th><th>log-mel</th><th>audio</th>"
    body: list[str] = []
    scored = sum(1 for r in rows if r.scores is not None)
    if scorer is not None or clip_scores is not None:
        labels_order = list(model_labels) if model_labels else sorted({k for r in rows if r.scores for k in r.scores})
        rows.sort(key=lambda r: (-r.disagreement, -(r.wrong_windows[0] / r.wrong_windows[1]) if r.wrong_windows
                                 else 0.0, r.clip.path))
        body.append(f"<h2>Sorted by disagreement with model {html.escape(model_name)}: listen to the top first</h2>")
        if scored < len(rows):
            body.append(f"<p>{len(rows) - scored} clips have no score (listed last): unreadable, or not "
                        f"validated by the run the scores come from.</p>")
        body.append("<table>" + header + "<th>scores</th></tr>")
        body.extend(_row_html(r, labels_order) for r in rows)
        body.append("</table>")
    else:
        by_label: dict[str, list[Row]] = collections.defaultdict(list)
        for r in rows:
            by_label[format_labels(r.clip.labels) or "(none)"].append(r)
        order = sorted(by_label, key=lambda k: (k == BACKGROUND, k))
        body.append("<p>" + " · ".join(f'<a href="#l-{html.escape(k)}">{html.escape(k)} ({len(by_label[k])})</a>'
                                        for k in order) + "</p>")
        for k in order:
            body.append(f'<h2 id="l-{html.escape(k)}">{html.escape(k)}</h2><table>{header}</tr>')
            # Unverified clips first: they are the ones waiting for a person. Unreadable ones before all.
            rank = {"no": 1, REJECTED: 2, VERIFIED: 3}
            body.extend(_row_html(r, None) for r in sorted(
                by_label[k], key=lambda r: (0 if r.error else rank.get(r.clip.status, 1), r.clip.path)))
            body.append("</table>")
    page = "\n".join(head + body + ["</body></html>\n"])
    from ..manifest import write_atomic
    write_atomic(pathlib.Path(out), page)
    return {"clips": len(rows), "errors": errors, "scored": scored, "seconds": time.perf_counter() - t0,
            "bytes": len(page.encode())}
