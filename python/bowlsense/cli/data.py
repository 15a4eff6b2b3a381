"""Datasets you can trust: import, check, verify, audit, and a synthetic demo set.

A dataset is a folder with labels.csv (path,label,verified,sha256,source,license,note[,verified_by,
verified_at,group]); `label` holds one or more of eating, drinking, bowl, speech (';'-separated), or
"background" for no event. Training reads verified clips only and says how many it left out.

examples:
  bowlsense data import ~/recordings data/mine        # ~/recordings/<label>/*.wav, all unverified
  bowlsense data check data/mine                      # non-zero exit on any error
  bowlsense data audit data/mine --out audit.html     # listen and look before you verify
  bowlsense data verify data/mine audio/eating/a.wav audio/eating/b.wav --by alice
  bowlsense data verify data/mine audio/bowl/c.wav --label "bowl;eating" --by alice
  bowlsense data verify data/mine audio/bowl/d.wav --reject --by alice
  bowlsense data audit data/mine --out audit.html --model models/default   # model disagreement first
  bowlsense data audit data/mine --out audit.html --heldout models/crossval # held-out disagreement first
  bowlsense data demo data/demo                       # synthetic set for a machine with no data
"""
from __future__ import annotations

import argparse
import sys

HELP = "import, check, verify and audit labelled clips; make a synthetic demo set"


def _labels_arg(value: str | None):
    from ..data.labels import PRODUCT_LABELS, parse_labels

    if value is None:
        return PRODUCT_LABELS
    labels = parse_labels(value.replace(",", ";"))
    return labels if "background" in labels else labels + ("background",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("import", formatter_class=fmt, help="turn SRC/<label>/*.wav folders into a dataset",
                       description="Copy SRC/<label>/ audio (wav, flac, ogg, mp3; '+' in a folder name joins "
                       "labels, e.g. eating+speech) into OUT/audio/<label>/ and list it in OUT/labels.csv as "
                       "unverified with its sha256. Importing again adds only new files.")
    p.add_argument("src", metavar="SRC", help="folder of <label>/ folders")
    p.add_argument("out", metavar="OUT", help="dataset folder to create or extend")
    p.add_argument("--labels", help="allowed labels, comma-separated (default: the product's five)")
    p.set_defaults(data_func=_import)

    p = sub.add_parser("check", formatter_class=fmt, help="find missing, changed, broken or mislabelled clips",
                       description="Check every row of DIR/labels.csv: missing files, sha256 mismatches, "
                       "unreadable or corrupt audio, empty or too short clips, unknown labels, the same "
                       "audio under conflicting labels; then a per-label summary. Exit code 1 on errors.")
    p.add_argument("dir", metavar="DIR", help="dataset folder")
    p.add_argument("--labels", help="allowed labels, comma-separated (default: the product's five)")
    p.add_argument("--quiet", action="store_true", help="no warnings or progress bar, errors only")
    p.set_defaults(data_func=_check)

    p = sub.add_parser("verify", formatter_class=fmt, help="record that a person checked clips (or rejected them)",
                       description="Mark clips verified (or --reject them), recording who, when and the "
                       "sha256 of the bytes they heard. labels.csv is rewritten atomically; if any PATH is "
                       "wrong, nothing changes.")
    p.add_argument("dir", metavar="DIR", help="dataset folder")
    p.add_argument("paths", metavar="PATH", nargs="+", help="clips, relative to DIR (or absolute)")
    p.add_argument("--label", help="set the label(s) too, e.g. speech or 'eating;speech'")
    p.add_argument("--by", metavar="NAME", help="who verified (default: your login name)")
    p.add_argument("--reject", action="store_true", help="record that these clips must not be used")
    p.add_argument("--update-sha", action="store_true",
                   help="accept a file whose bytes changed since it was labelled (you listened to the new one)")
    p.add_argument("--labels", help="allowed labels, comma-separated (default: the product's five)")
    p.set_defaults(data_func=_verify)

    p = sub.add_parser("audit", formatter_class=fmt, help="write one HTML page to listen to and look at every clip",
                       description="A self-contained HTML report: per clip a log-mel image from our front end, "
                       "an audio player, duration, sample rate and who verified it; a class-balance chart. "
                       "With --model, the model's scores, clips it disagrees with most first. A model scores "
                       "the clips it trained on as their labels; --heldout RUN ranks every clip by the scores of "
                       "a `bowlsense crossval` run instead, each clip scored by the fold model that never "
                       "heard its recording.")
    p.add_argument("dir", metavar="DIR", help="dataset folder")
    p.add_argument("--out", required=True, metavar="REPORT.html", help="where to write the page")
    scores = p.add_mutually_exclusive_group()
    scores.add_argument("--model", metavar="MODEL_DIR", help="trained model folder (model.json + model.tflite)")
    scores.add_argument("--heldout", metavar="RUN",
                        help="output folder of `bowlsense crossval` on this dataset: its int8 student's held-out "
                             "scores (a clip's most confident window), read from RUN/scores.npz; clips the run "
                             "did not validate (unverified ones among them: use --model for those) come last")
    p.add_argument("--max-audio-s", type=float, default=10.0, help="seconds of audio embedded per clip (default 10)")
    p.set_defaults(data_func=_audit)

    p = sub.add_parser("demo", formatter_class=fmt, help="write a small synthetic dataset (a demo, not real audio)",
                       description="Procedural eating, drinking, bowl, background and speech (espeak-ng when "
                       "installed, else formant babble) clips, deterministic for a seed, marked synthetic.")
    p.add_argument("out", metavar="OUT", help="folder to write")
    p.add_argument("--per-class", type=int, default=30, help="clips per class (default 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-espeak", action="store_true", help="formant babble for speech even if espeak-ng exists")
    p.set_defaults(data_func=_demo)
    parser.set_defaults(data_parser=parser)


def run(args: argparse.Namespace) -> int:
    func = getattr(args, "data_func", None)
    if func is None:
        args.data_parser.print_help()
        return 2
    from ..data.audio import AudioError
    from ..data.dataset import DatasetError
    try:
        return func(args)
    except (DatasetError, AudioError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _import(args) -> int:
    from ..data.importer import import_folders

    result = import_folders(args.src, args.out, known_labels=_labels_arg(args.labels), progress=sys.stderr.isatty())
    for w in result.warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    for p in result.problems:
        print(f"ERROR: {p}", file=sys.stderr)
    print(f"imported {len(result.added)} clips into {args.out} (unverified), {result.already} already listed, "
          f"{len(result.problems)} problems")
    if result.added:
        print(f"next: bowlsense data audit {args.out} --out audit.html, then bowlsense data verify {args.out} ...")
    return 1 if result.problems else 0


def _check(args) -> int:
    from ..data.check import check_dataset

    report = check_dataset(args.dir, known_labels=_labels_arg(args.labels),
                           progress=sys.stderr.isatty() and not args.quiet)
    for p in report.problems:
        if p.severity == "error" or not args.quiet:
            print(p, file=sys.stderr)
    if not args.quiet:
        print(report.summary_table())
    print(f"{report.clips} clips, {len(report.errors)} errors, {len(report.warnings)} warnings")
    return 0 if report.ok else 1


def _verify(args) -> int:
    from ..data.verify import VerifyError, set_verdict

    try:
        changed = set_verdict(args.dir, args.paths, by=args.by, label=args.label, reject=args.reject,
                              update_sha=args.update_sha, known_labels=_labels_arg(args.labels), log=print)
    except VerifyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{len(changed)} clips {'rejected' if args.reject else 'verified'}; labels.csv updated")
    return 0


def _audit(args) -> int:
    from ..data.audit import ScorerUnavailable, model_scorer, write_audit

    scorer = labels = None
    if args.model:
        try:
            scorer, labels = model_scorer(args.model)
        except ScorerUnavailable as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {args.model}: cannot load the model: {e}", file=sys.stderr)
            return 1
    clip_scores = None
    if args.heldout:
        from ..data.dataset import Dataset
        from ..train.crossval import BaselineError, heldout_clip_scores
        try:
            clip_scores, labels = heldout_clip_scores(args.heldout)
        except BaselineError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if not {c.sha256 for c in Dataset.load(args.dir).clips} & clip_scores.keys():
            print(f"error: {args.heldout} validated none of {args.dir}'s clips: was it run on another dataset, "
                  "or on these clips before their files changed?", file=sys.stderr)
            return 1
    name = args.model or (f"{args.heldout} (int8 student, held out)" if args.heldout else "")
    stats = write_audit(args.dir, args.out, scorer=scorer, model_labels=labels, model_name=name,
                        max_audio_s=args.max_audio_s, progress=sys.stderr.isatty(), clip_scores=clip_scores)
    print(f"wrote {args.out}: {stats['clips']} clips ({stats['errors']} unreadable), "
          f"{stats['bytes'] / 1e6:.1f} MB, {stats['seconds']:.1f} s")
    if args.heldout:
        print(f"{stats['scored']} of {stats['clips']} clips have held-out scores in {args.heldout}; "
              "the others are listed last")
    return 0


def _demo(args) -> int:
    from ..data.demo import make_demo

    ds = make_demo(args.out, per_class=args.per_class, seed=args.seed, use_espeak=not args.no_espeak,
                   progress=sys.stderr.isatty())
    print(f"wrote {len(ds)} synthetic clips to {args.out} (a demo: see {args.out}/README.md)")
    return 0
