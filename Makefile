# Developer tasks. `make screenshots` renders the console's deterministic scenes
# (seeded store, fixed clock, polling off) to screenshots/*.svg for the README.

PYTHON ?= python

.PHONY: screenshots
screenshots:
	$(PYTHON) -m console.tui.scenes screenshots/
