# SPDX-License-Identifier: Apache-2.0
# Installs the library, its public headers and a relocatable CMake package (polyinfer::polyinfer).
include(CMakePackageConfigHelpers)

install(TARGETS polyinfer EXPORT polyinferTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/polyinfer DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET polyinfer_cli)
  install(TARGETS polyinfer_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(POLYINFER_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/polyinfer)
install(EXPORT polyinferTargets NAMESPACE polyinfer:: DESTINATION ${POLYINFER_CONFIG_DIR})
get_target_property(_pi_type polyinfer TYPE)
set(POLYINFER_STATIC_LIB OFF)
if(_pi_type STREQUAL "STATIC_LIBRARY")
  set(POLYINFER_STATIC_LIB ON)
endif()
configure_package_config_file(cmake/polyinferConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/polyinferConfig.cmake
                              INSTALL_DESTINATION ${POLYINFER_CONFIG_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/polyinferConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/polyinferConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/polyinferConfigVersion.cmake
        DESTINATION ${POLYINFER_CONFIG_DIR})
