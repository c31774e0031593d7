# 32-bit ARM, hard float (Debian armhf, ARMv7): 32-bit long, size_t and time_t.
# cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-armhf.cmake ..., or scripts/cross.sh armhf, which
# also runs the tests under qemu-arm-static.
set(PDM_CROSS_ARCH armhf)
set(PDM_CROSS_TRIPLET arm-linux-gnueabihf)
set(PDM_CROSS_PROCESSOR arm)
set(PDM_CROSS_QEMU qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
