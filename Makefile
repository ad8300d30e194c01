# sesame — the two commands a new user needs: `make run` and `make test`.
# Everything else (configure, deps) happens on the way.
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-normal test-asan bench fuzz check-banned clean

all: build

deps:
	@scripts/install-deps.sh

build/CMakeCache.txt:
	cmake -S . -B build $(CMAKE_FLAGS)

build: deps build/CMakeCache.txt
	cmake --build build -j $(JOBS)

# Starts the service on its embedded defaults (SPEC.md §2): MX on
# 127.0.0.1:2525, submission on 127.0.0.1:5870, the HTTP API on
# 127.0.0.1:8080, data in ./var. Ctrl-C stops it cleanly.
run: build
	exec ./build/sesame serve

check-banned:
	@scripts/check-banned.sh

test-normal: build
	cd build && ctest --output-on-failure -j $(JOBS)

build-asan/CMakeCache.txt:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSESAME_SANITIZE=ON $(CMAKE_FLAGS)

test-asan: deps build-asan/CMakeCache.txt
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

# Every test, twice: a normal build and an ASan+UBSan build.
test: deps check-banned test-normal test-asan

build-bench/CMakeCache.txt:
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSESAME_BENCH=ON $(CMAKE_FLAGS)

bench: deps build-bench/CMakeCache.txt
	@scripts/install-deps.sh --bench
	cmake --build build-bench -j $(JOBS) --target benchmarks
	bench/run.sh build-bench build/bench/results.json

build-fuzz/CMakeCache.txt:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESAME_FUZZ=ON $(CMAKE_FLAGS)

fuzz: deps build-fuzz/CMakeCache.txt
	cmake --build build-fuzz -j $(JOBS) --target fuzzers
	fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-bench build-fuzz
