# Shared part of the Debian toolchain files (toolchain-arm64.cmake, toolchain-armhf.cmake).
# They set PDM_CROSS_ARCH, PDM_CROSS_TRIPLET, PDM_CROSS_PROCESSOR and PDM_CROSS_QEMU, then
# include this file. scripts/deps.sh --cross ARCH installs what it needs.
#
# Two ways to find the target's libraries:
# - multiarch (the default): Debian's cross gcc uses / as its sysroot and looks in the multiarch
#   folders itself (headers in /usr/include/TRIPLET then /usr/include, libraries in
#   /usr/lib/TRIPLET), where the target's -dev packages (libfoo-dev:ARCH) install beside the
#   native ones.
# - a sysroot (-DPDM_CROSS_SYSROOT=DIR): the target's packages unpacked into DIR. deps.sh makes
#   one when the multiarch packages cannot be installed (they must have exactly the version of
#   the build machine's own, which a mirror lagging for one architecture breaks).

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${PDM_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${PDM_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${PDM_CROSS_TRIPLET}-g++)
# find_library/find_path/find_package look under <prefix>/lib/TRIPLET (Paho's CMake package is
# <prefix>/lib/TRIPLET/cmake/eclipse-paho-mqtt-c). Set here so that it holds for every find_*.
set(CMAKE_LIBRARY_ARCHITECTURE ${PDM_CROSS_TRIPLET})
# Programs run at build time (protoc-c) are the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

set(PDM_CROSS_SYSROOT "" CACHE PATH "unpacked target packages (empty: Debian multiarch)")
# try_compile projects read this file again: hand them the choice.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES PDM_CROSS_SYSROOT)

find_program(PDM_CROSS_QEMU_PATH ${PDM_CROSS_QEMU})
if(PDM_CROSS_SYSROOT)
  set(CMAKE_SYSROOT ${PDM_CROSS_SYSROOT})
  set(CMAKE_FIND_ROOT_PATH ${PDM_CROSS_SYSROOT})
  set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
  # the build machine's pkg-config, reading only the sysroot's .pc files and prefixing their paths
  set(ENV{PKG_CONFIG_LIBDIR}
    "${PDM_CROSS_SYSROOT}/usr/lib/${PDM_CROSS_TRIPLET}/pkgconfig:${PDM_CROSS_SYSROOT}/usr/share/pkgconfig")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} ${PDM_CROSS_SYSROOT})
  set(ENV{PKG_CONFIG_PATH} "")
  # The sysroot is complete and of one glibc (loader, libc and every library), so qemu may take
  # it all from there. Not so /usr/TRIPLET: its loader and libc differ from the multiarch ones.
  set(_pdm_qemu_args -L ${PDM_CROSS_SYSROOT})
else()
  # Never take a library of the build machine: a hit in its multiarch folder (only searched when
  # named explicitly) would be the wrong architecture.
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
  # No -L: the target's loader (/lib/ld-linux-*.so from libc6:ARCH) finds the libraries in
  # /usr/lib/TRIPLET by itself. -L /usr/TRIPLET would mix the cross packages' loader and libc
  # with the multiarch libraries: it hangs in pthread_create.
  set(_pdm_qemu_args)
endif()

# CTest runs the target's programs through qemu-user. binfmt_misc may be absent (it is in
# containers), so nothing relies on the kernel starting foreign binaries.
if(PDM_CROSS_QEMU_PATH)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${PDM_CROSS_QEMU_PATH} ${_pdm_qemu_args})
else()
  message(WARNING "${PDM_CROSS_QEMU} not found: the build works, the tests will not run "
    "(scripts/deps.sh --cross ${PDM_CROSS_ARCH})")
endif()
