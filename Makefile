# SPDX-License-Identifier: Apache-2.0
# A thin wrapper around CMake/CTest: the build is defined in CMakeLists.txt.
BUILD ?= build
ASAN  ?= build-asan
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 300
SAMPLE ?= tests/data/mime/welcome.eml

.PHONY: all build asan run test test-fast bench bench-parse bench-ingest \
        bench-rules bench-content bench-deliver fuzz fuzz-smoke clean

all: build

build:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan:
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DMR_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

# The server with its embedded defaults: data in ./mailroom-data, SMTP on
# 127.0.0.1:2525, HTTP on 127.0.0.1:8080, tenant "default" taking every
# recipient. An admin token is made first so the commands printed work as
# they are.
DATA ?= mailroom-data
run: build
	@TOKEN=$$(./$(BUILD)/mailroom token create --data $(DATA) --tenant default --role admin --label "make run" 2>/dev/null); \
	echo "mailroom $$(./$(BUILD)/mailroom version | cut -d' ' -f2) starting: data in ./$(DATA)"; \
	echo; \
	echo "  send a first message over SMTP:"; \
	echo "    swaks --server 127.0.0.1:2525 --to support@example.com --header 'Subject: My first ticket'"; \
	echo "  or over HTTP:"; \
	echo "    curl -X POST -H 'Authorization: Bearer '$$TOKEN -H 'Content-Type: message/rfc822' \\"; \
	echo "         --data-binary @tests/data/mime/welcome.eml http://127.0.0.1:8080/api/v1/messages"; \
	echo "  then look at the tickets:"; \
	echo "    curl -H 'Authorization: Bearer '$$TOKEN http://127.0.0.1:8080/api/v1/tickets"; \
	echo "  health and numbers: http://127.0.0.1:8080/readyz  http://127.0.0.1:8080/metrics"; \
	echo "  (admin token for this data folder: $$TOKEN)"; \
	echo; \
	exec ./$(BUILD)/mailroom serve --data $(DATA)

# Every suite, in the normal build and again under ASan+UBSan, then a
# 60-second fuzzing smoke run. The ASan pass leaves out the differential
# test (peers' figures, not our memory) and the browser proof (846 page
# loads in Chromium; the sanitizer itself runs under ASan in its unit tests
# and in xss/corpus-structure).
test:
	@scripts/deps.sh --test
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) -E "diff/|xss/browser"
	@$(MAKE) --no-print-directory fuzz-smoke

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

fuzz:
	@scripts/deps.sh --test
	scripts/fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke:
	scripts/fuzz.sh 60

bench: bench-parse bench-ingest bench-rules bench-content bench-deliver

bench-parse: build
	@scripts/deps.sh --bench
	/usr/bin/python3 bench/parse_bench.py --build $(BUILD)

# SMTP load (bench/smtp_load.c) against `mailroom serve`; see
# docs/benchmarks.md. Options: make bench-ingest INGEST_ARGS="--count 20000"
bench-ingest: build
	@scripts/deps.sh --bench
	/usr/bin/python3 bench/ingest_bench.py --build $(BUILD) $(INGEST_ARGS)

# Outbound webhooks (bench/deliver_bench.py): SMTP 250 -> webhook latency at
# idle and under the ingest load, deliveries per second to a loopback
# receiver; see docs/benchmarks.md. Options:
# make bench-deliver DELIVER_ARGS="--probes 500 --concurrency 32"
bench-deliver: build
	@scripts/deps.sh --bench
	/usr/bin/python3 bench/deliver_bench.py --build $(BUILD) $(DELIVER_ARGS)

# Rule evaluations per second (bench/rules_bench.c): 200 generated rules
# over the parse benchmark's corpus, one thread; see docs/benchmarks.md.
bench-rules:
	@scripts/deps.sh
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) --target rules_bench -j $(JOBS)
	@test -d $(BUILD)/bench-corpus/msgs || \
	  /usr/bin/python3 bench/gen_corpus.py $(BUILD)/bench-corpus
	./$(BUILD)/rules_bench $(BUILD)/bench-corpus/msgs

# Sanitizer and html->text MB/s against DOMPurify and html-to-text on the
# corpus's HTML bodies; see docs/benchmarks.md.
# Options: make bench-content CONTENT_ARGS="--reps 5 --min-seconds 3"
bench-content: build
	@scripts/deps.sh --bench
	@cmake --build $(BUILD) -j $(JOBS) --target content_bench
	/usr/bin/python3 bench/content_bench.py --build $(BUILD) $(CONTENT_ARGS)

clean:
	rm -rf $(BUILD) $(ASAN) build-fuzz
