# `make model`: regenerate models/default (model.tflite, model.json, report.md, PNGs) from $(SHARED)/data and
# the pretrained YAMNet in $(SHARED)/yamnet, through the virtualenv's `bowlsense train`. Stages are
# checkpointed under .cache/train/, so an interrupted run resumes; MODEL_ARGS=--restart starts afresh.
# The wall time, CPU time (user + system: the wall time inflates on a shared machine, CPU time much less)
# and peak memory of the run are printed at the end (GNU time, when installed).

MODEL_DIR  ?= models/default
MODEL_ARGS ?=
YAMNET     ?= $(SHARED)/yamnet/yamnet_int8_logmel_in.tflite
HAVE_TIME  := $(shell command -v /usr/bin/time >/dev/null 2>&1 && echo yes)
TIME_FMT   := %e s wall, %U s user + %S s system CPU, peak memory %M KiB
# $(call timed,NAME): GNU time's summary line for the run, labelled NAME (nothing when GNU time is absent).
# The format lives in TIME_FMT because a comma inside $(call ...) or $(if ...) would split the arguments.
timed      = $(if $(HAVE_TIME),/usr/bin/time -f '$(1): $(TIME_FMT)')

.PHONY: model
model: setup
	$(call timed,make model) $(VENV)/bin/bowlsense train $(SHARED)/data --out $(MODEL_DIR) --yamnet $(YAMNET) $(MODEL_ARGS)

# `make crossval`: the same recipe measured by 4-fold cross-validation grouped by recording (every verified
# clip validated once; about four times `make model`), written to models/crossval, with how each figure
# moves with the thresholds (models/crossval/thresholds, seconds from the scores just written).
CROSSVAL_DIR ?= models/crossval

.PHONY: crossval
crossval: setup
	$(call timed,make crossval) $(VENV)/bin/bowlsense crossval $(SHARED)/data --out $(CROSSVAL_DIR) --folds 4 --yamnet $(YAMNET) $(MODEL_ARGS)
	$(VENV)/bin/bowlsense thresholds $(CROSSVAL_DIR) --out $(CROSSVAL_DIR)/thresholds > /dev/null
