# SPDX-License-Identifier: Apache-2.0
# A thin wrapper around CMake/CTest: the build is defined in CMakeLists.txt.
BUILD ?= build
ASAN  ?= build-asan
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 300
SAMPLE ?= tests/data/mime/welcome.eml

.PHONY: all build asan run test test-fast bench bench-parse bench-ingest fuzz \
        fuzz-smoke clean

all: build

build:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan:
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DMR_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

# Until the server lands (issue 3), `make run` shows the parser at work.
run: build
	@echo "mailroom $$(./$(BUILD)/mailroom version | cut -d' ' -f2): parsing $(SAMPLE)"
	@./$(BUILD)/mailroom parse --pretty $(SAMPLE)
	@echo
	@echo "Try: ./$(BUILD)/mailroom parse --pretty your-message.eml"
	@echo "     ./$(BUILD)/mailroom parse --jsonl a-folder-of-messages/"

# Every suite, in the normal build and again under ASan+UBSan, then a
# 60-second fuzzing smoke run.
test:
	@scripts/deps.sh --test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) -E "diff/"
	@$(MAKE) --no-print-directory fuzz-smoke

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

fuzz:
	@scripts/deps.sh --test
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke:
	scripts/fuzz.sh 60

bench: bench-parse bench-ingest

bench-parse: build
	@scripts/deps.sh --bench
	/usr/bin/python3 bench/parse_bench.py --build $(BUILD)

# SMTP load (bench/smtp_load.c) against `mailroom serve`; see
# docs/benchmarks.md. Options: make bench-ingest INGEST_ARGS="--count 20000"
bench-ingest: build
	@scripts/deps.sh --bench
	/usr/bin/python3 bench/ingest_bench.py --build $(BUILD) $(INGEST_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
