# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv (Python 3.11) and installs the project with what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_MODEL := examples/models/ssd_mobilenet_v2_035_5class_300
DEMO_OUT := build/demo

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[tf,rtx,eval,dev]'
	# TensorRT's type stubs pin the full tensorrt wheel (not installable here): --no-deps.
	$(BIN)/python -m pip install -q --no-deps tensorrt-stubs==10.13.0.35.1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	# 1. TFOD SSD -> ONNX with EfficientNMS, checked against TensorFlow on real photos.
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy create-onnx --saved-model $(DEMO_MODEL)/saved_model \
	    --label-map $(DEMO_MODEL)/label_map.pbtxt -o $(DEMO_OUT)/model.onnx --force
	# --exact: a float64 evaluation of the converted network measures TensorFlow's own float32
	# error on this CPU, and the score tolerance is derived from it (no hand-tuned --score-tol).
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy verify --saved-model $(DEMO_MODEL)/saved_model \
	    --onnx $(DEMO_OUT)/model.onnx --exact
	# 2. Without NMS (runs everywhere), dynamic batch; an FP16 engine built on this CPU by TensorRT-RTX.
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy create-onnx --saved-model $(DEMO_MODEL)/saved_model \
	    --label-map $(DEMO_MODEL)/label_map.pbtxt -o $(DEMO_OUT)/raw.onnx --nms none --dynamic-batch --force
	$(BIN)/trtdeploy build-engine $(DEMO_OUT)/raw.onnx -p fp16 --batch 4 --force
	# 3. The DeepStream output layout, its nvinfer config and labels, checked.
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy create-onnx --saved-model $(DEMO_MODEL)/saved_model \
	    --label-map $(DEMO_MODEL)/label_map.pbtxt -o $(DEMO_OUT)/ds.onnx --output-layout deepstream \
	    --score-threshold 0.3 --force
	$(BIN)/trtdeploy gen-ds-config $(DEMO_OUT)/ds.onnx -o $(DEMO_OUT)/deepstream --force
	$(BIN)/trtdeploy check-ds-config $(DEMO_OUT)/deepstream/config_infer_primary_ds.txt
	# 4. A CPU dry run of gst-nvinfer on the DeepStream config of step 3: the bundled model's detections
	# as DeepStream would attach them, drawn into $(DEMO_OUT)/ds-run/ (<image>_ds.png, <image>.json)
	# and matched against TensorFlow (exit 1 below 99%).
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy ds-run $(DEMO_OUT)/deepstream/config_infer_primary_ds.txt --num 4 \
	    -o $(DEMO_OUT)/ds-run --compare-saved-model $(DEMO_MODEL)/saved_model --force
	# 5. The trained shapes model (shared test data) converted, then infer on three of its validation
	# images (boxes drawn into $(DEMO_OUT)/infer/) and the README's picture of them.
	T=$${TRTDEPLOY_TEST_DATA:-../shared}/fixtures/ssd_mobilenet_v2_035_shapes_256; \
	test -d $$T || { echo "trained model $$T not found: set TRTDEPLOY_TEST_DATA"; exit 1; }; \
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/trtdeploy create-onnx --saved-model $$T/saved_model \
	    --label-map $$T/label_map.pbtxt -o $(DEMO_OUT)/trained.onnx --force && \
	mkdir -p $(DEMO_OUT)/trained_val && cp $$T/val/val_0000[0-2].jpg $(DEMO_OUT)/trained_val/
	$(BIN)/trtdeploy infer $(DEMO_OUT)/trained.onnx --images $(DEMO_OUT)/trained_val -o $(DEMO_OUT)/infer \
	    --threshold 0.5 --force
	$(BIN)/python examples/make_readme_picture.py --onnx $(DEMO_OUT)/trained.onnx -o $(DEMO_OUT)/infer_example.png --force

# Shared test data: ../shared (or TRTDEPLOY_TEST_DATA); missing data skips, or fails with
# TRTDEPLOY_REQUIRE_DATA=1 (.ci/run). --durations=10 lists the slowest tests.
test: $(STAMP)
	# Optional: NVIDIA's .etlt decrypter in its own Python 3.12/3.10 venv (.venv-tao), best effort.
	tools/setup_tao_decrypt.sh .venv-tao
	# Two workers, one test file each at a time (loadfile keeps a file's session caches in one
	# process; heavy results are shared through tests/shared_cache.py), files handed out in
	# collection order (--no-loadscope-reorder: xdist would otherwise sort them by test count and
	# start the minutes-long two-stage modules, which have few tests, last; tests/conftest.py puts
	# the longest first). The longest file is the Faster R-CNN module (8 photos against
	# TensorFlow, ~5.5 min of one worker; TRTDEPLOY_FRCNN_PHOTOS=2 brings it to ~3 min).
	TF_CPP_MIN_LOG_LEVEL=2 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=10

clean:
	rm -rf $(VENV) .venv-tao build
