"""A small epoch loop shared by the teacher fine-tune and the student distillation: a tqdm bar per
epoch, fixed seeds, and a checkpoint after every epoch so an interrupted run resumes where it stopped.

A checkpoint holds everything the next epoch depends on, so a resumed run trains the same weights as one
that was never interrupted: the model's weights with the optimizer's state (Adam's moments and step count:
Keras writes them into the same .h5 once the optimizer is built), the random state of its dropout layers
(rng.npz), and the weight average so far (average.npz). Each epoch's batch order and augmentation draws
come from its own seed (seed, epoch), so they need no saving."""
from __future__ import annotations

import json
import pathlib

import numpy as np


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file and what to do."""


def set_seed(seed: int) -> None:
    import keras
    keras.utils.set_random_seed(seed)


def _rng_variables(model) -> list:
    """The state of each dropout layer's random draws (Keras SeedGenerator), in the model's own order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _load_state(folder: pathlib.Path, model, epochs: int) -> tuple[int, dict]:
    state_path, weights_path, rng_path = folder / "state.json", folder / "model.weights.h5", folder / "rng.npz"
    if not state_path.exists():
        return 0, {}
    try:
        state = json.loads(state_path.read_text())
        # The learning-rate schedule and the weight average span the whole run: a checkpoint of a run
        # planned for another number of epochs cannot be continued into this one. (Checkpoints written
        # before the count was recorded do not say.)
        if state.get("epochs", epochs) != epochs:
            raise CheckpointError(
                f"checkpoint {folder} belongs to a run of {state['epochs']} epochs, this one asks for {epochs}; "
                f"train in another --work folder, or delete that folder (or run again with --restart)")
        if not model.optimizer.built:  # an unbuilt optimizer would skip the saved moments, with a warning
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(weights_path))
        rng_state = _rng_variables(model)
        if rng_state and rng_path.exists():  # checkpoints written before rng.npz resume with fresh draws
            with np.load(rng_path) as z:
                if len(z.files) != len(rng_state):
                    raise ValueError(f"{rng_path.name} holds {len(z.files)} random states, the model has "
                                     f"{len(rng_state)}")
                for i, v in enumerate(rng_state):
                    v.assign(z[f"s{i}"])
        return int(state["epoch"]), dict(state["history"])
    except CheckpointError:
        raise
    except Exception as e:  # json, h5py, numpy and Keras all raise their own kinds on a damaged file
        raise CheckpointError(
            f"checkpoint {folder} is corrupt or from a different model ({type(e).__name__}: {str(e)[:160]}); "
            f"delete that folder (or run again with --restart) to train this stage from scratch") from None


def _save_state(folder: pathlib.Path, model, epoch: int, epochs: int, history: dict) -> None:
    from ..manifest import write_atomic
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp.weights.h5"
    model.save_weights(str(tmp))  # with the optimizer's variables
    tmp.replace(folder / "model.weights.h5")
    _save_npz(folder / "rng.npz", **{f"s{i}": np.asarray(v.numpy()) for i, v in enumerate(_rng_variables(model))})
    # state.json is written last: it only ever names an epoch whose weights are complete on disk.
    write_atomic(folder / "state.json", json.dumps({"epoch": epoch, "epochs": epochs, "history": history}) + "\n")


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // batch_size))


def batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int, augment, rng, prefetch: bool):
    """One epoch's training batches in `order`, each through augment(x, y, rng) when given.

    With prefetch, batch k + 1 is made in a worker thread while the caller trains on batch k. The live
    teacher's pass (distill.live_teacher_batches) is about half of a student step, and made in turn the two
    kept 2 cores only 88% busy (`make model`'s student: 1,506 s CPU in 851 s); TensorFlow releases the GIL
    while either runs, so they overlap. The batches are the same either way: only the one worker draws from rng, in step order, and
    nothing it computes depends on the model being trained."""
    steps = steps_per_epoch(len(x), batch_size)

    def make(step: int):
        idx = np.sort(order[step * batch_size:(step + 1) * batch_size])
        return (x[idx], y[idx]) if augment is None else augment(x[idx], y[idx], rng)

    if augment is None or not prefetch:
        for step in range(steps):
            yield make(step)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="next-batch") as worker:
        pending = worker.submit(make, 0)
        for step in range(steps):
            batch = pending.result()
            if step + 1 < steps:
                pending = worker.submit(make, step + 1)
            yield batch


def fit(model, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, learning_rate: float,
        checkpoint: pathlib.Path, desc: str, seed: int, val: tuple[np.ndarray, np.ndarray] | None = None,
        loss=None, augment=None, prefetch: bool = True) -> dict:
    """Train `model` (compiled here with Adam + binary cross-entropy) on x -> y; resumes from `checkpoint`.

    augment(x_batch, y_batch, rng) -> (x_batch, y_batch), when given, transforms each training batch (fresh
    draws every epoch); it may change the targets with the inputs (distill's live teacher scores what it made).
    prefetch: make the next batch while this one trains (see `batches`); False makes each in turn.
    Returns the history: per-epoch loss (and val_loss when `val` is given)."""
    import keras
    from tqdm import tqdm

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss or keras.losses.BinaryCrossentropy())
    start, history = _load_state(checkpoint, model, epochs)
    history = history or {"loss": [], "val_loss": []}
    # The weights returned are the average over the second half of the epochs (stochastic weight
    # averaging): one epoch's weights swing with the last batches, their average does not.
    average_from = epochs // 2
    average, count = _load_average(checkpoint, start, average_from)
    if start >= epochs:
        print(f"{desc}: finished in an earlier run ({epochs} epochs, checkpoint {checkpoint}); reusing it", flush=True)
    elif start > 0:
        print(f"{desc}: resuming at epoch {start + 1}/{epochs} from checkpoint {checkpoint}", flush=True)
    if start >= epochs:
        if average is not None:
            model.set_weights(average)
        return history
    n = len(x)
    steps = steps_per_epoch(n, batch_size)
    for epoch in range(start, epochs):
        # Cosine decay by epoch, set explicitly so a resumed run continues on the same schedule.
        model.optimizer.learning_rate.assign(learning_rate * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))
        rng = np.random.default_rng(seed * 1000 + epoch)
        order = rng.permutation(n)
        losses = []
        bar = tqdm(batches(x, y, order, batch_size, augment, rng, prefetch), total=steps,
                   desc=f"{desc} epoch {epoch + 1}/{epochs}", unit="batch", leave=False, mininterval=2.0)
        for xb, yb in bar:
            out = model.train_on_batch(xb, yb)
            losses.append(float(out if np.isscalar(out) else np.ravel(out)[0]))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        history["loss"].append(float(np.mean(losses)))
        if val is not None and len(val[0]):
            # Validation scores only: a model may output more columns after them (distill's embedding probe).
            pred = model.predict(val[0], batch_size=256, verbose=0)[:, :val[1].shape[1]]
            p = np.clip(pred, 1e-6, 1 - 1e-6)
            history["val_loss"].append(float(-np.mean(val[1] * np.log(p) + (1 - val[1]) * np.log(1 - p))))
        if epoch >= average_from:
            current = model.get_weights()
            average = current if average is None else [(a * count + w) / (count + 1) for a, w in zip(average, current)]
            count += 1
            _save_average(checkpoint, average, count)
        _save_state(checkpoint, model, epoch + 1, epochs, history)
        tail = f", val loss {history['val_loss'][-1]:.4f}" if history["val_loss"] else ""
        print(f"{desc} epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}{tail}", flush=True)
    if average is not None:
        model.set_weights(average)
    return history


def _load_average(folder: pathlib.Path, epoch: int, average_from: int):
    """The running weight average saved with epoch `epoch`, and how many epochs it holds."""
    expected = max(0, epoch - average_from)
    path = folder / "average.npz"
    if expected == 0:
        return None, 0
    try:
        with np.load(path) as z:
            count = int(z["count"])
            weights = [z[f"w{i}"] for i in range(len(z.files) - 1)]
        if count != expected:
            raise ValueError(f"it averages {count} epochs, state.json implies {expected}")
        return weights, count
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {folder}: weight average {path.name} is corrupt or missing ({type(e).__name__}: "
            f"{str(e)[:120]}); delete that folder (or run again with --restart) to train this stage from scratch"
        ) from None


def _save_average(folder: pathlib.Path, average: list, count: int) -> None:
    _save_npz(folder / "average.npz", count=np.array(count), **{f"w{i}": w for i, w in enumerate(average)})


def _save_npz(path: pathlib.Path, **arrays) -> None:
    """np.savez through manifest.write_atomic: a checkpoint file is whole or absent, never half written."""
    import io

    from ..manifest import write_atomic
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(path, buf.getvalue())
