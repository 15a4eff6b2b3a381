# `make demo`: the main job end to end on a fresh machine (issue 8). System packages first (as root;
# otherwise a message names them), then the virtualenv, then `bowlsense demo`, which resumes where an
# interrupted run stopped.
.PHONY: demo
demo: setup-system setup
	$(PY) -m bowlsense demo
