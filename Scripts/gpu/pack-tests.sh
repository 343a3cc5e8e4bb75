#!/usr/bin/env bash
# On a development machine: the XCTest bundle, with the Swift runtime libraries it loads, packed
# for the GPU machine (which has no Swift toolchain), so that the tests that need a real GPU run
# there instead of skipping. Scripts/gpu/run-on-gpu.sh unpacks and runs it when it finds it:
#     Scripts/gpu/pack-tests.sh        # writes .device/tests.tar.xz (about 25 MB)
# The bundle is a debug build (the tests use @testable import); only the tests of MLPKitCUDATests
# are run there. glibc and libstdc++ stay the GPU machine's own, as for the static mlp binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCRATCH="${SCRATCH:-.build}"
swift build --build-tests --scratch-path "$SCRATCH"
bundle="$SCRATCH/debug/MLPKitPackageTests.xctest"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tests/lib"
cp "$bundle" "$stage/tests/"
strip "$stage/tests/MLPKitPackageTests.xctest"
# every library the bundle loads from the Swift toolchain (the system's own stay behind)
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
ldd "$bundle" | awk '{ print $3 }' | grep "^$toolchain/" | while read -r library; do
    cp "$library" "$stage/tests/lib/"
done
mkdir -p .device
tar -C "$stage" -cJf .device/tests.tar.xz tests
ls -l .device/tests.tar.xz
