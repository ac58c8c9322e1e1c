# mmrmt: every target creates .venv first when it is missing, and every target is idempotent.
PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.mmrmt-installed
CONSTRAINTS := -c requirements.txt

.PHONY: install test lint format toy-data demo demo-seg demo-dino demo-mask2former demo-mask2former-seg benchmark vis clean

install: $(STAMP)

# mmcv 2.1.0 ships only sources: it is compiled with ops against the venv's torch, without build
# isolation, and its setup.py imports pkg_resources, so setuptools<70 is installed for that build
# (pip warns that torch wants a newer one; the next step installs the pinned one). pip's wheel cache makes a
# second install fast.
$(STAMP): requirements.txt setup.py $(wildcard mmrmt/csrc/*.cpp)
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PIP) install -q $(CONSTRAINTS) torch numpy wheel
	$(PIP) install -q "setuptools<70"
	MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) $(PIP) install $(CONSTRAINTS) --no-build-isolation mmcv
	$(PIP) install -q $(CONSTRAINTS) -r requirements.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	# mmengine finds a package's .mim/configs at <location of its dist-info>/mmrmt, which a PEP 660
	# editable install does not create: link it to the checkout's package (the same files).
	ln -sfn $(CURDIR)/mmrmt $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/mmrmt
	touch $(STAMP)

# One OpenMP thread per test process: the suite starts training subprocesses, and two threads
# each on a 2-core machine oversubscribe it (steps up to 20x slower under load).
test: install toy-data
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	OMP_NUM_THREADS=1 $(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .

toy-data: install
	$(PY) tools/make_toy_data.py --out data

demo: install toy-data
	$(PY) tools/toy_demo.py configs/det/maskrcnn_rmt_t_toy.py --work-dir work_dirs/demo

demo-seg: install toy-data
	$(PY) tools/toy_demo.py configs/seg/fpn_rmt_t_toy.py --work-dir work_dirs/demo_seg

# The query-based toy runs (README, "DINO and Mask2Former"): about 25, 23 and 14 minutes.
demo-dino: install toy-data
	$(PY) tools/toy_demo.py configs/det/dino_4scale_rmt_t_toy.py --work-dir work_dirs/demo_dino

demo-mask2former: install toy-data
	$(PY) tools/toy_demo.py configs/det/mask2former_rmt_t_toy.py --work-dir work_dirs/demo_mask2former

demo-mask2former-seg: install toy-data
	$(PY) tools/toy_demo.py configs/seg/mask2former_rmt_t_toy.py --work-dir work_dirs/demo_mask2former_seg

benchmark: install
	$(PY) tools/benchmark.py --arch s --size 800 1216

# Decay, attention and ERF figures into work_dirs/vis/: the make demo checkpoint when it exists,
# random weights otherwise (the figure titles say which).
vis: install
	$(PY) tools/vis_all.py --out work_dirs/vis

clean:
	rm -rf work_dirs
