# Shared part of the Debian multiarch toolchain files (toolchain-arm64.cmake, toolchain-armhf.cmake).
# They set PDM_CROSS_TRIPLET, PDM_CROSS_PROCESSOR and PDM_CROSS_QEMU, then include this file.
#
# Debian's cross compilers (crossbuild-essential-ARCH) use / as their sysroot and look in the
# multiarch folders themselves: headers in /usr/include/TRIPLET then /usr/include, libraries in
# /usr/lib/TRIPLET. The target's -dev packages (libfoo-dev:ARCH) install there, beside the
# native ones, so no separate sysroot is needed. scripts/deps.sh --cross ARCH installs it all.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${PDM_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${PDM_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${PDM_CROSS_TRIPLET}-g++)
# find_library/find_path/find_package look under <prefix>/lib/TRIPLET, i.e. /usr/lib/TRIPLET
# (Paho's CMake package is /usr/lib/TRIPLET/cmake/eclipse-paho-mqtt-c). Setting it here rather
# than waiting for compiler detection makes it hold for every find_* call.
set(CMAKE_LIBRARY_ARCHITECTURE ${PDM_CROSS_TRIPLET})

# Never take a library of the build machine: its multiarch folder is only searched when named
# explicitly, but a generic /usr/lib hit would be the wrong architecture too.
execute_process(COMMAND gcc -dumpmachine OUTPUT_VARIABLE _pdm_host_triplet
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(_pdm_host_triplet)
  list(APPEND CMAKE_IGNORE_PATH /usr/lib/${_pdm_host_triplet} /lib/${_pdm_host_triplet}
    /usr/include/${_pdm_host_triplet})
endif()

# pkg-config for the target: pkgconf:ARCH installs TRIPLET-pkg-config, which reads only
# /usr/lib/TRIPLET/pkgconfig and /usr/share/pkgconfig.
find_program(PKG_CONFIG_EXECUTABLE ${PDM_CROSS_TRIPLET}-pkg-config)
if(NOT PKG_CONFIG_EXECUTABLE)
  message(FATAL_ERROR "${PDM_CROSS_TRIPLET}-pkg-config not found: run scripts/deps.sh --cross ${PDM_CROSS_ARCH}")
endif()

# Programs run at build time (protoc-c) are the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# CTest runs the target's programs through qemu-user. binfmt_misc may be absent (it is in
# containers), so nothing relies on the kernel starting foreign binaries. No -L: the target's
# libraries are found by the target's loader in /usr/lib/TRIPLET (/lib/ld-linux-*.so comes from
# libc6:ARCH), while -L /usr/TRIPLET mixes loaders and hangs in pthread_create.
find_program(PDM_CROSS_QEMU_PATH ${PDM_CROSS_QEMU})
if(PDM_CROSS_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PDM_CROSS_QEMU_PATH})
else()
  message(WARNING "${PDM_CROSS_QEMU} not found: the build works, the tests will not run "
    "(scripts/deps.sh --cross ${PDM_CROSS_ARCH})")
endif()
