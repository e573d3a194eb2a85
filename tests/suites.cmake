# SPDX-License-Identifier: Apache-2.0
# Script-driven suites: golden cases, corpus conformance and differential
# tests against GMime 3 and Python's email package. The corpus is not part
# of the repository: it is looked for in ../shared (beside the checkout) or
# $MR_SHARED; without it these tests report "skipped" (exit 77).

find_program(MR_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT MR_PYTHON3)
  find_program(MR_PYTHON3 NAMES python3)
endif()
set(MR_SHARED_DIR ${CMAKE_SOURCE_DIR}/../shared)

# Reference parser for the differential test and the parse benchmark.
# Test tooling only: GLib/GMime headers need not pass our warning set.
pkg_check_modules(GMIME IMPORTED_TARGET gmime-3.0)
if(GMIME_FOUND)
  add_executable(gmime_fields ${CMAKE_CURRENT_SOURCE_DIR}/diff/gmime_fields.c)
  target_link_libraries(gmime_fields PRIVATE PkgConfig::GMIME)
  target_compile_options(gmime_fields PRIVATE -Wno-error -Wno-shadow
                         -Wno-format-nonliteral -Wno-unused-parameter)
else()
  message(STATUS "gmime-3.0 not found: differential test not built")
endif()

if(MR_PYTHON3)
  add_test(NAME golden/mime
    COMMAND ${MR_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/golden.py
            --mailroom $<TARGET_FILE:mailroom>
            --data ${CMAKE_CURRENT_SOURCE_DIR}/data/mime)
  set_tests_properties(golden/mime PROPERTIES TIMEOUT 120
                       SKIP_RETURN_CODE 77)

  add_test(NAME conformance/corpus
    COMMAND ${MR_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/conformance/corpus_check.py
            --mailroom $<TARGET_FILE:mailroom>
            --shared ${MR_SHARED_DIR}
            --known ${CMAKE_CURRENT_SOURCE_DIR}/conformance/known-disagreements.tsv)
  set_tests_properties(conformance/corpus PROPERTIES TIMEOUT 600
                       SKIP_RETURN_CODE 77)

  if(GMIME_FOUND)
    add_test(NAME diff/peers
      COMMAND ${MR_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/diff/differential.py
              --mailroom $<TARGET_FILE:mailroom>
              --gmime $<TARGET_FILE:gmime_fields>
              --shared ${MR_SHARED_DIR})
    set_tests_properties(diff/peers PROPERTIES TIMEOUT 900
                         SKIP_RETURN_CODE 77)
  endif()
else()
  message(STATUS "python3 not found: script suites not registered")
endif()
