# 64-bit ARM (Debian arm64): cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake ...
# or scripts/cross.sh arm64, which also runs the tests under qemu-aarch64-static.
set(PDM_CROSS_ARCH arm64)
set(PDM_CROSS_TRIPLET aarch64-linux-gnu)
set(PDM_CROSS_PROCESSOR aarch64)
set(PDM_CROSS_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
