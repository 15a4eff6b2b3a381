"""Excerpts: a recipe fitted into a fixed number of samples, so one example is one model window.

    {"op": "place", "length": n, "position": u, "input": <recipe>}

The input is placed into `length` samples at the recorded position (mixing.place): a shorter input sits
at that offset in digital silence, a longer one is cropped starting there. The position is a fraction in
[0, 1) (mixing.offset_from_position), so it can be drawn before the input's length is known.

Training uses it to make one-window examples from clips of any length: a word placed somewhere in a
0.975 s window rather than always centred, one window's worth of a 95 s recording as the noise of a
mixture (whose SNR is then measured over that window, not the whole recording), a short excerpt of a
background clip in silence. Placing cannot add an event, so the labels are the input's labels; cropping
can cut an event out, exactly as cutting a labelled clip into windows can.
"""
from __future__ import annotations

import numpy as np

from .mixing import place, to_int16


def plan_place(recipe: dict, length: int, seed: int) -> dict:
    """A place recipe over `recipe`, its position drawn from `seed`."""
    if int(length) < 1:
        raise ValueError(f"an excerpt needs at least one sample, got length {length}")
    position = float(np.random.default_rng(seed).random())
    return {"op": "place", "seed": int(seed), "length": int(length), "position": position, "input": recipe}


def render_place(recipe: dict, pcm: np.ndarray) -> np.ndarray:
    return to_int16(place(pcm, int(recipe["length"]), float(recipe["position"])))
